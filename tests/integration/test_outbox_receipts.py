"""A worker leaves receipts of the outbox rows it published in Redis instead of marking them published after
every batch; the rows are marked when the receipts are drained (by the relay, or by a worker once enough
wait), and a row without a receipt is still the relay's to publish."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select, update

from customer_updates.messaging import receipts
from customer_updates.messaging.after_commit import publish_batch
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.ops.health import check
from customer_updates.services.publish import confirm_receipts, relay
from customer_updates.services.resources import Runtime
from customer_updates.services.worker_messages import Message, apply_messages
from customer_updates.settings import Settings
from customer_updates.store import records
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import OrgCache
from tests.conftest import load_examples


def _runtime(pg_url: str, redis_url: str) -> Runtime:
    load_examples(pg_url)
    return Runtime(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url), OrgCache(30))


def _email_fill(pg_url: str, mobile: str) -> dict[str, Any]:
    """A command that fills a member's empty email: an event and a first-fill award."""
    with session_scope(pg_url) as session:
        session.add(t.Customer(org_id=1, mobile=mobile, points_summaries=[], stamps={}, fired=[], active=True))
    return {"org_id": 1, "request_id": uuid.uuid4().hex, "issued_at": utcnow().isoformat(),
            "customer": {"mobile": mobile, "email": f"{mobile}@example.com"}}


def _apply(rt: Runtime, command: dict[str, Any], send_awards: Any = None) -> list[list[int]]:
    sent: list[list[int]] = []
    apply_messages(rt, [Message([command])], send_awards=send_awards or sent.append, requeue=lambda m, d: None)
    return sent


def _outbox(pg_url: str) -> dict[int, tuple[str, Any]]:
    with session_scope(pg_url) as session:
        return {row.id: (row.kind, row.published_at) for row in session.scalars(select(t.OutboxEntry))}


def test_a_batch_leaves_a_receipt_for_each_row_it_published_and_marks_none_itself(pg_url, redis_url):
    rt = _runtime(pg_url, redis_url)

    sent = _apply(rt, _email_fill(pg_url, "919811000001"))

    outbox = _outbox(pg_url)
    assert sorted(kind for kind, _ in outbox.values()) == ["award", "event"]  # a small batch: a row an event
    assert all(published_at is None for _, published_at in outbox.values())
    assert receipts.pending(rt.redis) == set(outbox)
    assert sent == [[i for i, (kind, _) in outbox.items() if kind == "award"]]
    health = check(rt.settings)
    assert health.outbox_unpublished == 0  # published, only not marked yet
    assert health.outbox_awards_pending == 1  # sent, not yet carried out


def test_awards_that_could_not_be_sent_get_no_receipt_and_stay_the_relays(pg_url, redis_url):
    rt = _runtime(pg_url, redis_url)

    def broker_down(ids: list[int]) -> None:
        raise ConnectionError("broker down")

    _apply(rt, _email_fill(pg_url, "919811000002"), send_awards=broker_down)

    outbox = _outbox(pg_url)
    assert receipts.pending(rt.redis) == {i for i, (kind, _) in outbox.items() if kind == "event"}
    assert check(rt.settings).outbox_unpublished == 1  # the award


def test_the_relay_marks_the_rows_of_receipts_and_publishes_only_the_rows_without_one(pg_url, redis_url):
    rt = _runtime(pg_url, redis_url)
    sent: list[list[int]] = []
    _apply(rt, _email_fill(pg_url, "919811000003"), send_awards=sent.append)
    long_ago = utcnow() - timedelta(seconds=rt.settings.outbox_relay_after_seconds + 60)
    with session_scope(pg_url) as session:  # a worker died after this commit, before publishing
        orphan = records.insert_outbox(session, [{
            "org_id": 1, "user_id": 1, "kind": "award", "created_at": long_ago,
            "payload": {"points": 5, "rule": "r", "key": "k", "request_id": "x"}}])
    with session_scope(pg_url) as session:  # the batch's rows as old as the orphan: only the receipts tell
        session.execute(update(t.OutboxEntry).values(created_at=long_ago))

    with session_scope(pg_url) as session:
        assert relay(session, rt.redis, rt.settings, sent.append, utcnow()) == 1

    assert sent[-1] == [orphan[0][0]]
    assert all(published_at is not None for _, published_at in _outbox(pg_url).values())
    assert receipts.pending(rt.redis) == set()


def test_a_worker_drains_the_receipts_once_they_reach_the_bound(pg_url, redis_url, monkeypatch):
    rt = _runtime(pg_url, redis_url)
    monkeypatch.setattr(receipts, "DRAIN_AT", 3)

    _apply(rt, _email_fill(pg_url, "919811000004"))  # two rows: below the bound
    assert len(receipts.pending(rt.redis)) == 2
    _apply(rt, _email_fill(pg_url, "919811000005"))  # four: drained

    assert receipts.pending(rt.redis) == set()
    outbox = _outbox(pg_url)
    assert len(outbox) == 4 and all(published_at is not None for _, published_at in outbox.values())


def test_receipts_go_back_when_their_rows_could_not_be_marked(pg_url, redis_url, monkeypatch):
    client = redis.Redis.from_url(redis_url)
    receipts.add(client, [5, 6])

    def database_down(*args: Any) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(records, "mark_published", database_down)
    with session_scope(pg_url) as session, pytest.raises(ConnectionError):
        confirm_receipts(session, client, utcnow())

    assert receipts.pending(client) == {5, 6}


def test_the_after_commit_call_adds_receipts_and_says_how_many_wait(redis_url):
    client = redis.Redis.from_url(redis_url)

    assert publish_batch(client, [], 60, "cu:events", 1000, [], set(), [7, 8]) == 2
    assert publish_batch(client, [], 60, "cu:events", 1000, [(9, {"event": "e"})], {(1, "a")}, [9]) == 3
    assert publish_batch(client, [], 60, "cu:events", 1000, [], {(1, "b")}) == 0  # no receipts, no count

    assert receipts.pending(client) == {7, 8, 9} and client.xlen("cu:events") == 1
    assert receipts.take(client, 2) and len(receipts.pending(client)) == 1

