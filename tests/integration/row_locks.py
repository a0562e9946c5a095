"""Another worker's open transaction, as tests need it: a customer's row lock held from a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from customer_updates.models import tables as t
from customer_updates.store.db import session_scope


@contextmanager
def held_customer(url: str, user_id: int, seconds: float = 30) -> Iterator[threading.Event]:
    """Hold a customer's row lock until the yielded event is set, the block ends or `seconds` pass."""
    release, locked = threading.Event(), threading.Event()

    def hold() -> None:
        with session_scope(url) as session:
            session.execute(select(t.Customer.user_id).where(t.Customer.user_id == user_id).with_for_update())
            locked.set()
            release.wait(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(10)
