"""The benchmark runs end to end in its short smoke mode (speed is never asserted, only that it works)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_benchmark_smoke_mode_prints_a_table_for_both_systems(pg_server, redis_session_url):
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "| customer-updates " in done.stdout
    assert "| plain Celery (reference) " in done.stdout
    assert "ratio (customer-updates / reference)" in done.stdout


def test_the_batch_cost_measure_prints_worker_and_database_cpu_per_update(pg_server, redis_session_url):
    done = subprocess.run([sys.executable, "-m", "bench", "batch-cost", "--customers", "2000", "--batches", "3",
                           "--message-size", "20", "--repeat", "1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "| worker CPU ms/update | PostgreSQL CPU ms/update | wall ms/update |" in done.stdout
    assert "run 1/1: worker " in done.stdout
