"""The bench's reading of /proc and its rule for stating a ratio (pure functions on sample text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.machine import CpuTimes, Meter, PhaseLoad, Usage, incomparable, parse_loadavg, parse_stat, usage

STAT_BEFORE = """cpu  1000 50 300 8000 100 10 40 0 0 0
cpu0 500 25 150 4000 50 5 20 0 0 0
intr 12345
"""
STAT_AFTER = """cpu  1600 50 400 8200 100 20 30 200 0 0
cpu0 800 25 200 4100 50 10 15 100 0 0
"""


def test_the_aggregate_cpu_line_is_read_with_iowait_as_idle():
    assert parse_stat(STAT_BEFORE) == CpuTimes(busy=1000 + 50 + 300 + 10 + 40, idle=8100, steal=0)


def test_shares_between_two_readings_add_up_to_the_ticks_that_passed():
    found = usage(parse_stat(STAT_BEFORE), parse_stat(STAT_AFTER))
    # busy +700, idle +200, steal +200: 1,100 ticks
    assert found.busy == pytest.approx(100 * 700 / 1100)
    assert found.idle == pytest.approx(100 * 200 / 1100)
    assert found.steal == pytest.approx(100 * 200 / 1100)


def test_an_old_kernel_line_without_steal_reads_as_no_steal():
    assert parse_stat("cpu  10 0 5 100 0 0 0\n").steal == 0


def test_a_stat_without_the_aggregate_line_is_an_error():
    with pytest.raises(ValueError):
        parse_stat("cpu0 1 2 3 4\n")


def test_the_load_average_is_the_first_figure():
    assert parse_loadavg("2.57 1.90 1.20 3/412 9876\n") == 2.57


def phase(idle_before: float, steal: float) -> PhaseLoad:
    return PhaseLoad(idle_before, Usage(100 - steal, 0.0, steal), 1.0, 1.0)


def test_a_ratio_is_withheld_when_steal_or_idle_before_differ_beyond_the_rule():
    assert incomparable(phase(80, 1), phase(75, 4)) is None
    assert "steal differed by 9 points" in str(incomparable(phase(80, 1), phase(80, 10)))
    assert "idle CPU before differed by 50 points" in str(incomparable(phase(90, 0), phase(40, 0)))
    assert incomparable(None, phase(10, 50)) is None


def test_the_meter_reads_a_proc_directory(tmp_path: Path):
    (tmp_path / "stat").write_text(STAT_BEFORE)
    (tmp_path / "loadavg").write_text("0.50 0.40 0.30 1/100 42\n")
    with Meter(tmp_path) as meter:
        (tmp_path / "stat").write_text(STAT_AFTER)
        (tmp_path / "loadavg").write_text("1.50 0.60 0.30 1/100 42\n")
    assert meter.load is not None
    assert meter.load.load_before == 0.5 and meter.load.load_after == 1.5
    assert meter.load.during.steal == pytest.approx(100 * 200 / 1100)
    assert meter.load.idle_before == 100.0  # nothing changed within the window: no ticks, all idle


def test_the_run_table_withholds_its_ratio_when_the_loads_differ_and_says_why():
    from bench.measure import Figures
    from bench.report import table

    ours = Figures("customer-updates", 100, 1000.0, 10, 20, 30, 500, 100, 0.1, phase(80, 1), {20: (5, 9, None)})
    ref = Figures("plain Celery (reference)", 100, 100.0, 10, 20, 30, 50, 80, 1.0, phase(80, 20), {20: (7, 12, None)})
    shown = table("t", [ours, ref])
    assert "| ratio (customer-updates / reference) |  withheld |" in shown
    assert "ratio withheld: steal differed by 19 points" in shown
    assert "| customer-updates | 5 / 9 |" in shown
    alike = table("t", [ours, Figures(**{**ref.__dict__, "load": phase(70, 3)})])
    assert "10.0x" in alike and "withheld" not in alike


def test_the_run_table_has_a_ratio_row_for_each_broker():
    from bench.measure import Figures
    from bench.report import table

    def figures(system: str, rate: float) -> Figures:
        return Figures(system, 100, rate, 10, 20, 30, rate / 2, 100, 0.1, phase(80, 1), {})

    shown = table("t", [figures("customer-updates", 1000.0), figures("plain Celery (reference)", 100.0),
                        figures("customer-updates on RabbitMQ", 900.0),
                        figures("plain Celery (reference) on RabbitMQ", 300.0)])
    assert "| ratio (customer-updates / reference)             |     10.0x |" in shown
    assert "| ratio (customer-updates / reference) on RabbitMQ |      3.0x |" in shown
