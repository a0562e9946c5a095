"""Outbox rows are locked in id order by whoever marks them, as the awards lock them: no deadlock.

A batch's award task starts while the batch is still marking its outbox rows published. An UPDATE locks
rows in the order its plan visits them, their place in the table; the awards lock them in id order. Two
orders over the same rows deadlocked in 6 of 35 bench runs (PostgreSQL noticed after a second).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import exc, insert, select, text

from customer_updates.models import tables as t
from customer_updates.store import records
from customer_updates.store.db import get_engine, session_scope

WHEN = datetime(2026, 5, 6, 7, 8, 9)


def _outbox_row(row_id: int) -> dict[str, object]:
    return {"id": row_id, "org_id": 1, "user_id": row_id, "kind": "award", "payload": {"points": 5},
            "created_at": WHEN}


def _wait_until_blocked(url: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    with get_engine(url).connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND wait_event_type = 'Lock'"))
            if waiting:
                return
            conn.rollback()
            time.sleep(0.05)
    raise AssertionError("the marking transaction never waited for the held row")


def test_marking_rows_published_locks_them_in_id_order_whatever_their_place_in_the_table(pg_url):
    with session_scope(pg_url) as session:
        # Row 2 first in the table, row 1 after it.
        session.execute(insert(t.OutboxEntry), [_outbox_row(2)])
        session.execute(insert(t.OutboxEntry), [_outbox_row(1)])
    engine = get_engine(pg_url)
    holder = engine.connect()
    holder.begin()
    holder.execute(text("SELECT id FROM outbox WHERE id = 2 FOR UPDATE"))

    def mark() -> None:
        with session_scope(pg_url) as session:
            records.mark_published(session, [1, 2], WHEN)

    marking = threading.Thread(target=mark)
    marking.start()
    try:
        _wait_until_blocked(pg_url)
        # Waiting for row 2, the marking transaction holds row 1 already: it took the lower id first.
        with engine.connect() as probe, pytest.raises(exc.OperationalError, match="could not obtain lock"):
            probe.execute(text("SELECT id FROM outbox WHERE id = 1 FOR UPDATE NOWAIT"))
    finally:
        holder.commit()
        holder.close()
        marking.join(timeout=10)

    with session_scope(pg_url) as session:
        marked = session.scalars(select(t.OutboxEntry.published_at).order_by(t.OutboxEntry.id)).all()
    assert marked == [WHEN, WHEN]
