"""After commit (DESIGN §1 step 5): send follow-on tasks, append events, mark outbox rows published.

The worker stores a batch's results, appends its events and leaves receipts of its event rows in one Redis
call (messaging/after_commit.py), then sends its award tasks with `send_award_rows` and leaves their
receipts; the rows are marked published when the receipts are drained (`confirm_receipts`). The relay
drains them, then publishes what no worker confirmed with `publish_outbox`.

Everything here may run twice (a redelivered message, the relay): award tasks are idempotent by outbox
id, and events carry the outbox id for consumers to dedupe.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis
from sqlalchemy.orm import Session

from customer_updates.messaging import receipts
from customer_updates.messaging.events import append_to_stream
from customer_updates.settings import Settings
from customer_updates.store import records

log = logging.getLogger("customer_updates.publish")

SendAward = Callable[[list[int]], None]


class OutboxLike(Protocol):
    """An outbox row as stored (the relay) or as just inserted (the worker, which needs no reload)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...


def publish_outbox(session: Session, client: redis.Redis, settings: Settings, send_awards: SendAward,
                   entries: Iterable[OutboxLike], now: datetime) -> int:
    entries = list(entries)
    if not entries:
        return 0
    send_award_rows(send_awards, entries)
    append_to_stream(client, settings.events_stream, settings.events_maxlen, stream_events(entries))
    records.mark_published(session, [e.id for e in entries], now)
    return len(entries)


def send_award_rows(send_awards: SendAward, entries: Iterable[OutboxLike]) -> None:
    """One award task for the award rows among `entries` (none when there are none)."""
    awards = [e.id for e in entries if e.kind == "award"]
    if awards:
        send_awards(awards)


def stream_events(entries: Iterable[OutboxLike]) -> list[tuple[int, dict[str, Any]]]:
    """(event id, event) of each event the rows hold: an "event" row is one, an "events" row the events of
    one batch and org (store.records.insert_outbox), each with the id it was given there."""
    events: list[tuple[int, dict[str, Any]]] = []
    for e in entries:
        if e.kind == "event":
            events.append((e.id, e.payload))
        elif e.kind == "events":
            events.extend(zip(e.payload["ids"], e.payload["events"], strict=True))
    return events


def confirm_receipts(session: Session, client: redis.Redis, now: datetime) -> int:
    """Mark published the rows whose receipts wait in Redis, and drop the receipts. When the statement fails
    the receipts go back; when the commit after it fails they are lost, and the relay publishes those rows
    again (duplicates, which consumers dedupe)."""
    ids = receipts.take(client)
    try:
        records.mark_published(session, ids, now)
    except Exception:
        with contextlib.suppress(redis.RedisError):
            receipts.add(client, ids)
        raise
    return len(ids)


def relay(session: Session, client: redis.Redis, settings: Settings, send_awards: SendAward,
          now: datetime) -> int:
    """Republish outbox rows a worker committed but did not confirm (it died after commit). The receipts
    workers left are taken first: their rows were published."""
    confirm_receipts(session, client, now)
    stale = records.unpublished(session, now - timedelta(seconds=settings.outbox_relay_after_seconds),
                                now - timedelta(minutes=5))
    count = publish_outbox(session, client, settings, send_awards, stale, now)
    if count:
        log.info("outbox relayed", extra={"rows": count})
    return count
