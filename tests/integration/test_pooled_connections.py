"""Pooled PostgreSQL connections are tested only after idling (store/db.py `_ping_after_idle`): a test on
every checkout was a round trip per unit of work, while a connection the server dropped during a quiet spell
must still be replaced before a batch uses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from customer_updates.store import db


@pytest.fixture
def engine_url(pg_url: str) -> Iterator[str]:
    db.dispose_engines()
    yield pg_url
    db.dispose_engines()


def _backend_pid(url: str) -> int:
    with db.session_scope(url) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _count_pings(url: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = db.get_engine(url).dialect
    pings: list[int] = []
    real = dialect.do_ping

    def counting(connection: Any) -> bool:
        pings.append(1)
        return real(connection)

    monkeypatch.setattr(dialect, "do_ping", counting)
    return pings


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_test(engine_url, monkeypatch):
    pings = _count_pings(engine_url, monkeypatch)
    first = _backend_pid(engine_url)
    assert [_backend_pid(engine_url) for _ in range(20)] == [first] * 20
    assert pings == []


def test_a_connection_that_idled_is_tested_and_kept_when_it_answers(engine_url, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    db.dispose_engines()
    pings = _count_pings(engine_url, monkeypatch)
    first = _backend_pid(engine_url)
    time.sleep(0.3)
    assert _backend_pid(engine_url) == first
    assert pings == [1]


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(engine_url, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    db.dispose_engines()
    first = _backend_pid(engine_url)
    other = create_engine(db.normalise_url(engine_url), poolclass=NullPool)  # as an operator's session would be
    with other.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    other.dispose()
    time.sleep(0.3)
    second = _backend_pid(engine_url)  # no error: the dead connection failed its test and was replaced
    assert second != first


def _autocommit(session: Session) -> bool:
    return bool(session.connection().connection.driver_connection.autocommit)  # type: ignore[union-attr]


def test_a_single_statement_runs_without_a_transaction_and_its_connection_returns_to_transactions(engine_url):
    with db.statement_scope(engine_url) as session:
        assert _autocommit(session)
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with db.session_scope(engine_url) as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # the same pooled connection
        assert not _autocommit(session)
