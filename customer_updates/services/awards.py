"""Carry out `award` outbox rows: points, ledger entries and tier upgrades, exactly once.

Awards decided in one update transaction travel together in one follow-on task and are applied here in
one transaction: a task and a commit per award cost more than the award itself.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, Table, select
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.rules.directory import Directory
from customer_updates.rules.side_effects import apply_award
from customer_updates.store import customers as customer_store
from customer_updates.store import records
from customer_updates.store.orgs import OrgCache
from customer_updates.store.sql import in_param, insert_rows, is_postgres, write_few

_CUSTOMERS: Table = t.Customer.__table__  # type: ignore[assignment]
_LEDGER: Table = t.PointsLedger.__table__  # type: ignore[assignment]
_AUDIT: Table = t.AuditEntry.__table__  # type: ignore[assignment]
_OUTBOX: Table = t.OutboxEntry.__table__  # type: ignore[assignment]


def award_many(session: Session, orgs: OrgCache, outbox_ids: list[int], now: datetime) -> int:
    """Apply the awards not applied yet; returns how many were applied now.

    Safe to run twice and concurrently: the outbox rows are locked (in id order, like every other
    award transaction) and checked for `done_at`, and the ledger's unique outbox_id refuses a second
    entry even if that check were bypassed.
    """
    entries = session.execute(_awards_statement(is_postgres(session)), {"ids": outbox_ids}).all()
    by_org: dict[int, list[Row[Any]]] = {}
    for entry in entries:
        by_org.setdefault(entry.org_id, []).append(entry)
    applied = 0
    for org_id, org_entries in by_org.items():
        applied += _award_org(session, orgs, org_id, org_entries, now)
    return applied


@functools.cache
def _awards_statement(postgres: bool) -> Select[Any]:
    """The award rows of :ids not done yet, in id order (locked on PostgreSQL); made once per process.
    Plain rows, not ORM objects: they are read once and the identity map is no use."""
    outbox = _OUTBOX.c
    query = (select(outbox.id, outbox.org_id, outbox.user_id, outbox.payload)
             .where(in_param(outbox.id, "ids", postgres), outbox.kind == "award", outbox.done_at.is_(None))
             .order_by(outbox.id))
    return query.with_for_update() if postgres else query


def _award_org(session: Session, orgs: OrgCache, org_id: int, entries: list[Row[Any]], now: datetime) -> int:
    org = orgs.get(session, org_id)
    if org is None:
        return 0
    loaded = customer_store.load_customers(session, org_id, {e.user_id for e in entries}, {}, lock=True)
    directory = Directory([s.copy() for s in loaded])
    before = {s.user_id: s for s in loaded}
    ledger: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for entry in entries:
        if entry.user_id not in directory.by_id:
            continue
        # The customer may have been merged since the decision: the survivor gets the points.
        target = directory.survivor(directory.by_id[entry.user_id])
        payload = entry.payload
        points, rule = int(payload["points"]), str(payload["rule"])
        apply_award(org, target, points, rule, now)
        target.updated_on = now
        ledger.append({"org_id": org_id, "user_id": target.user_id, "points": points,
                       "reason": str(payload.get("key", rule)), "outbox_id": entry.id, "created_at": now})
        audit.append({"org_id": org_id, "user_id": target.user_id, "kind": "PointsAward", "field": rule,
                      "previous": str(target.loyalty_points - points), "new": str(target.loyalty_points),
                      "request_id": payload.get("request_id"), "issued_at": None, "user_context": None,
                      "created_at": now})
    _write(session, customer_store.changed_rows(before, directory.by_id, keep_as_null=is_postgres(session)),
           ledger, audit)
    done = [row["outbox_id"] for row in ledger]
    records.mark_done(session, done, now)
    return len(done)


def _write(session: Session, customer_groups: list[list[dict[str, Any]]], ledger: list[dict[str, Any]],
           audit: list[dict[str, Any]]) -> None:
    """The customers, ledger and audit rows of an award task. On PostgreSQL in one statement (store/sql.py
    `write_few`) where it was a statement each, COPY's two round trips for the larger ones: a batch's award
    task carries a few dozen awards, and its statements' round trips and client-side costs were most of it."""
    if is_postgres(session) and len(customer_groups) <= 1:
        changes = customer_groups[0] if customer_groups else []
        write_few(session, (_CUSTOMERS, "user_id", changes), [(_LEDGER, ledger), (_AUDIT, audit)], (_AUDIT, []))
        return
    customer_store.write_rows(session, customer_groups)
    insert_rows(session, t.PointsLedger, ledger)
    insert_rows(session, t.AuditEntry, audit)
