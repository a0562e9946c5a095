"""A batch's results read back from the database (what HTTP and `results batch` answer once Redis forgot)."""

from __future__ import annotations

from typing import Any

from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.store.db import session_scope
from customer_updates.store.records import stored_batch_items


def _result(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id}


def test_a_stored_batch_lists_applied_and_rejected_items_in_the_order_they_were_sent(db_url: str) -> None:
    now = utcnow()
    with session_scope(db_url) as session:
        for position, request_id in ((2, "c"), (0, "a")):
            session.add(t.CommandRecord(org_id=1, request_id=request_id, payload_hash="h", batch_id="b1",
                                        position=position, success=True, code=1000,
                                        result=_result(request_id), created_at=now))
        session.add(t.RejectedCommand(org_id=1, request_id="b", payload_hash="h", batch_id="b1", position=1,
                                      result=_result("b"), created_at=now))
        # Another org's batch of the same id, and another batch of the org: neither belongs to it.
        session.add(t.CommandRecord(org_id=2, request_id="x", payload_hash="h", batch_id="b1", position=0,
                                    success=True, code=1000, result=_result("x"), created_at=now))
        session.add(t.CommandRecord(org_id=1, request_id="y", payload_hash="h", batch_id="b2", position=0,
                                    success=True, code=1000, result=_result("y"), created_at=now))

    with session_scope(db_url) as session:
        assert stored_batch_items(session, 1, "b1") == [_result("a"), _result("b"), _result("c")]
        assert stored_batch_items(session, 1, "unknown") == []
