"""A worker killed between commit and publish loses no award and applies none twice (SPEC §5, DESIGN §2).

Each update fills a customer's email (a first_fill award of 25 points) and is delivered three times.
The first worker kills itself (SIGKILL of the whole process group) right after its first commit, before
anything is published; a second worker, with beat running the outbox relay, picks up the redelivered
messages after the visibility timeout. Every award must be in the ledger exactly once.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import func, select

from customer_updates import Producer
from customer_updates.messaging.broker import producer_app
from customer_updates.messaging.sending import publish_many
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import load_examples, wait_for_follow_on_work

CUSTOMERS = int(os.environ.get("CU_AWARD_CUSTOMERS", "200"))


@pytest.mark.system
def test_awards_are_applied_exactly_once_across_a_kill_after_commit(pg_url, redis_url, broker_url, start_worker,
                                                                    tmp_path):
    load_examples(pg_url)
    with session_scope(pg_url) as session:
        for i in range(CUSTOMERS):
            session.add(t.Customer(org_id=1, mobile=f"9180{i:08d}", points_summaries=[], stamps={}, fired=[],
                                   active=True))
    fast = {"visibility_timeout": "5", "outbox_relay_after_seconds": "1", "outbox_relay_interval_seconds": "1"}
    dying = start_worker(pg_url, redis_url, concurrency=1, failpoint="after_commit",
                         failpoint_once_file=str(tmp_path / "died"), broker_url=broker_url, **fast)

    commands = [{"org_id": 1, "request_id": uuid.uuid4().hex, "issued_at": utcnow().isoformat(),
                 "customer": {"mobile": f"9180{i:08d}", "email": f"fill{i}@example.com"}} for i in range(CUSTOMERS)]
    settings = Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, broker_url=broker_url)
    publish_many([[c] for c in commands] * 3, celery=producer_app(settings))

    dying.process.wait(60)
    assert (tmp_path / "died").exists(), "the failpoint fired"
    with session_scope(pg_url) as session:
        committed = session.scalar(select(func.count()).select_from(t.CommandRecord))
        published = session.scalar(select(func.count()).select_from(t.OutboxEntry).where(
            t.OutboxEntry.published_at.is_not(None)))
    assert committed and committed > 0 and published == 0, "died after a commit, before publishing"

    start_worker(pg_url, redis_url, concurrency=2, beat=True, broker_url=broker_url, **fast)
    producer = Producer(settings)
    results = [producer.get_result(1, str(c["request_id"]), timeout=120) for c in commands]
    assert all(r is not None and r["item_status"]["code"] == "1000" for r in results)
    wait_for_follow_on_work(pg_url, timeout=120)

    with session_scope(pg_url) as session:
        ledger = session.execute(select(t.PointsLedger.user_id, func.count(), func.sum(t.PointsLedger.points))
                                 .group_by(t.PointsLedger.user_id)).all()
        points = session.scalar(select(func.sum(t.Customer.loyalty_points)).where(
            t.Customer.mobile.like("9180%")))
        duplicate_outbox = session.scalar(select(func.count()).select_from(t.PointsLedger).where(
            t.PointsLedger.outbox_id.is_(None)))
        records = session.scalar(select(func.count()).select_from(t.CommandRecord))
    assert len(ledger) == CUSTOMERS
    assert all(count == 1 and total == 25 for _, count, total in ledger)
    assert points == 25 * CUSTOMERS
    assert duplicate_outbox == 0
    assert records == CUSTOMERS
