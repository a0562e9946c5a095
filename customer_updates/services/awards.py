"""Carry out `award` outbox rows: points, ledger entries and tier upgrades, exactly once.

Awards decided in one update transaction travel together in one follow-on task and are applied here in
one transaction: a task and a commit per award cost more than the award itself.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.rules.directory import Directory
from customer_updates.rules.side_effects import apply_award
from customer_updates.store import customers as customer_store
from customer_updates.store import records
from customer_updates.store.orgs import OrgCache
from customer_updates.store.sql import in_param, insert_rows, is_postgres


def award_many(session: Session, orgs: OrgCache, outbox_ids: list[int], now: datetime) -> int:
    """Apply the awards not applied yet; returns how many were applied now.

    Safe to run twice and concurrently: the outbox rows are locked (in id order, like every other
    award transaction) and checked for `done_at`, and the ledger's unique outbox_id refuses a second
    entry even if that check were bypassed.
    """
    entries = list(session.scalars(_awards_statement(is_postgres(session)), {"ids": outbox_ids}))
    by_org: dict[int, list[t.OutboxEntry]] = {}
    for entry in entries:
        by_org.setdefault(entry.org_id, []).append(entry)
    applied = 0
    for org_id, org_entries in sorted(by_org.items()):  # orgs in one order, as every batch: see load_customers
        applied += _award_org(session, orgs, org_id, org_entries, now)
    return applied


@functools.cache
def _awards_statement(postgres: bool) -> Select[t.OutboxEntry]:
    """The award rows of :ids not done yet, in id order (locked on PostgreSQL); made once per process."""
    query = (select(t.OutboxEntry)
             .where(in_param(t.OutboxEntry.id, "ids", postgres), t.OutboxEntry.kind == "award",
                    t.OutboxEntry.done_at.is_(None))
             .order_by(t.OutboxEntry.id))
    return query.with_for_update() if postgres else query


def _award_org(session: Session, orgs: OrgCache, org_id: int, entries: list[t.OutboxEntry],
               now: datetime) -> int:
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
    customer_store.write_changes(session, before, directory.by_id)
    insert_rows(session, t.PointsLedger, ledger)
    insert_rows(session, t.AuditEntry, audit)
    done = [row["outbox_id"] for row in ledger]
    records.mark_done(session, done, now)
    return len(done)
