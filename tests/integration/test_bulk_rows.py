"""Appended rows (store/sql.insert_rows) read back the same by COPY or INSERT, JSON made once or not."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, text

from customer_updates import jsontext
from customer_updates.models import tables as t
from customer_updates.store.db import session_scope
from customer_updates.store.sql import insert_rows, next_ids

WHEN = datetime(2026, 3, 4, 5, 6, 7)
CONTEXT = {"entity_type": "TILL", "entity_id": "tab\there", "source": 'say "hi"', "source_id": "back\\slash ü"}


@pytest.mark.parametrize("count", [3, 20], ids=["by INSERT", "by COPY"])
def test_json_text_made_beforehand_is_stored_as_the_same_json_as_the_value(loaded_db, count):
    made = jsontext.dumped(CONTEXT)
    rows = [{"org_id": 1, "user_id": i, "kind": "CustomerUpdate", "field": "firstname", "previous": None,
             "new": str(i), "request_id": f"r{i}", "issued_at": WHEN, "created_at": WHEN,
             "user_context": made if i % 2 else dict(CONTEXT)} for i in range(count)]
    with session_scope(loaded_db) as session:
        insert_rows(session, t.AuditEntry, rows)

    with session_scope(loaded_db) as session:
        stored = session.execute(select(t.AuditEntry.request_id, t.AuditEntry.user_context)
                                 .where(t.AuditEntry.request_id.like("r%"))).all()
    assert len(stored) == count
    assert all(context == CONTEXT for _, context in stored)


def _rows_of(model: type[t.Base], count: int) -> list[dict[str, object]]:
    """Rows as the worker appends them, with every kind of column value (and None where allowed)."""
    if model is t.CommandRecord:
        return [{"org_id": 1, "request_id": f"c{i}", "payload_hash": "ab" * 32, "batch_id": None if i % 2 else "b",
                 "position": i if i % 2 else None, "success": i % 3 == 0, "code": 1000 + i,
                 "result": jsontext.dumped({"n": i}), "created_at": WHEN} for i in range(count)]
    if model is t.OutboxEntry:
        return [{"id": 10_000 + i, "org_id": 1, "user_id": 2**40 + i, "kind": "award", "payload": {"points": i},
                 "created_at": WHEN} for i in range(count)]
    if model is t.PointsLedger:
        return [{"org_id": 1, "user_id": 2**40 + i, "points": -i, "reason": "first_fill", "outbox_id": None,
                 "created_at": WHEN} for i in range(count)]
    if model is t.Merge:
        return [{"org_id": 1, "survivor_id": 5, "victim_id": 100 + i, "identifier": "email", "request_id": None,
                 "user_context": None, "snapshot": {"points": i, "names": ["ü", 'q"']}, "created_at": WHEN}
                for i in range(count)]
    raise AssertionError(model)


@pytest.mark.parametrize("model", [t.CommandRecord, t.OutboxEntry, t.PointsLedger, t.Merge],
                         ids=lambda m: m.__tablename__)
def test_rows_appended_in_bulk_read_back_as_they_were_written(loaded_db, model):
    rows = _rows_of(model, 20)
    with session_scope(loaded_db) as session:
        insert_rows(session, model, rows)

    table = model.__table__
    with session_scope(loaded_db) as session:
        stored = [dict(r._mapping) for r in session.execute(select(*(table.c[name] for name in rows[0])))]
    written = [{k: v.value if isinstance(v, jsontext.Dumped) else v for k, v in row.items()} for row in rows]
    assert sorted(stored, key=repr) == sorted(written, key=repr)  # the same columns in the same order


def test_ids_drawn_for_copied_rows_are_new_distinct_values_of_the_column_sequence(pg_url):
    # PostgreSQL only: elsewhere outbox rows get their ids by INSERT ... RETURNING.
    with session_scope(pg_url) as session:
        first = next_ids(session, t.OutboxEntry.__tablename__, "id", 300)
        second = next_ids(session, t.OutboxEntry.__tablename__, "id", 2)
        session.execute(text("INSERT INTO outbox (org_id, user_id, kind, payload, created_at) "
                             "VALUES (1, 1, 'event', '{}', now())"))
        by_default = session.execute(text("SELECT max(id) FROM outbox")).scalar_one()

    assert first == sorted(set(first)) and len(first) == 300
    assert second[0] > first[-1] and by_default > second[-1]  # the sequence the column's default uses
