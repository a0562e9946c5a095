"""`customer-updates flower` refuses to listen beyond loopback without authentication, and its /metrics
needs the same credentials as its pages."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, cli_env

AUTH = ("ops", "exposure-secret")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    port = free_port()
    log_path = tmp_path / "flower.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "customer_updates.cli", "flower", "--address", "0.0.0.0", "--port", str(port)],
            env=cli_env(pg_url, redis_url, flower_basic_auth=":".join(AUTH)), cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Flower did not answer within 30s"
            time.sleep(0.3)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


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
