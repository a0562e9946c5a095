"""Worker processes under test, and what they cost: peak RSS per process and CPU time (psutil)."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from customer_updates.ops.processes import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent


class Worker(WorkerProcess):
    """A Celery worker (main process plus its prefork pool), sampled for its memory while it runs."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        super().__init__(args, env, log_path, cwd=ROOT)
        self.peak_rss: dict[int, int] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> None:
        while not self._stop.is_set():
            for proc in self.tree():
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peak_rss[proc.pid] = max(rss, self.peak_rss.get(proc.pid, 0))
            self._stop.wait(0.2)

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def wait_ready(self, timeout: float = 90, interval: float = 0.05) -> None:
        super().wait_ready(timeout, interval)

    def max_rss_mib(self) -> float:
        return max(self.peak_rss.values(), default=0) / 2**20

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        super().stop(timeout)
