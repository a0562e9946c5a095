"""Engines and sessions. Made lazily, once per process (workers call `dispose_engines` after fork)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from customer_updates import jsontext
from customer_updates.settings import get_settings

_engines: dict[str, Engine] = {}
_session_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the transaction start be ours (BEGIN IMMEDIATE below), not the driver's.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # SQLite serialises writers; taking the write lock up front avoids upgrade deadlocks between
        # two processes that both read and then write (what FOR UPDATE does on PostgreSQL).
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _drop_unreachable_clients(engine: Engine, seconds: int) -> None:
    """Have PostgreSQL drop each session of this engine once its client stops answering for `seconds`.

    A worker host cut off by the network leaves its open transaction, and the row locks in it, on the
    server: the server is waiting for the client's next statement (or the rest of a COPY), and it notices a
    client that is gone only through TCP, after two hours of keepalive by default. Every worker that
    updates those customers waits that long. Keepalive probes (idle, then three probes) find a silent peer,
    tcp_user_timeout one that stops acknowledging what the server sent. A client that is merely busy still
    acknowledges both, so only an unreachable one is dropped.
    """
    idle, interval = max(1, seconds * 2 // 5), max(1, seconds // 5)
    parameters = {"tcp_keepalives_idle": idle, "tcp_keepalives_interval": interval, "tcp_keepalives_count": 3,
                  "tcp_user_timeout": seconds * 1000}
    statement = "SELECT " + ", ".join(f"set_config('{name}', '{value}', false)" for name, value in parameters.items())

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(statement)
        dbapi_connection.commit()


PING_AFTER_IDLE_SECONDS = 1.0


def _ping_after_idle(engine: Engine, seconds: float) -> None:
    """Test a pooled connection on checkout only when it sat unused for `seconds`.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip per unit of work. A connection used a
    moment ago is almost always still good, and if the server went away meanwhile the statement fails with a
    disconnect, SQLAlchemy drops the pool, and the batch is retried as after any transient error. A
    connection that idled (a quiet worker, a restarted server) is tested first,
    and replaced when the test fails (the pool retries a checkout that raises `DisconnectionError`)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or monotonic() - returned_at < seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("pooled connection failed its test after idling") from exc


def get_engine(url: str) -> Engine:
    url = normalise_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if make_url(url).get_backend_name() == "sqlite":
                engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=jsontext.dumps,
                                       json_deserializer=jsontext.loads)
                _sqlite_pragmas(engine)
            else:
                engine = create_engine(url, pool_size=5, max_overflow=5,
                                       json_serializer=jsontext.dumps, json_deserializer=jsontext.loads)
                # executemany INSERTs as multi-row VALUES statements (1,000 rows a page), as SQLAlchemy
                # does for psycopg2: psycopg 3 otherwise sends and parses one statement per row.
                engine.dialect.use_insertmanyvalues_wo_returning = True
                _ping_after_idle(engine, PING_AFTER_IDLE_SECONDS)
                unreachable = get_settings().database_unreachable_client_seconds
                if unreachable:
                    _drop_unreachable_clients(engine, unreachable)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Forget pooled connections inherited over fork; each process must open its own."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)
        _engines.clear()
        _session_factories.clear()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A unit of work: commits only when the block ends normally, rolls back otherwise."""
    factory = _session_factories.get(url)
    if factory is None:
        # One factory per database: each `sessionmaker` makes a Session subclass of its own, and SQLAlchemy
        # sets up its event dispatch again for every new class, on every unit of work.
        factory = _session_factories.setdefault(url, sessionmaker(get_engine(url), expire_on_commit=False))
    with factory() as session, session.begin():
        yield session


@contextmanager
def statement_scope(url: str) -> Iterator[Session]:
    """A unit of work of a single statement: on PostgreSQL without BEGIN and COMMIT, two round trips of
    three, since one statement is a transaction of its own. Elsewhere (SQLite takes its write lock at BEGIN,
    store/db.py `_sqlite_pragmas`), the same as `session_scope`."""
    engine = get_engine(url)
    if engine.dialect.name != "postgresql":
        with session_scope(url) as session:
            yield session
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection, \
            Session(connection) as session:
        yield session
