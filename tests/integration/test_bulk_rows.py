"""Appended rows (store/sql.insert_rows) read back the same by COPY or INSERT, JSON made once or not."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from customer_updates import jsontext
from customer_updates.models import tables as t
from customer_updates.store.db import session_scope
from customer_updates.store.sql import insert_rows

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
