"""`customer-updates flower` refuses to listen beyond loopback without authentication, and its /metrics
needs the same credentials as its pages."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from customer_updates.ops.processes import free_port
from tests.conftest import ROOT, cli_env
from tests.flower_process import running_flower

AUTH = ("ops", "exposure-secret")


def flower_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "customer_updates.cli", "flower", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.10", "flower.example.com"])
def test_flower_refuses_a_non_loopback_address_without_authentication(pg_url, redis_url, address):
    env = cli_env(pg_url, redis_url)
    env.pop("CUSTOMER_UPDATES_FLOWER_BASIC_AUTH", None)
    env.pop("FLOWER_BASIC_AUTH", None)
    result = flower_command("--address", address, "--port", str(free_port()), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CUSTOMER_UPDATES_FLOWER_BASIC_AUTH=user:password" in lines[0]


@pytest.fixture
def flower_on_every_interface(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """Flower on 0.0.0.0 with basic auth: accepted, and reached here through loopback."""
    env = cli_env(pg_url, redis_url, flower_basic_auth=":".join(AUTH))
    with running_flower(env, tmp_path / "flower.log", "--address", "0.0.0.0") as base:
        yield base


def test_flower_metrics_need_the_same_credentials_as_its_pages(flower_on_every_interface):
    base = flower_on_every_interface
    for path in ("/metrics", "/workers", "/api/workers"):
        assert httpx.get(f"{base}{path}", timeout=5).status_code == 401, path
        assert httpx.get(f"{base}{path}", auth=("ops", "wrong"), timeout=5).status_code == 401, path
    metrics = httpx.get(f"{base}/metrics", auth=AUTH, timeout=5)
    assert metrics.status_code == 200
    assert "flower_" in metrics.text
    # The container probe needs no credentials, and learns nothing but "OK".
    assert httpx.get(f"{base}/healthcheck", timeout=5).text == "OK"
