"""A batch's events are one outbox row per org on PostgreSQL (a row each when the batch has only a few),
and still reach the stream one by one with an id each, from the worker after commit and from the relay
alike."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import func, select

from customer_updates.models import tables as t
from customer_updates.services.apply import OutboxRow
from customer_updates.services.publish import publish_outbox, relay, stream_events
from customer_updates.settings import Settings
from customer_updates.store import records
from customer_updates.store.db import session_scope

STREAM = "customer_updates.events"  # the default stream; the test's Redis database is emptied before it
WHEN = datetime(2026, 5, 6, 7, 8, 9)


def _event(org_id: int, user_id: int, created_at: datetime = WHEN) -> dict[str, Any]:
    return {"org_id": org_id, "user_id": user_id, "kind": "event", "created_at": created_at,
            "payload": {"event": "customer.updated", "user_id": user_id, "note": "ü"}}


def _award(org_id: int, user_id: int, created_at: datetime = WHEN) -> dict[str, Any]:
    return {"org_id": org_id, "user_id": user_id, "kind": "award", "created_at": created_at,
            "payload": {"points": 5, "rule": "first_fill", "key": f"k{user_id}", "request_id": "r"}}


def _settings(db_url: str, redis_url: str) -> Settings:
    return Settings(DATABASE_URL=db_url, REDIS_URL=redis_url)


def _stream(client: redis.Redis) -> list[tuple[int, dict[str, Any]]]:
    return [(int(fields[b"event_id"]), json.loads(fields[b"data"])) for _, fields in client.xrange(STREAM)]


def _more_events(org_id: int, first_user: int, count: int) -> list[dict[str, Any]]:
    return [_event(org_id, user_id) for user_id in range(first_user, first_user + count)]


def test_the_events_of_a_batch_are_one_row_per_org_and_each_event_keeps_an_id_of_its_own(pg_url):
    rows = [_event(1, 10), _award(1, 10), _event(1, 11), _event(2, 20), _event(1, 12), _event(2, 21),
            _event(1, 13), _event(2, 22)]
    assert len(rows) >= records.FEW_ROWS
    with session_scope(pg_url) as session:
        stored = records.insert_outbox(session, rows)

    kinds = [kind for _, kind, _ in stored]
    assert sorted(kinds) == ["award", "events", "events"]
    events = stream_events([OutboxRow(*row) for row in stored])
    assert [e["user_id"] for _, e in events] == [10, 11, 12, 13, 20, 21, 22]  # in the batch's order, per org
    event_ids = [i for i, _ in events]
    award_id = next(i for i, kind, _ in stored if kind == "award")
    assert len(set(event_ids)) == 7 and award_id not in event_ids
    for row_id, kind, payload in stored:
        if kind == "events":
            assert row_id == payload["ids"][0]  # a row takes its first event's id: no id is used twice
    with session_scope(pg_url) as session:
        in_table = session.execute(select(t.OutboxEntry.kind, t.OutboxEntry.org_id, t.OutboxEntry.payload)
                                   .order_by(t.OutboxEntry.id)).all()
    assert [(kind, org) for kind, org, _ in in_table] == [("events", 1), ("award", 1), ("events", 2)]
    assert in_table[0][2]["events"][2] == rows[4]["payload"]


def test_a_few_events_are_a_row_each_with_the_id_the_insert_gave_it(pg_url):
    rows = [_event(1, 10), _award(1, 10), _event(2, 20)]
    with session_scope(pg_url) as session:
        stored = records.insert_outbox(session, rows)

    assert [kind for _, kind, _ in stored] == ["event", "award", "event"]
    with session_scope(pg_url) as session:
        in_table = session.execute(select(t.OutboxEntry.id, t.OutboxEntry.kind, t.OutboxEntry.payload)
                                   .order_by(t.OutboxEntry.id)).all()
    assert [tuple(row) for row in in_table] == [(i, kind, payload) for i, kind, payload in stored]
    events = stream_events([OutboxRow(*row) for row in stored])
    assert [(i, e["user_id"]) for i, e in events] == [(stored[0][0], 10), (stored[2][0], 20)]


def test_sqlite_keeps_a_row_per_event_which_publishing_reads_as_one_event(sqlite_url):
    with session_scope(sqlite_url) as session:
        stored = records.insert_outbox(session, [_event(1, 10), _award(1, 10), _event(1, 11)])

    assert [kind for _, kind, _ in stored] == ["event", "award", "event"]
    events = stream_events([OutboxRow(*row) for row in stored])
    assert [(i, e["user_id"]) for i, e in events] == [(stored[0][0], 10), (stored[2][0], 11)]


def test_a_grouped_row_is_published_event_by_event_and_marked_once(pg_url, redis_url):
    client = redis.Redis.from_url(redis_url)
    awards_sent: list[list[int]] = []
    with session_scope(pg_url) as session:
        stored = [OutboxRow(*row) for row in records.insert_outbox(
            session, [_event(1, 10), _event(1, 11), _award(1, 11), *_more_events(1, 12, 5)])]
    assert [row.kind for row in stored] == ["events", "award"]
    with session_scope(pg_url) as session:
        publish_outbox(session, client, _settings(pg_url, redis_url), awards_sent.append, stored, WHEN)

    assert _stream(client) == stream_events(stored)
    assert [e["user_id"] for _, e in _stream(client)] == list(range(10, 17))
    assert awards_sent == [[row.id for row in stored if row.kind == "award"]]
    with session_scope(pg_url) as session:
        unpublished = session.scalar(select(func.count()).select_from(t.OutboxEntry)
                                     .where(t.OutboxEntry.published_at.is_(None)))
    assert unpublished == 0


def test_the_relay_republishes_the_events_of_an_unconfirmed_row_under_the_same_ids(pg_url, redis_url):
    client = redis.Redis.from_url(redis_url)
    settings = _settings(pg_url, redis_url)
    committed_at = WHEN - timedelta(seconds=settings.outbox_relay_after_seconds + 60)
    with session_scope(pg_url) as session:  # committed, then the worker died before publishing
        stored = [OutboxRow(*row) for row in records.insert_outbox(
            session, [_event(1, user_id, committed_at) for user_id in range(10, 10 + records.FEW_ROWS)])]

    with session_scope(pg_url) as session:
        assert relay(session, client, settings, lambda ids: None, WHEN) == 1  # one row
    with session_scope(pg_url) as session:
        assert relay(session, client, settings, lambda ids: None, WHEN) == 0  # confirmed now

    assert _stream(client) == stream_events(stored)
    assert len(_stream(client)) == records.FEW_ROWS
