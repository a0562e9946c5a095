"""Worker processes started from Python: the demo, the tests and the bench start theirs with this.

A worker runs in its own session (process group), so Ctrl-C in a terminal reaches only the parent, and a
signal to the group reaches the Celery main process, its pool children and its beat alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

# Celery logs "<hostname> ready." once the consumer listens; in plain and in JSON log lines alike.
READY_MARK = b" ready."
LOG_TAIL = 3000


class WorkerExited(RuntimeError):
    """The worker process ended before it became ready; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it; another process may still take it later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_command(concurrency: int = 2, *, beat_schedule: Path | None = None, queues: str | None = None,
                   hostname: str | None = None, loglevel: str = "INFO") -> list[str]:
    """The `customer-updates worker` command line; with `beat_schedule` it also runs beat (the outbox relay)."""
    args = [sys.executable, "-m", "customer_updates.cli", "worker", "--concurrency", str(concurrency),
            "--loglevel", loglevel, "--without-mingle", "--without-gossip"]
    if beat_schedule is not None:
        args += ["--beat", "--schedule", str(beat_schedule)]
    if queues:
        args += ["--queues", queues]
    if hostname:
        args += ["--hostname", hostname]
    return args


class WorkerProcess:
    """A worker command in a child process of its own session, its output in `log_path`.

    `env` is laid over this process's environment. The log is truncated first, so that the readiness
    mark found in it is this process's own.
    """

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(args, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, cwd=cwd,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:]

    def is_ready(self) -> bool:
        """Whether the worker has said it is ready; raises WorkerExited when it has ended instead."""
        if self.process.poll() is not None:
            raise WorkerExited(f"worker exited early (code {self.process.returncode}):\n{self.log_tail()}")
        return READY_MARK in self.log_path.read_bytes()

    def wait_ready(self, timeout: float = 60, interval: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_ready():
                return
            time.sleep(interval)
        raise TimeoutError(f"worker not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the main process and its pool children)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended since the poll
                os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown; killed when it takes longer than `timeout` seconds."""
        if self.process.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Pool children may outlive their parent by a moment.
            os.killpg(self.process.pid, signal.SIGKILL)
