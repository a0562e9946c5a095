"""Several worker processes merge overlapping customers in both directions at once (SPEC §4).

Pairs (A, B): A holds a mobile and no email, B holds an email and no mobile. For every pair one command
asks A to take B's email (merging B into A) while another asks B, found by id, to take A's mobile
(merging A into B). Whatever order the workers reach them in, every command ends with a result, exactly
one of each pair survives, no cycle forms, identifiers stay unique and points are conserved.
"""

from __future__ import annotations

import os
import random
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

PAIRS = int(os.environ.get("CU_MERGE_PAIRS", "150"))


def _seed_pairs(url: str, pairs: int) -> list[tuple[int, int, str, str]]:
    out = []
    with session_scope(url) as session:
        for i in range(pairs):
            # Contacts, not members: an update merges only a NON_LOYALTY holder of an identifier (SPEC §3.3).
            a = t.Customer(org_id=1, mobile=f"9170{i:08d}", type="NON_LOYALTY", loyalty_points=10,
                           lifetime_points=10, points_summaries=[], stamps={}, fired=[], active=True)
            b = t.Customer(org_id=1, email=f"pair{i}@example.com", type="NON_LOYALTY", loyalty_points=5,
                           lifetime_points=5, points_summaries=[], stamps={}, fired=[], active=True)
            session.add_all([a, b])
            session.flush()
            out.append((a.user_id, b.user_id, a.mobile or "", b.email or ""))
    return out


@pytest.mark.system
# PostgreSQL (row locks in user_id order) and SQLite (serialised writers) with Redis as the broker, and
# PostgreSQL with RabbitMQ: the broker changes only the delivery order, which SQLite's single writer hides.
@pytest.mark.parametrize("database,broker", [("postgres", "redis"), ("sqlite", "redis"), ("postgres", "rabbitmq")])
def test_merges_in_both_directions_at_once_end_consistent(database, broker, redis_url, start_worker,
                                                          request: pytest.FixtureRequest):
    db_url = str(request.getfixturevalue("pg_url" if database == "postgres" else "sqlite_url"))
    broker_url = "" if broker == "redis" else str(request.getfixturevalue("rabbitmq_url"))
    load_examples(db_url)
    pairs = _seed_pairs(db_url, PAIRS)
    with session_scope(db_url) as session:
        points_before = session.scalar(select(func.sum(t.Customer.loyalty_points)).where(
            t.Customer.org_id == 1, t.Customer.active))
    for _ in range(3):
        start_worker(db_url, redis_url, concurrency=2, broker_url=broker_url)

    commands = []
    for _a_id, b_id, mobile, email in pairs:
        now = utcnow().isoformat()
        commands.append({"org_id": 1, "request_id": uuid.uuid4().hex, "issued_at": now,
                         "customer": {"mobile": mobile, "email": email}})
        commands.append({"org_id": 1, "request_id": uuid.uuid4().hex, "issued_at": now,
                         "customer": {"id": b_id, "mobile": mobile}})
    random.Random(7).shuffle(commands)
    settings = Settings(DATABASE_URL=db_url, REDIS_URL=redis_url, broker_url=broker_url)
    # Mixed message sizes: single commands and small groups land in different workers' batches.
    messages, i = [], 0
    while i < len(commands):
        size = random.Random(i).choice([1, 1, 2, 5])
        messages.append(commands[i:i + size])
        i += size
    publish_many(messages, celery=producer_app(settings))

    producer = Producer(settings)
    results = [producer.get_result(1, str(c["request_id"]), timeout=120) for c in commands]
    assert all(r is not None for r in results), "every command ends with a result"
    codes = {r["item_status"]["code"] for r in results if r is not None}
    assert codes <= {"1000"}, codes

    wait_for_follow_on_work(db_url)
    with session_scope(db_url) as session:
        rows = {r.user_id: r for r in session.scalars(select(t.Customer).where(t.Customer.org_id == 1))}
        merges = list(session.scalars(select(t.Merge)))
        points_after = sum(r.loyalty_points for r in rows.values() if r.active)
        awarded: dict[int, int] = {}
        for entry in session.scalars(select(t.PointsLedger)):  # first_fill awards of the example org
            awarded[entry.user_id] = awarded.get(entry.user_id, 0) + entry.points
    # Merges conserve points; only the awards (side effects, one per ledger entry) add to them.
    assert points_after == (points_before or 0) + sum(awarded.values())
    for a_id, b_id, mobile, email in pairs:
        a, b = rows[a_id], rows[b_id]
        assert a.active != b.active, "exactly one of each pair survives"
        survivor, victim = (a, b) if a.active else (b, a)
        assert victim.merged_into == survivor.user_id
        assert (survivor.mobile, survivor.email) == (mobile, email)
        assert survivor.loyalty_points == 15 + awarded.get(survivor.user_id, 0)
    assert len(merges) == PAIRS
    active_mobiles = [r.mobile for r in rows.values() if r.active and r.mobile]
    assert len(active_mobiles) == len(set(active_mobiles))
