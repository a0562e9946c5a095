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
