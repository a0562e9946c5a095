"""A brute force against `customer-updates serve` (its own process, so its memory can be read): failed logins
are answered 429 soon, and the server's memory stays flat however many arrive at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from customer_updates.ops.processes import free_port
from tests.conftest import ROOT, cli_env, load_examples
from tests.integration.test_http_ingress import TILL, md5

BURST = 200
# scrypt takes 16 MiB while it runs. The server has glibc map such blocks on their own and unmap them when
# freed (ops/memory.py): otherwise the allocator kept them for the threads that ran a verification, the first
# burst grew the server by 64 MiB (755 MiB before verifications were bounded to http_auth_max_hashing
# threads) and a later one by 16 MiB more now and then. What is left is the burst's connections (9 MiB
# measured), and further bursts must find it all in place.
FIRST_BURST_GROWTH = 32 * 2**20
NEXT_BURST_GROWTH = 8 * 2**20
GET = "/v1.1/customer/get?mobile=919800000001"


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def stop(self) -> list[dict[str, Any]]:
        """Stop the server; its JSON log lines."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=20)
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture
def serve_process(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `customer-updates serve` with settings (CUSTOMER_UPDATES_<NAME>); ready once a good login passed."""
    load_examples(pg_url)
    started: list[Served] = []

    def _start(**settings: str) -> Served:
        port = free_port()
        env = cli_env(pg_url, redis_url) | {f"CUSTOMER_UPDATES_{k.upper()}": v for k, v in settings.items()}
        log = tmp_path / f"serve-{port}.log"  # a file, not a pipe: a full pipe would stall the server
        with log.open("wb") as output:
            served = Served(f"http://127.0.0.1:{port}", subprocess.Popen(
                [sys.executable, "-m", "customer_updates.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                stdout=output, stderr=subprocess.STDOUT), log)
        started.append(served)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(served.url + GET, auth=TILL).raise_for_status()  # imports done, one scrypt run
                return served
            except httpx.TransportError:
                if time.monotonic() > deadline or served.process.poll() is not None:
                    raise
                time.sleep(0.2)

    yield _start
    for served in started:
        served.stop()


def burst(url: str, logins: list[tuple[str, str]]) -> list[httpx.Response]:
    async def send() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(logins))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            return list(await asyncio.gather(*(client.get(GET, auth=login) for login in logins)))

    return asyncio.run(send())


def test_a_brute_force_from_one_address_meets_429_soon_and_memory_stays_flat(serve_process):
    server = serve_process()
    before = server.rss

    answers = burst(server.url, [(f"till-{i}", md5(f"guess-{i}")) for i in range(BURST)])
    first = server.rss
    burst(server.url, [(f"till-{i}", md5(f"guess-{i}")) for i in range(BURST, 2 * BURST)])

    codes = Counter(r.status_code for r in answers)
    assert set(codes) == {401, 429}
    # 20 failures a minute per address (the default), and at most one more per hashing thread in flight.
    assert codes[401] <= 20 + 2
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in answers if r.status_code == 429)
    assert first - before < FIRST_BURST_GROWTH, f"RSS grew {(first - before) / 2**20:.0f} MiB"
    assert server.rss - first < NEXT_BURST_GROWTH, f"RSS grew {(server.rss - first) / 2**20:.0f} MiB"
    # Good credentials verified before still pass.
    assert httpx.get(server.url + GET, auth=TILL).status_code == 200


def test_with_the_rate_limits_lifted_hashing_is_bounded_and_memory_stays_flat(serve_process):
    server = serve_process(http_login_failures_per_client="100000/minute",
                           http_login_failures_per_username="100000/minute")
    before = server.rss

    answers = burst(server.url, [(f"till-{i}", md5(f"guess-{i}")) for i in range(BURST)])
    first = server.rss
    burst(server.url, [(f"till-{i}", md5(f"guess-{i}")) for i in range(BURST, 2 * BURST)])

    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {401, 429}
    # At most http_auth_max_pending (64) logins are being verified or wait for it; the rest are 429 at once.
    assert 64 <= codes[401] < BURST
    assert first - before < FIRST_BURST_GROWTH, f"RSS grew {(first - before) / 2**20:.0f} MiB"
    assert server.rss - first < NEXT_BURST_GROWTH, f"RSS grew {(server.rss - first) / 2**20:.0f} MiB"


def test_refusals_are_logged_with_the_client_and_username_never_the_secret(serve_process):
    server = serve_process(http_login_failures_per_username="2/minute")
    for guess in ("guess-one", "guess-two", "guess-three"):
        burst(server.url, [("till.mg.road", md5(guess))])

    logged = server.stop()

    refused = [(e["status"], e["username"], e["client"]) for e in logged if e["event"] == "login refused"]
    assert refused == [(401, "till.mg.road", "127.0.0.1")] * 2 + [(429, "till.mg.road", "127.0.0.1")]
    assert not any(md5(guess) in json.dumps(logged) for guess in ("guess-one", "guess-two", "guess-three"))
