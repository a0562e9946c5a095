"""Idempotency records (the stored results) and outbox rows."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, Update, and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.store.sql import FEW_ROWS, in_param, insert_rows, insert_statement, is_postgres, next_ids


def existing_records(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Any]:
    """The stored records of these (org_id, request_id) keys: rows with org_id, request_id, payload_hash and
    result."""
    by_org: dict[int, list[str]] = {}
    for org_id, request_id in keys:
        by_org.setdefault(org_id, []).append(request_id)
    statement = _records_statement(is_postgres(session))
    return {(r.org_id, r.request_id): r for org_id, request_ids in by_org.items()
            for r in session.execute(statement, {"org_id": org_id, "request_ids": request_ids}).all()}


@functools.cache
def _records_statement(postgres: bool) -> Select[Any]:
    # Made once per process (building a statement cost more CPU than running it); plain rows, the identity
    # map is no use here.
    stored = t.CommandRecord.__table__.c
    return (select(stored.org_id, stored.request_id, stored.payload_hash, stored.result)
            .where(stored.org_id == bindparam("org_id"), in_param(stored.request_id, "request_ids", postgres)))


def read_record(session: Session, org_id: int, request_id: str) -> t.CommandRecord | None:
    return session.get(t.CommandRecord, (org_id, request_id))


def stored_batch_items(session: Session, org_id: int, batch_id: str) -> list[dict[str, Any]]:
    """The stored item results of a batch (applied and rejected), in the order the batch sent them."""
    rows = session.scalars(select(t.CommandRecord).where(t.CommandRecord.org_id == org_id,
                                                         t.CommandRecord.batch_id == batch_id))
    rejected = session.scalars(select(t.RejectedCommand).where(t.RejectedCommand.org_id == org_id,
                                                               t.RejectedCommand.batch_id == batch_id))
    items = [(r.position or 0, r.result) for r in rows] + [(r.position or 0, r.result) for r in rejected]
    return [result for _, result in sorted(items, key=lambda x: x[0])]


StoredOutbox = tuple[int, str, dict[str, Any]]  # (id, kind, payload) of a row as inserted


def insert_outbox(session: Session, rows: list[dict[str, Any]]) -> list[StoredOutbox]:
    """Insert outbox rows (kind "award" or "event"); returns the rows as stored, for publishing.

    PostgreSQL: a call's events are stored as one row per org, kind "events", payload `{"ids": [...],
    "events": [...]}`. Every update has an event, and a row each was inserted, then written again
    when marked published, with two index entries each time: PostgreSQL's work that grows with the
    updates, not the batches; one row per org makes it grow with the batches (bench/HISTORY.md). Each
    event keeps an id of its own from the outbox's sequence, as it
    had as a row, and consumers dedupe on it as before. Ids are drawn first and rows appended by COPY
    (an INSERT ... RETURNING of many rows is a new statement text for every batch size).

    A few rows (a batch whose commands mostly failed; a quiet system's batch of a command or two writes all
    its rows at once instead, `sql.write_few`), and elsewhere (SQLite: no sequence to draw event ids from,
    and one writer at a time anyway): a row per event, by INSERT ... RETURNING, one round trip where drawing
    the ids first was two. Publishing reads both kinds."""
    if not rows:
        return []
    if not is_postgres(session) or len(rows) < FEW_ROWS:
        table = t.OutboxEntry.__table__
        ids = session.execute(insert_statement(table, is_postgres(session), returning_id=True), rows).scalars()
        return [(i, row["kind"], row["payload"]) for i, row in zip(ids, rows, strict=True)]
    stored: list[dict[str, Any]] = []
    groups: dict[int, dict[str, Any]] = {}
    for i, row in zip(next_ids(session, t.OutboxEntry.__tablename__, "id", len(rows)), rows, strict=True):
        if row["kind"] != "event":
            stored.append({"id": i, **row})
            continue
        group = groups.get(row["org_id"])
        if group is None:  # the row takes its first event's id; user_id 0: the events are of many customers
            group = groups[row["org_id"]] = {"id": i, "org_id": row["org_id"], "user_id": 0, "kind": "events",
                                             "payload": {"ids": [], "events": []}, "created_at": row["created_at"]}
            stored.append(group)
        group["payload"]["ids"].append(i)
        group["payload"]["events"].append(row["payload"])
    insert_rows(session, t.OutboxEntry, stored)
    return [(r["id"], r["kind"], r["payload"]) for r in stored]


def mark_published(session: Session, ids: list[int], now: datetime) -> None:
    _set_on_outbox(session, ids, "published_at", now)


def mark_done(session: Session, ids: list[int], now: datetime) -> None:
    """Awards carried out (in the awards' own transaction)."""
    _set_on_outbox(session, ids, "done_at", now)


def _set_on_outbox(session: Session, ids: list[int], column: str, when: datetime) -> None:
    if not ids:
        return
    session.execute(_outbox_update(is_postgres(session), column), {"ids": ids, "when": when})


@functools.cache
def _outbox_update(postgres: bool, column: str) -> Update:
    """`UPDATE outbox SET column = :when WHERE id IN :ids`, made once per process.

    The table, not the mapped class: the ORM's bulk UPDATE adds RETURNING and Python work per call to keep
    an identity map in step that holds no outbox rows here."""
    outbox: Table = t.OutboxEntry.__table__  # type: ignore[assignment]
    rows = in_param(outbox.c.id, "ids", postgres)
    if postgres:
        # Locked in id order first, as the awards lock them: an UPDATE locks rows in the order its plan
        # visits them (their place in the table). A batch's award task starts while the batch marks its
        # rows published; the two could take the same award rows in opposite orders, and PostgreSQL takes
        # deadlock_timeout to notice and fail one, with every batch waiting behind.
        locked = select(outbox.c.id).where(rows).order_by(outbox.c.id).with_for_update()
        rows = outbox.c.id.in_(locked.scalar_subquery())
    return update(outbox).where(rows).values({column: bindparam("when")})


def unpublished(session: Session, older_than: datetime, award_stuck_before: datetime,
                limit: int = 1000) -> list[t.OutboxEntry]:
    """Rows to (re)publish: never confirmed as published, or awards published long ago and still not done
    (their task message was lost, e.g. by a broker without persistence)."""
    query = select(t.OutboxEntry).where(or_(
        and_(t.OutboxEntry.published_at.is_(None), t.OutboxEntry.created_at < older_than),
        and_(t.OutboxEntry.kind == "award", t.OutboxEntry.done_at.is_(None),
             t.OutboxEntry.published_at < award_stuck_before),
    )).order_by(t.OutboxEntry.id).limit(limit)
    return list(session.scalars(query))


def purge_records(session: Session, before: datetime) -> int:
    result = session.execute(delete(t.CommandRecord).where(t.CommandRecord.created_at < before))
    session.execute(delete(t.RejectedCommand).where(t.RejectedCommand.created_at < before))
    session.execute(delete(t.OutboxEntry).where(t.OutboxEntry.created_at < before,
                                                 t.OutboxEntry.published_at.is_not(None),
                                                 or_(t.OutboxEntry.kind != "award",
                                                     t.OutboxEntry.done_at.is_not(None))))
    return int(getattr(result, "rowcount", 0) or 0)


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
