"""Apply a batch of commands in one unit of work (DESIGN §1, steps 1 to 4).

One transaction for the whole batch: idempotency records, customer changes, audit, merges and outbox
rows are committed together or not at all. Items are atomic without savepoints because the rules are
pure: a failed item never touched the in-memory states, so there is nothing to roll back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.orm import Session

from customer_updates import jsontext
from customer_updates.models import tables as t
from customer_updates.models.commands import Command, MergeAsk, find_unusable, utcnow
from customer_updates.models.results import customer_item, failed_item, item_status
from customer_updates.rules.codes import Code, message
from customer_updates.rules.directory import Directory
from customer_updates.rules.identifiers import normalise
from customer_updates.rules.merge_request import request_merge
from customer_updates.rules.parse import ItemRejected, UpdateItem, parse_item
from customer_updates.rules.side_effects import apply_award
from customer_updates.rules.state import IDENTIFIERS, CustomerState, OrgConfig
from customer_updates.rules.unmerge import unmerge
from customer_updates.rules.update import Applied, Change, Warning_, apply_item
from customer_updates.services import merge_requests
from customer_updates.store import customers as customer_store
from customer_updates.store import records
from customer_updates.store.orgs import OrgCache
from customer_updates.store.sql import FEW_ROWS, insert_rows, insert_statement, is_postgres, write_few

log = logging.getLogger("customer_updates.apply")

_CUSTOMERS: Table = t.Customer.__table__  # type: ignore[assignment]
_AUDIT: Table = t.AuditEntry.__table__  # type: ignore[assignment]
_MERGES: Table = t.Merge.__table__  # type: ignore[assignment]
_RECORDS: Table = t.CommandRecord.__table__  # type: ignore[assignment]
_OUTBOX: Table = t.OutboxEntry.__table__  # type: ignore[assignment]


@dataclass
class StoredResult:
    org_id: int
    request_id: str
    payload_hash: str
    result: dict[str, Any]
    rejected: bool = False  # a 409 for a reused request id: stored beside, not over, the first result
    text: str | None = None  # the result's JSON text where it was made already (for the idempotency row)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str  # award | event | events (store.records.insert_outbox)
    payload: dict[str, Any]


@dataclass
class BatchOutcome:
    results: list[StoredResult] = field(default_factory=list)
    undecodable: list[tuple[Any, str]] = field(default_factory=list)  # (raw command, error) to dead-letter
    # Raw commands set aside, untouched, because another transaction holds a customer they name: the
    # caller applies them after this batch's commit (store.customers.load_unlocked_customers).
    deferred: list[Any] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)  # to publish after commit, without a reload
    outcomes: list[tuple[str, int, str, int]] = field(default_factory=list)  # for logs: request, org, kind, code


@dataclass
class _Pending:
    raw: Any
    command: Command
    hash: str
    item: UpdateItem | None = None
    # (code, message), not the exception: its traceback's frames would hold the whole batch in a
    # reference cycle, which only the garbage collector frees, and that collection is paid on every batch.
    rejection: tuple[Code, str] | None = None
    echo: Any = None  # what a failed result echoes of the item (nothing of an item no store can keep)
    ask: MergeAsk | None = None  # the parties of a merge request or an unmerge


def decode(raw_commands: list[Any], outcome: BatchOutcome) -> list[tuple[Any, Command]]:
    commands = []
    for raw in raw_commands:
        try:
            commands.append((raw, Command.model_validate(raw)))
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            outcome.undecodable.append((raw, f"invalid envelope: {errors}"))
    return commands


def _lookup_keys(org: OrgConfig, pendings: list[_Pending]) -> tuple[set[int], dict[str, set[str]]]:
    ids: set[int] = set()
    idents: dict[str, set[str]] = {name: set() for name in IDENTIFIERS}
    for p in pendings:
        if p.ask is not None:
            ids.update(uid for uid in (p.ask.survivor_id, p.ask.victim_id) if uid is not None)
        if p.item is None:
            continue
        if p.item.id is not None:
            ids.add(p.item.id)
        for name, raw in p.item.identifiers.items():
            value = normalise(name, raw, org)
            if value is not None:
                idents[name].add(value)
    return ids, idents


def _names_any(org: OrgConfig, p: _Pending, keys: set[customer_store.LookupKey]) -> bool:
    """Whether the command's item names a customer by one of these lookup keys."""
    if p.ask is not None:
        return ("user_id", p.ask.victim_id) in keys or ("user_id", p.ask.survivor_id) in keys
    if p.item is None:
        return False
    if p.item.id is not None and ("user_id", p.item.id) in keys:
        return True
    return any((name, normalise(name, raw, org)) in keys for name, raw in p.item.identifiers.items())


class BatchApplier:
    """Applies the commands of one message (or one consumer-side batch) inside an open session."""

    def __init__(self, session: Session, orgs: OrgCache, now: datetime | None = None,
                 wait_for_locks: bool = False) -> None:
        """`wait_for_locks`: wait for customers another transaction holds instead of deferring their
        commands (for the deferred commands themselves, so that they are applied in the end)."""
        self.session = session
        self.orgs = orgs
        self.wait_for_locks = wait_for_locks
        self.now = now or utcnow()
        self.outcome = BatchOutcome()
        self.audit: list[dict[str, Any]] = []
        self.customer_rows: list[list[dict[str, Any]]] = []  # store.customers.changed_rows' groups, per org
        self.book = merge_requests.MergeBook()
        self.outbox: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []

    def run(self, raw_commands: list[Any]) -> BatchOutcome:
        commands = decode(raw_commands, self.outcome)
        known = records.existing_records(self.session, {(c.org_id, c.request_id) for _, c in commands})
        seen: dict[tuple[int, str], StoredResult] = {
            key: StoredResult(r.org_id, r.request_id, r.payload_hash, r.result) for key, r in known.items()
        }
        by_org: dict[int, list[_Pending]] = {}
        for raw, command in commands:
            pending = _Pending(raw, command, command.payload_hash(), echo=command.customer)
            unusable = find_unusable(command.customer)
            if unusable is not None:
                pending.rejection, pending.echo = (Code.INVALID_INPUT, message(Code.INVALID_INPUT, unusable)), None
            by_org.setdefault(command.org_id, []).append(pending)
        for org_id, pendings in sorted(by_org.items()):  # one order of locks for every worker (load_customers)
            self._apply_org(org_id, pendings, seen)
        self._write()
        return self.outcome

    def _apply_org(self, org_id: int, pendings: list[_Pending], seen: dict[tuple[int, str], StoredResult]) -> None:
        org = self.orgs.get(self.session, org_id)
        for p in pendings:
            if p.rejection is not None:
                continue
            try:
                if p.command.kind == "update":
                    p.item = parse_item(p.command.customer)
                else:
                    p.ask = merge_requests.parse_ask(p.command)
                    p.echo = {"id": p.ask.victim_id}
            except ItemRejected as exc:
                p.rejection = (exc.code, exc.message)
        directory = Directory()
        before: dict[int, CustomerState] = {}
        busy: set[customer_store.LookupKey] = set()
        if org is not None:
            ids, idents = _lookup_keys(org, pendings)
            unmerging = {p.ask.victim_id for p in pendings if p.ask is not None and p.command.kind == "unmerge"}
            if unmerging:  # whoever holds a victim's identifier now is locked too
                for name, values in merge_requests.victim_identifiers(self.session, org_id, unmerging).items():
                    idents[name] |= values
            if self.wait_for_locks:
                loaded = customer_store.load_customers(self.session, org_id, ids, idents, lock=True)
            else:
                loaded, busy = customer_store.load_unlocked_customers(self.session, org_id, ids, idents)
            # After the lock, not before: a record read earlier may have been undone, or followed by a newer
            # one, by a worker that committed while this one waited, and undoing it would wake a victim that
            # a newer merge still holds.
            self.book.read(self.session, org_id, unmerging)
            # No copies: the rules copy on write, so the loaded states stay as they were ("before").
            before = {s.user_id: s for s in loaded}
            directory = Directory(loaded)
        deferred: set[tuple[int, str]] = set()
        for p in pendings:
            key = (org_id, p.command.request_id)
            previous = seen.get(key)
            if previous is not None:
                if previous.payload_hash == p.hash:
                    self._done(previous, "duplicate")
                else:
                    self._conflict(p)
                continue
            # A request id seen again after its first was set aside goes with it: the first stays first.
            if key in deferred or (busy and org is not None and _names_any(org, p, busy)):
                deferred.add(key)
                self.outcome.deferred.append(p.raw)
                continue
            result = self._apply_one(org, p, directory)
            seen[key] = result
            self._done(result, "applied")
        # Written with the batch's other rows (`_write`): no later read of this transaction needs them.
        self.customer_rows.extend(customer_store.changed_rows(before, directory.by_id,
                                                                keep_as_null=is_postgres(self.session)))

    def _apply_one(self, org: OrgConfig | None, p: _Pending, directory: Directory) -> StoredResult:
        cmd = p.command
        if org is None:
            return self._record(p, failed_item(p.echo, Code.INVALID_INPUT,
                                               message(Code.INVALID_INPUT, f"org_id {cmd.org_id} is not a known org")))
        if p.rejection is not None or (p.item is None and p.ask is None):
            code, text = p.rejection or (Code.INVALID_INPUT, message(Code.INVALID_INPUT))
            return self._record(p, failed_item(p.echo, code, text))
        try:
            if p.ask is not None and cmd.kind == "unmerge":
                return self._unmerge(org, p, p.ask, directory)
            if p.ask is not None and p.ask.survivor_id is not None:
                merged = request_merge(org, p.ask.survivor_id, p.ask.victim_id, directory, self.now)
                applied = Applied(target=merged.survivor, before=directory.by_id[merged.survivor.user_id],
                                  merges=[merged], changes=[Change("merged_user_id", None, str(p.ask.victim_id))],
                                  warnings=[Warning_(Code.CUSTOMER_MERGED, f"user_id {p.ask.victim_id} merged")])
            else:
                assert p.item is not None
                applied = apply_item(org, p.item, directory, cmd.issued_at, self.now)
        except ItemRejected as exc:
            return self._record(p, failed_item(p.echo, exc.code, exc.message))
        except Exception:  # a bug must fail one item, never the batch or the worker
            log.exception("item failed unexpectedly", extra={"org_id": cmd.org_id, "request_id": cmd.request_id})
            return self._record(p, failed_item(cmd.customer, Code.INTERNAL_ERROR, message(Code.INTERNAL_ERROR)))
        for merge in applied.merges:
            directory.put(merge.victim)
        directory.put(applied.target)
        effects = self._follow_on(org, cmd, applied)
        status = item_status(Code.SUCCESS, warnings=[(w.code, w.message) for w in applied.warnings])
        return self._record(p, customer_item(org, applied.target, status, effects))

    def _follow_on(self, org: OrgConfig, cmd: Command, applied: Applied) -> list[dict[str, Any]]:
        """Audit rows, merge records and outbox rows of one applied item; returns the v1.1 effects."""
        target = applied.target
        context = cmd.user_context.model_dump() if cmd.user_context else None
        context_json = jsontext.dumped(context) if context is not None else None  # one text for all its rows
        common = {"org_id": cmd.org_id, "request_id": cmd.request_id, "issued_at": cmd.issued_at,
                  "user_context": context_json, "created_at": self.now}
        for merge in applied.merges:
            record, audit, event = merge_requests.merge_rows(cmd, common, context, context_json, target.user_id,
                                                             merge, self.now)
            self.book.add(record)
            self.audit.extend(audit)
            self.outbox.append(event)
        for change in applied.changes:
            self.audit.append({**common, "user_id": target.user_id, "kind": "CustomerUpdate",
                               "field": change.field, "previous": change.previous, "new": change.new})
        if applied.changes:
            self.outbox.append({"org_id": cmd.org_id, "user_id": target.user_id, "kind": "event",
                                "created_at": self.now, "payload": {
                                    "event": "customer.updated", "user_id": target.user_id,
                                    "request_id": cmd.request_id, "issued_at": cmd.issued_at.isoformat(),
                                    "user_context": context,
                                    "changes": [{"field": c.field, "previous": c.previous, "current": c.new}
                                                for c in applied.changes]}})
        effects: list[dict[str, Any]] = []
        # What the follow-on awards will make of points and tier (a copy: the awards apply later).
        projection = target.copy() if applied.awards else target
        for award in applied.awards:
            self.outbox.append({"org_id": cmd.org_id, "user_id": target.user_id, "kind": "award",
                                "created_at": self.now, "payload": {
                                    "points": award.points, "rule": award.rule, "key": award.key,
                                    "request_id": cmd.request_id}})
            effects.extend(apply_award(org, projection, award.points, award.rule, self.now))
        return effects

    def _unmerge(self, org: OrgConfig, p: _Pending, ask: MergeAsk, directory: Directory) -> StoredResult:
        """SPEC §4 Unmerge of the victim's latest merge; ItemRejected when it may not be undone."""
        cmd = p.command
        result = unmerge(org, ask.victim_id, self.book.latest(ask.victim_id), directory, self.now)
        directory.put(result.victim)
        directory.put(result.survivor)
        context = cmd.user_context.model_dump() if cmd.user_context else None
        context_json = jsontext.dumped(context) if context is not None else None
        common = {"org_id": cmd.org_id, "request_id": cmd.request_id, "issued_at": cmd.issued_at,
                  "user_context": context_json, "created_at": self.now}
        audit, event = merge_requests.unmerge_rows(cmd, common, context, result, self.now)
        self.audit.extend(audit)
        self.outbox.append(event)
        self.book.mark_undone(result.record, cmd.request_id, context, self.now)
        return self._record(p, customer_item(org, result.victim, item_status(Code.SUCCESS)))

    def _record(self, p: _Pending, result: dict[str, Any]) -> StoredResult:
        cmd = p.command
        code = int(result["item_status"]["code"])
        stored = jsontext.dumped(result)  # the same text goes to Redis after commit
        self.records.append({"org_id": cmd.org_id, "request_id": cmd.request_id, "payload_hash": p.hash,
                             "batch_id": cmd.batch_id, "position": cmd.position, "success": code == 1000,
                             "code": code, "result": stored, "created_at": self.now})
        return StoredResult(cmd.org_id, cmd.request_id, p.hash, result, text=stored.text)

    def _conflict(self, p: _Pending) -> None:
        cmd = p.command
        result = failed_item(p.echo, Code.CONFLICTING_REQUEST_ID, message(Code.CONFLICTING_REQUEST_ID))
        self.rejected.append({"org_id": cmd.org_id, "request_id": cmd.request_id, "payload_hash": p.hash,
                              "batch_id": cmd.batch_id, "position": cmd.position, "result": result,
                              "created_at": self.now})
        self._done(StoredResult(cmd.org_id, cmd.request_id, p.hash, result, rejected=True), "conflict")

    def _done(self, result: StoredResult, kind: str) -> None:
        self.outcome.results.append(result)
        code = int(result.result["item_status"]["code"])
        self.outcome.outcomes.append((result.request_id, result.org_id, kind, code))

    def _write(self) -> None:
        few = is_postgres(self.session) and len(self.records) < FEW_ROWS
        # One group of customer rows can go with the others; several go one after the other (changed_rows).
        together = self.customer_rows[0] if few and len(self.customer_rows) == 1 else []
        if not together:
            customer_store.write_rows(self.session, self.customer_rows)
        if few:
            # A quiet system's batch: every row in one statement (store/sql.py write_few).
            inserts = [(_AUDIT, self.audit), (_MERGES, self.book.rows()), (_RECORDS, self.records)]
            changes = (_CUSTOMERS, "user_id", together)
            ids = write_few(self.session, changes, inserts, (_OUTBOX, self.outbox))
            stored = [(i, row["kind"], row["payload"]) for i, row in zip(ids, self.outbox, strict=True)]
        else:
            insert_rows(self.session, t.AuditEntry, self.audit)
            insert_rows(self.session, t.Merge, self.book.rows())
            insert_rows(self.session, t.CommandRecord, self.records)
            stored = records.insert_outbox(self.session, self.outbox)
        self.book.write_undone(self.session)
        if self.rejected:
            rejected = insert_statement(t.RejectedCommand.__table__, is_postgres(self.session), skip_conflicts=True)
            self.session.execute(rejected, self.rejected)
        self.outcome.outbox = [OutboxRow(*row) for row in stored]
