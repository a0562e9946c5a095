"""A quiet system's batch writes its customer, audit, idempotency and outbox rows in one statement
(store/sql.py `write_few`): every row lands as a statement each would have written it, and the outbox ids
come back in the rows' order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select

from customer_updates import jsontext
from customer_updates.models import tables as t
from customer_updates.rules.state import FieldValue, SubscriptionState
from customer_updates.store import customers as customer_store
from customer_updates.store.db import session_scope
from customer_updates.store.sql import write_few
from tests.conftest import load_examples

WHEN = datetime(2026, 5, 6, 7, 8, 9, 123456)
CUSTOMERS: Table = t.Customer.__table__  # type: ignore[assignment]
AUDIT: Table = t.AuditEntry.__table__  # type: ignore[assignment]
RECORDS: Table = t.CommandRecord.__table__  # type: ignore[assignment]
OUTBOX: Table = t.OutboxEntry.__table__  # type: ignore[assignment]


def _audit(field: str, new: str | None) -> dict[str, Any]:
    return {"org_id": 1, "user_id": 7, "kind": "CustomerUpdate", "field": field, "previous": None, "new": new,
            "request_id": "r1", "issued_at": WHEN, "user_context": jsontext.dumped({"till": "ü \"q\""}),
            "created_at": WHEN}


def _record(request_id: str) -> dict[str, Any]:
    result = {"user_id": 7, "item_status": {"success": "true", "code": "1000"}}
    return {"org_id": 1, "request_id": request_id, "payload_hash": "h" * 64, "batch_id": None, "position": None,
            "success": True, "code": 1000, "result": jsontext.dumped(result), "created_at": WHEN}


def _outbox(user_id: int, kind: str) -> dict[str, Any]:
    return {"org_id": 1, "user_id": user_id, "kind": kind, "created_at": WHEN,
            "payload": {"event": "customer.updated", "user_id": user_id, "purchases": "12.50"}}


def test_every_row_lands_as_written_and_the_outbox_ids_follow_the_rows_order(pg_url):
    outbox = [_outbox(9, "event"), _outbox(3, "award"), _outbox(5, "event")]
    with session_scope(pg_url) as session:
        ids = write_few(session, (CUSTOMERS, "user_id", []),
                        [(AUDIT, [_audit("firstname", "Zoë"), _audit("lastname", None)]),
                         (RECORDS, [_record("r1"), _record("r2")])], (OUTBOX, outbox))
    assert len(set(ids)) == 3
    with session_scope(pg_url) as session:
        stored = {row.id: row for row in session.scalars(select(t.OutboxEntry))}
        audit = session.scalars(select(t.AuditEntry).order_by(t.AuditEntry.id)).all()
        records = session.scalars(select(t.CommandRecord).order_by(t.CommandRecord.request_id)).all()
    assert [stored[i].user_id for i in ids] == [9, 3, 5]
    assert [stored[i].kind for i in ids] == ["event", "award", "event"]
    assert stored[ids[0]].payload == outbox[0]["payload"] and stored[ids[0]].published_at is None
    assert [(a.field, a.new, a.previous) for a in audit] == [("firstname", "Zoë", None), ("lastname", None, None)]
    assert audit[0].user_context == {"till": "ü \"q\""} and audit[0].issued_at == WHEN
    assert [r.request_id for r in records] == ["r1", "r2"]
    assert records[0].result == {"user_id": 7, "item_status": {"success": "true", "code": "1000"}}
    assert records[0].success is True and records[0].created_at == WHEN


def test_a_batch_without_outbox_rows_writes_the_others_and_returns_no_ids(pg_url):
    with session_scope(pg_url) as session:
        assert write_few(session, (CUSTOMERS, "user_id", []), [(AUDIT, []), (RECORDS, [_record("r3")])],
                         (OUTBOX, [])) == []
        assert write_few(session, (CUSTOMERS, "user_id", []), [(AUDIT, [])], (OUTBOX, [])) == []
    with session_scope(pg_url) as session:
        assert session.scalars(select(t.CommandRecord.request_id)).all() == ["r3"]
        assert session.scalars(select(t.OutboxEntry.id)).all() == []


def test_a_customer_changed_in_the_same_statement_reads_back_as_written(pg_url):
    load_examples(pg_url)
    with session_scope(pg_url) as session:
        [loaded] = customer_store.load_customers(session, 1, [1], {}, lock=True)
        changed = loaded.copy()
        changed.firstname, changed.lastname, changed.updated_on = "Zoë", None, WHEN
        changed.lifetime_purchases = Decimal("1234.50")
        changed.custom = {**changed.custom, "favourite_drink": FieldValue('say "chai"', WHEN)}
        changed.subscriptions = {**changed.subscriptions, ("EMAIL", "BULK"): SubscriptionState(0, "ALL", WHEN)}
        [rows] = customer_store.changed_rows({1: loaded}, {1: changed})
        write_few(session, (CUSTOMERS, "user_id", rows), [(RECORDS, [_record("r4")])], (OUTBOX, [_outbox(1, "event")]))
    with session_scope(pg_url) as session:
        [again] = customer_store.load_customers(session, 1, [1], {}, lock=False)
        assert session.scalars(select(t.CommandRecord.request_id)).all() == ["r4"]
    assert customer_store.row_values(again) == customer_store.row_values(changed)
    assert again.custom == changed.custom and again.subscriptions == changed.subscriptions
