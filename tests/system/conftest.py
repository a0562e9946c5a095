"""Fixtures of the system suite: servers of their own for fault tests, and a figures report.

Set `CU_SYSTEM_REPORT=path.jsonl` to collect each scenario's figures (docs/reliability.md is made from them).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.system.servers import PostgresServer, RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_postgres_url(own_postgres: PostgresServer) -> Iterator[str]:
    """A migrated database on the test's own PostgreSQL server."""
    from customer_updates.store.db import dispose_engines
    from customer_updates.store.migrate import upgrade

    admin = create_engine(own_postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "customers"'))
    admin.dispose()
    url = own_postgres.admin_url.rsplit("/", 1)[0] + "/customers"
    upgrade(url)
    yield url
    dispose_engines()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """Record figures of a scenario: printed, and appended to $CU_SYSTEM_REPORT when set."""
    figures: dict[str, Any] = {"scenario": request.node.name}
    started = time.monotonic()

    def _report(**values: Any) -> None:
        figures.update(values)

    yield _report
    figures["seconds"] = round(time.monotonic() - started, 1)
    print("\nfigures:", json.dumps(figures))
    path = os.environ.get("CU_SYSTEM_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")
