"""Each PostgreSQL session asks the server to drop it once its client is unreachable (issue 27): a worker host
cut off by the network must not keep the row locks of its open transaction for the two hours of the server's
default TCP keepalive. tests/system/test_network_partition.py shows the effect across real hosts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from customer_updates.settings import get_settings
from customer_updates.store.db import dispose_engines, get_engine

PARAMETERS = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    dispose_engines()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    dispose_engines()


def _server_parameters(url: str) -> dict[str, str]:
    with get_engine(url).connect() as conn:
        return {name: str(conn.exec_driver_sql(f"SHOW {name}").scalar()) for name in PARAMETERS}


def test_a_session_is_dropped_by_the_server_ten_seconds_after_its_client_stops_answering(pg_url, fresh_settings):
    # Idle 4 s, then three probes 2 s apart: 10 s of silence; 10 s for data the client never acknowledges.
    assert _server_parameters(pg_url) == {"tcp_keepalives_idle": "4", "tcp_keepalives_interval": "2",
                                          "tcp_keepalives_count": "3", "tcp_user_timeout": "10000"}


def test_zero_leaves_the_servers_own_keepalive_settings(pg_url, fresh_settings):
    fresh_settings.setenv("CUSTOMER_UPDATES_DATABASE_UNREACHABLE_CLIENT_SECONDS", "0")
    assert _server_parameters(pg_url)["tcp_user_timeout"] == "0"
