"""`customer-updates flower` in a child process for the Flower tests: started, awaited, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from customer_updates.ops.processes import free_port
from tests.conftest import ROOT


@contextmanager
def running_flower(env: dict[str, str], log_path: Path, *args: str) -> Iterator[str]:
    """Flower on a free port with `args`, once its health check answers; yields its loopback URL."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "customer_updates.cli", "flower", "--port", str(port),
                                    *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
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
