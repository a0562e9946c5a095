"""Carry out one `award` outbox row: points, ledger entry and tier upgrade, exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.rules.directory import Directory
from customer_updates.rules.side_effects import apply_award
from customer_updates.store import customers as customer_store
from customer_updates.store.orgs import OrgCache


def award(session: Session, orgs: OrgCache, outbox_id: int, now: datetime) -> list[dict[str, Any]] | None:
    """Apply the award; None when it was already applied (a redelivery) or the row is unknown.

    Safe to run twice: the outbox row is locked and checked for `done_at`, and the ledger's unique
    outbox_id refuses a second entry even if that check were bypassed.
    """
    query = select(t.OutboxEntry).where(t.OutboxEntry.id == outbox_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    entry = session.scalars(query).first()
    if entry is None or entry.kind != "award" or entry.done_at is not None:
        return None
    org = orgs.get(session, entry.org_id)
    if org is None:
        return None
    # Points and tier only: fields and subscriptions are not needed (nor written back).
    loaded = customer_store.load_customers(session, entry.org_id, {entry.user_id}, {}, lock=True,
                                           with_fields=False)
    directory = Directory([s.copy() for s in loaded])
    before = {s.user_id: s for s in loaded}
    # The customer may have been merged since the decision: the survivor gets the points.
    target = directory.survivor(directory.by_id[entry.user_id])
    payload = entry.payload
    effects = apply_award(org, target, int(payload["points"]), str(payload["rule"]), now)
    target.updated_on = now
    customer_store.write_changes(session, before, directory.by_id)
    customer_store.insert_rows(session, t.PointsLedger, [{
        "org_id": entry.org_id, "user_id": target.user_id, "points": int(payload["points"]),
        "reason": str(payload.get("key", payload["rule"])), "outbox_id": entry.id, "created_at": now}])
    customer_store.insert_rows(session, t.AuditEntry, [{
        "org_id": entry.org_id, "user_id": target.user_id, "kind": "PointsAward", "field": str(payload["rule"]),
        "previous": str(target.loyalty_points - int(payload["points"])), "new": str(target.loyalty_points),
        "request_id": payload.get("request_id"), "issued_at": None, "user_context": None, "created_at": now}])
    session.execute(update(t.OutboxEntry).where(t.OutboxEntry.id == entry.id).values(done_at=now))
    return effects
