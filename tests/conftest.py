"""Shared fixtures: real PostgreSQL and Redis on loopback, SQLite files, worker processes.

Servers: PostgreSQL at 127.0.0.1:5432 (user postgres) and Redis at 127.0.0.1:6379, or whatever
`TEST_POSTGRES_URL` / `TEST_REDIS_URL` name. Each test session gets its own PostgreSQL database and its
own Redis database number (and RabbitMQ vhost, at `TEST_RABBITMQ_URL`), so parallel sessions never see each
other's queues. When a server is missing the tests that need it fail in CI (`CI=true`) and are skipped on a
laptop.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text

from customer_updates.ops.processes import WorkerProcess, worker_command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ_BASE_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# With pytest-xdist (scripts/test runs the suite on several processes), the tests that start worker processes
# and measure time against the machine's load run one at a time on one xdist worker: two fault scenarios side
# by side on two cores would each see the other's load as their own slowness.
TIMING_SENSITIVE_FILES = ("test_health.py", "test_flower_browser.py", "test_metrics_scrape.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("system") or item.path.name in TIMING_SENSITIVE_FILES:
            item.add_marker(pytest.mark.xdist_group("one_at_a_time"))


def _unavailable(what: str, exc: Exception) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI and is not reachable: {exc}")
    pytest.skip(f"{what} not reachable: {exc}")


def _new_pg_database() -> str:
    name = f"cu_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    from customer_updates.store.migrate import upgrade

    url = _new_pg_database()
    upgrade(url)
    yield url
    from customer_updates.store.db import dispose_engines

    dispose_engines()
    _drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from customer_updates.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'customers.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on PostgreSQL and once on SQLite."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url"))


REDIS_CLAIM_KEY = "cu:test:claim"


def _empty_but_the_claim(client: redis_lib.Redis) -> None:
    """Delete every key of the database except the claim. Not FLUSHDB: it drops the claim too, and a
    session starting in that moment (xdist starts its workers together) took the same database."""
    for key in client.scan_iter(count=1000):
        if key != REDIS_CLAIM_KEY.encode():
            client.delete(key)


def _claim_redis_db() -> tuple[str, redis_lib.Redis]:
    """A Redis database number no other test session holds (claimed with a key that expires)."""
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    for number in range(1, 16):
        client = redis_lib.Redis.from_url(f"{REDIS_BASE_URL}/{number}")
        if client.set(REDIS_CLAIM_KEY, token, nx=True, ex=3600):
            _empty_but_the_claim(client)
            return f"{REDIS_BASE_URL}/{number}", client
    raise RuntimeError("no free Redis database (1..15) for this test session")


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    try:
        redis_lib.Redis.from_url(REDIS_BASE_URL + "/0", socket_connect_timeout=2).ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    url, client = _claim_redis_db()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_url(redis_session_url: str) -> Iterator[str]:
    """The session's Redis database, emptied before each test (the claim key is kept)."""
    client = redis_lib.Redis.from_url(redis_session_url)
    _empty_but_the_claim(client)
    yield redis_session_url
    client.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _drop_orphan_vhosts() -> None:
    """Remove the vhosts of test sessions whose process is gone (killed before their teardown)."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_vhosts", "name", "--no-table-headers"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    for name in out.split():
        parts = name.split("_")
        if len(parts) == 4 and parts[:2] == ["cu", "test"] and parts[2].isdigit() and not _alive(int(parts[2])):
            _rabbitmqctl("delete_vhost", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def rabbitmq_session_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test session's own (made and removed with rabbitmqctl)."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ_BASE_URL + "/", connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
        _drop_orphan_vhosts()
        vhost = f"cu_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        user = RABBITMQ_BASE_URL.split("://", 1)[1].split(":", 1)[0]
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    except Exception as exc:
        _unavailable("RabbitMQ (and rabbitmqctl)", exc)
    yield f"{RABBITMQ_BASE_URL}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def rabbitmq_url(rabbitmq_session_url: str) -> str:
    """The session's RabbitMQ vhost, without the queues of earlier tests."""
    from kombu import Connection, pools

    from customer_updates.messaging.names import DEAD_LETTER_QUEUE, QUEUES

    with Connection(rabbitmq_session_url) as conn:
        for name in (*QUEUES, DEAD_LETTER_QUEUE):
            # A queue not declared yet: the failed delete closes only its own channel.
            with contextlib.suppress(*conn.channel_errors):
                conn.channel().queue_delete(name)
    # kombu's process-wide producer pools remember which queues their connections declared: an earlier
    # test's producer would not declare the deleted queues again, and RabbitMQ would drop what it sends.
    pools.reset()
    return rabbitmq_session_url


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once with Redis as the broker (empty: REDIS_URL) and once with RabbitMQ."""
    return "" if request.param == "redis" else str(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point this process's settings at the test servers (and forget cached engines and clients)."""
    from customer_updates.services import resources

    def _configure(database_url: str, redis_url: str = "redis://127.0.0.1:6379/15", **extra: str) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("REDIS_URL", redis_url)
        for key, value in extra.items():
            monkeypatch.setenv(f"CUSTOMER_UPDATES_{key.upper()}", str(value))
        resources.reset()
        _refresh_celery_app()

    yield _configure
    monkeypatch.undo()
    resources.reset()
    _refresh_celery_app()


def _refresh_celery_app() -> None:
    from customer_updates.settings import get_settings
    from customer_updates.worker.celery_app import app, celery_config

    app.conf.update(celery_config(get_settings()))
    app.pool.force_close_all()
    # kombu caches the broker connection per app; drop it so the new URL is used.
    app._pool = None


def cli_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "CUSTOMER_UPDATES_LOG_JSON": "true", "PYTHONUNBUFFERED": "1"}
    env.update({f"CUSTOMER_UPDATES_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def run_cli(args: list[str], database_url: str, redis_url: str, timeout: float = 120,
            **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "customer_updates.cli", *args], capture_output=True, text=True,
                          env=cli_env(database_url, redis_url, **extra), timeout=timeout, cwd=ROOT)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def _start(database_url: str, redis_url: str, wait: bool = True, concurrency: int = 2, beat: bool = False,
               queues: str | None = None, **extra: str) -> WorkerProcess:
        """A real `customer-updates worker`; `extra` are settings (CUSTOMER_UPDATES_<NAME>)."""
        log_path = tmp_path / f"worker{len(started)}.log"
        args = worker_command(concurrency, beat_schedule=log_path.with_suffix(".beat") if beat else None,
                              queues=queues)
        worker = WorkerProcess(args, cli_env(database_url, redis_url, **extra), log_path, cwd=ROOT)
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield _start
    for worker in started:
        worker.stop()


@pytest.fixture
def loaded_db(db_url: str) -> str:
    """A database with the example org and customers loaded."""
    load_examples(db_url)
    return db_url


def load_examples(database_url: str) -> None:
    from sqlalchemy.orm import sessionmaker

    from customer_updates.services.imports import import_customers
    from customer_updates.store.db import get_engine, session_scope
    from customer_updates.store.orgs import load_org, read_org_file

    with session_scope(database_url) as session:
        for org in read_org_file(EXAMPLES / "org.yaml").orgs:
            load_org(session, org)
    with (EXAMPLES / "customers.ndjson").open() as lines:
        import_customers(sessionmaker(get_engine(database_url)), lines)


def wait_for_follow_on_work(database_url: str, timeout: float = 60) -> None:
    """Wait until every award decided so far was carried out (outbox rows done)."""
    from sqlalchemy import func, select

    from customer_updates.models import tables as t
    from customer_updates.store.db import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(database_url) as session:
            pending = session.scalar(select(func.count()).select_from(t.OutboxEntry).where(
                t.OutboxEntry.kind == "award", t.OutboxEntry.done_at.is_(None)))
        if not pending:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{pending} awards still pending after {timeout}s")
