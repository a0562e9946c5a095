"""The Procfile as honcho runs it, with no option: every process stays up until honcho is stopped, the
release migrates the database, and the web and metrics processes answer on the ports honcho gives them."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT
from tests.unit.test_deploy_files import procfile

HONCHO = Path(sys.executable).parent / "honcho"


def ephemeral_port_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections and to `bind(port 0)`."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port() -> int:
    """A base port honcho can count from: base + 100 * index is free for every process type.

    The range stays below the ephemeral ports: other tests' servers and every outgoing connection take
    those, and one did take the web port between this check and honcho's start."""
    count = len(procfile())
    for _ in range(50):
        base = random.randrange(10000, ephemeral_port_floor() - 100 * count, 100)
        try:
            for index in range(count):
                with socket.socket() as sock:
                    # The web process listens on every address, so check the port the way it binds it.
                    sock.bind(("0.0.0.0", base + 100 * index))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range for honcho")


@dataclass
class Honcho:
    process: subprocess.Popen[bytes]
    log: Path
    base_port: int
    database: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def port(self, process_type: str) -> int:
        return self.base_port + 100 * list(procfile()).index(process_type)


@pytest.fixture
def honcho(redis_url: str, tmp_path: Path) -> Iterator[Honcho]:
    if not HONCHO.exists():
        pytest.skip("honcho is not installed (pip install -e '.[test]')")
    database = tmp_path / "procfile.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": redis_url,
           "WORKER_CONCURRENCY": "1", "CUSTOMER_UPDATES_LOG_JSON": "true",
           "BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
           "PATH": f"{HONCHO.parent}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    env.pop("DYNO", None)
    log = tmp_path / "honcho.log"
    base_port = free_base_port()
    with log.open("wb") as out:
        process = subprocess.Popen([str(HONCHO), "-f", str(ROOT / "Procfile"), "-d", str(tmp_path), "start",
                                    "-p", str(base_port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield Honcho(process, log, base_port, database)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def process_lines(output: str) -> list[str]:
    """The lines the processes wrote (honcho prefixes each with the time and `name.1 | `)."""
    return [line for line in output.splitlines()
            if " | " in line and not line.split(" | ", 1)[0].rstrip().endswith("system")]


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.redis
def test_honcho_runs_every_procfile_process_until_it_is_stopped(honcho):
    deadline = time.monotonic() + 60
    web = f"http://127.0.0.1:{honcho.port('web')}/docs"
    metrics = f"http://127.0.0.1:{honcho.port('metrics')}/metrics"
    while not (answers(web) and answers(metrics)):
        assert honcho.process.poll() is None, honcho.output()[-4000:]
        assert time.monotonic() < deadline, honcho.output()[-4000:]
        time.sleep(0.5)
    time.sleep(10)  # what stopped the old Procfile: a process that exits a few seconds after start

    assert honcho.process.poll() is None, honcho.output()[-4000:]
    output = honcho.output()
    assert " exited " not in output and "stopped (rc=" not in output, output[-4000:]
    children = {child.pid for child in psutil.Process(honcho.process.pid).children(recursive=True)}
    for process_type in procfile():
        assert f"{process_type}.1 started (pid=" in output, output[-4000:]
        pid = int(output.split(f"{process_type}.1 started (pid=", 1)[1].split(")", 1)[0])
        assert pid in children and psutil.pid_exists(pid), f"{process_type} is not running"
    assert "database is at the latest schema" in output
    with sqlite3.connect(honcho.database) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    assert "customer_updates_" in httpx.get(metrics, timeout=5).text
    not_json = [line for line in process_lines(output) if not is_json_object(line.split(" | ", 1)[1])]
    assert not not_json, "\n".join(not_json[:20])
    assert "color_message" not in output and "\\u001b[" not in output  # uvicorn's ANSI copy of its messages
    assert '"logger": "uvicorn' in output or '"logger":"uvicorn' in output

    honcho.process.send_signal(signal.SIGTERM)
    assert honcho.process.wait(40) is not None
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
               for pid in children)
