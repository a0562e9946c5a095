"""A customer's history (SPEC §8): field changes, merges, unmerges and awards, newest first, a page at a time.

Read from the audit entries, which every change writes in its own transaction; a merge's or unmerge's
entry is completed from its merge record with what moved from the victim, per field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from customer_updates.models import tables as t

KINDS = {"CustomerUpdate": "field_change", "CustomerMerge": "merge", "CustomerUnmerge": "unmerge",
         "PointsAward": "award"}


def customer_history(session: Session, org_id: int, user_id: int, limit: int = 50,
                     before: int | None = None) -> dict[str, Any]:
    """`limit` entries older than the entry id `before` (the newest without it); `next_before` pages on."""
    limit = max(1, min(limit, 500))
    audit = t.AuditEntry
    query = select(audit).where(audit.org_id == org_id, audit.user_id == user_id)
    if before is not None:
        query = query.where(audit.id < before)
    rows = list(session.scalars(query.order_by(audit.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    records = _merge_records(session, org_id, [r for r in rows if r.kind in ("CustomerMerge", "CustomerUnmerge")])
    entries = [_entry(row, records) for row in rows]
    return {"org_id": org_id, "user_id": user_id, "entries": entries,
            "next_before": rows[-1].id if more and rows else None}


def _merge_records(session: Session, org_id: int, rows: list[t.AuditEntry]) -> dict[tuple[str | None, int], t.Merge]:
    """The merge records the page's merge and unmerge entries belong to, by (request id, victim)."""
    if not rows:
        return {}
    request_ids = {r.request_id for r in rows if r.request_id}
    merges = session.scalars(select(t.Merge).where(t.Merge.org_id == org_id,
                                                   (t.Merge.request_id.in_(request_ids))
                                                   | (t.Merge.undone_request_id.in_(request_ids))))
    found: dict[tuple[str | None, int], t.Merge] = {}
    for m in merges:
        found[(m.request_id, m.victim_id)] = m
        if m.undone_request_id:
            found[(m.undone_request_id, m.victim_id)] = m
    return found


def _entry(row: t.AuditEntry, records: dict[tuple[str | None, int], t.Merge]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": row.id, "kind": KINDS.get(row.kind, row.kind), "field": row.field, "previous": row.previous,
        "new": row.new, "request_id": row.request_id,
        "issued_at": row.issued_at.isoformat(sep=" ") if row.issued_at else None,
        "applied_at": row.created_at.isoformat(sep=" "), "user_context": row.user_context,
    }
    if row.kind == "CustomerMerge" and row.previous and row.previous.isdigit():
        record = records.get((row.request_id, int(row.previous)))
        entry.update({"survivor_id": int(row.new or 0), "victim_id": int(row.previous),
                      "identifier": row.field, "moved": _moved(record)})
    elif row.kind == "CustomerUnmerge" and row.field == "merged_into":
        entry["survivor_id"] = int(row.previous or 0)
    return entry


def _moved(record: t.Merge | None) -> list[dict[str, Any]]:
    """Per field of the survivor that the merge changed: its value before and after (without stamps)."""
    if record is None or not record.moved:
        return []
    return [{"field": key, "previous": (change["before"] or [None])[0], "new": (change["after"] or [None])[0]}
            for key, change in record.moved.get("fields", {}).items()]
