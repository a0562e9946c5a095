"""Merge requests and unmerges inside a batch's unit of work (SPEC §4), beside the updates.

They go through the same queue, locks and idempotency records as updates; this module reads what they
need besides the customers (the victims' identifiers and latest merge records) and writes what they
leave (merge records, their undoing, audit and outbox rows) through the applier's lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.models.commands import Command, MergeAsk
from customer_updates.rules.codes import Code
from customer_updates.rules.merge import MergeResult
from customer_updates.rules.parse import ItemRejected
from customer_updates.rules.state import IDENTIFIERS
from customer_updates.rules.unmerge import MergeRecord, UnmergeResult


def parse_ask(command: Command) -> MergeAsk:
    """The merge request's or unmerge's parties; ItemRejected 400 naming the field when malformed."""
    try:
        ask = MergeAsk.model_validate(command.customer)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ItemRejected(Code.INVALID_INPUT, ".".join(map(str, first["loc"])) or "customer") from exc
    if command.kind == "merge" and ask.survivor_id is None:
        raise ItemRejected(Code.INVALID_INPUT, "survivor_id")
    return ask


def victim_identifiers(session: Session, org_id: int, victim_ids: set[int]) -> dict[str, set[str]]:
    """The identifiers of the victims to unmerge: their holders must be loaded (and locked) as well."""
    found: dict[str, set[str]] = {name: set() for name in IDENTIFIERS}
    if not victim_ids:
        return found
    c = t.Customer.__table__.c
    for row in session.execute(select(c.mobile, c.email, c.external_id)
                               .where(c.org_id == org_id, c.user_id.in_(victim_ids))):
        for name in IDENTIFIERS:
            value = getattr(row, name)
            if value:
                found[name].add(value)
    return found


@dataclass
class MergeBook:
    """The merge records of one batch: read from the database for the victims it unmerges, and those its
    own merges made (not written yet), so that a merge and its unmerge may come in the same batch."""

    stored: dict[int, MergeRecord] = field(default_factory=dict)
    new: list[dict[str, Any]] = field(default_factory=list)  # the rows to insert, in the order they were made
    # Each victim's newest row of `new`: a victim merged, unmerged and merged again in one batch has two.
    newest: dict[int, dict[str, Any]] = field(default_factory=dict)
    undone: list[dict[str, Any]] = field(default_factory=list)  # updates of stored rows

    def read(self, session: Session, org_id: int, victim_ids: set[int]) -> None:
        """Read once the victims are locked: a merge or unmerge of theirs that committed meanwhile is seen,
        so that the record read agrees with the victim's row."""
        if not victim_ids:
            return
        m = t.Merge.__table__.c
        rows = session.execute(select(m.id, m.survivor_id, m.victim_id, m.moved, m.undone_at)
                               .where(m.org_id == org_id, m.victim_id.in_(victim_ids)).order_by(m.id))
        for row in rows:  # the newest record of each victim last
            self.stored[row.victim_id] = MergeRecord(row.id, row.survivor_id, row.victim_id, row.moved or {},
                                                     undone=row.undone_at is not None)

    def latest(self, victim_id: int) -> MergeRecord | None:
        row = self.newest.get(victim_id)
        if row is not None:
            return MergeRecord(None, row["survivor_id"], victim_id, row["moved"], undone="undone_at" in row)
        return self.stored.get(victim_id)

    def add(self, row: dict[str, Any]) -> None:
        self.new.append(row)
        self.newest[row["victim_id"]] = row

    def mark_undone(self, record: MergeRecord, request_id: str, context: Any, now: datetime) -> None:
        marks = {"undone_at": now, "undone_request_id": request_id, "undone_user_context": context}
        if record.id is None:
            self.newest[record.victim_id].update(marks)
        else:
            self.undone.append({"b_id": record.id, **marks})
            self.stored[record.victim_id] = MergeRecord(record.id, record.survivor_id, record.victim_id,
                                                        record.moved, undone=True)

    def rows(self) -> list[dict[str, Any]]:
        return [{"undone_at": None, "undone_request_id": None, "undone_user_context": None, **row}
                for row in self.new]

    def write_undone(self, session: Session) -> None:
        if self.undone:
            table: Any = t.Merge.__table__
            session.execute(update(table).where(table.c.id == bindparam("b_id")), self.undone)


def merge_rows(cmd: Command, common: dict[str, Any], context: Any, context_json: Any, survivor_id: int,
               merge: MergeResult, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """A merge's record, its audit rows (on both customers) and its event."""
    record = {"org_id": cmd.org_id, "survivor_id": survivor_id, "victim_id": merge.victim.user_id,
              "identifier": merge.identifier, "request_id": cmd.request_id, "issued_at": cmd.issued_at,
              "user_context": context_json, "snapshot": merge.snapshot, "moved": merge.moved, "created_at": now}
    audit = [{**common, "user_id": uid, "kind": "CustomerMerge", "field": merge.identifier,
              "previous": str(merge.victim.user_id), "new": str(survivor_id)}
             for uid in (survivor_id, merge.victim.user_id)]
    event = {"org_id": cmd.org_id, "user_id": survivor_id, "kind": "event", "created_at": now, "payload": {
        "event": "customer.merged", "survivor_id": survivor_id, "victim_id": merge.victim.user_id,
        "identifier": merge.identifier, "request_id": cmd.request_id, "user_context": context}}
    return record, audit, event


def unmerge_rows(cmd: Command, common: dict[str, Any], context: Any,
                 result: UnmergeResult, now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """An unmerge's audit rows (a marker on both, and each survivor field given back) and its event."""
    survivor_id, victim_id = result.survivor.user_id, result.victim.user_id
    audit = [{**common, "user_id": uid, "kind": "CustomerUnmerge", "field": "merged_into",
              "previous": str(survivor_id), "new": None} for uid in (survivor_id, victim_id)]
    fields = result.record.moved.get("fields", {})
    for key in result.restored:
        audit.append({**common, "user_id": survivor_id, "kind": "CustomerUnmerge", "field": key,
                      "previous": _shown(fields[key]["after"]), "new": _shown(fields[key]["before"])})
    event = {"org_id": cmd.org_id, "user_id": survivor_id, "kind": "event", "created_at": now, "payload": {
        "event": "customer.unmerged", "survivor_id": survivor_id, "victim_id": victim_id,
        "request_id": cmd.request_id, "issued_at": cmd.issued_at.isoformat(), "user_context": context,
        "restored": result.restored, "kept": result.kept}}
    return audit, event


def _shown(stored: Any) -> str | None:
    """A field as `state_json.field_value` keeps it, as audit text: its value without the stamp."""
    if stored is None or stored[0] is None:
        return None
    return str(stored[0])
