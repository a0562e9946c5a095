"""Customers are locked in user_id order by every transaction that waits for locks (the awards, the
commands set aside), also when a merge chain leads to a survivor below a row already held: such a
survivor is taken only if free, else the transaction gives up at once instead of risking a deadlock."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from customer_updates.models import tables as t
from customer_updates.services.worker_messages import TRANSIENT
from customer_updates.store import customers as store
from customer_updates.store.db import session_scope
from tests.conftest import load_examples
from tests.integration.row_locks import held_customer

MOBILES = ("919800000001", "919800000002")


def _ids(url: str) -> tuple[int, int]:
    """The two example customers' ids, lower first."""
    with session_scope(url) as session:
        ids = sorted(int(i) for i in session.scalars(
            select(t.Customer.user_id).where(t.Customer.org_id == 1, t.Customer.mobile.in_(MOBILES))))
    assert len(ids) == 2
    return ids[0], ids[1]


def _merge(url: str, victim: int, survivor: int) -> None:
    with session_scope(url) as session:
        session.execute(update(t.Customer).where(t.Customer.user_id == victim)
                        .values(active=False, merged_into=survivor))


def _load_waiting(url: str, ids: set[int]) -> list[int]:
    with session_scope(url) as session:
        # Without the ordered locking the load would wait here; the timeout turns a wait into a failure.
        session.execute(text("SET LOCAL lock_timeout = '5s'"))
        return sorted(s.user_id for s in store.load_customers(session, 1, ids, {}, lock=True))


def test_a_survivor_below_the_held_victim_that_another_transaction_holds_is_not_waited_for(pg_url):
    load_examples(pg_url)
    survivor, victim = _ids(pg_url)
    _merge(pg_url, victim, survivor)
    with held_customer(pg_url, survivor):
        started = time.monotonic()
        with pytest.raises(store.LockOrderConflict):
            _load_waiting(pg_url, {victim})
        assert time.monotonic() - started < 2


def test_a_survivor_below_the_held_victim_is_locked_with_it_when_free(pg_url):
    load_examples(pg_url)
    survivor, victim = _ids(pg_url)
    _merge(pg_url, victim, survivor)
    with session_scope(pg_url) as session:
        loaded = store.load_customers(session, 1, {victim}, {}, lock=True)
        with session_scope(pg_url) as probe, pytest.raises(OperationalError):
            probe.execute(text("SELECT user_id FROM customers WHERE user_id = :id FOR UPDATE NOWAIT"), {"id": survivor})
    assert sorted(s.user_id for s in loaded) == [survivor, victim]


def test_a_survivor_above_the_held_victim_is_waited_for(pg_url):
    load_examples(pg_url)
    victim, survivor = _ids(pg_url)
    _merge(pg_url, victim, survivor)
    with held_customer(pg_url, survivor, seconds=0.5):
        started = time.monotonic()
        assert _load_waiting(pg_url, {victim}) == [victim, survivor]
    assert time.monotonic() - started >= 0.3  # it waited for the holder's commit, in order


def test_a_lock_order_conflict_is_retried_like_a_deadlock():
    assert isinstance(store.LockOrderConflict("held"), TRANSIENT)
