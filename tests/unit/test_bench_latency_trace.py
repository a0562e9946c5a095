"""The bench's latency trace: each update of a phase with when it was sent, read back by quarter seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import latency_trace
from bench.__main__ import main


def test_a_trace_reads_back_what_was_written_in_the_order_of_sending(tmp_path: Path) -> None:
    path = tmp_path / "phase.csv"
    latency_trace.write(path, [(0.30, 12.5), (0.01, 40.0)])
    assert latency_trace.read(path) == [(0.01, 40.0), (0.30, 12.5)]


def test_a_file_that_is_not_a_trace_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"other\.csv"):
        latency_trace.read(path)


def test_windows_group_updates_by_when_they_were_sent_and_skip_empty_ones() -> None:
    seen = [(0.00, 10.0), (0.10, 30.0), (0.20, 20.0), (0.80, 200.0), (0.90, 5.0)]
    assert latency_trace.windows(seen, 0.25) == [
        latency_trace.Window(0.0, 3, 20.0, 30.0),
        latency_trace.Window(0.75, 2, 200.0, 200.0),
    ]


def test_the_windows_command_marks_the_windows_that_hold_the_slowest_updates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steady = [(i / 1000, 10.0) for i in range(500)]
    episode = [(0.6 + i / 1000, 150.0) for i in range(10)]
    path = tmp_path / "phase.csv"
    latency_trace.write(path, steady + episode)
    assert main(["windows", str(path)]) == 0
    out = capsys.readouterr().out
    assert "510 updates, p99 150 ms" in out
    assert "1 of 3 windows hold updates of the slowest 1%" in out
    marked = [line for line in out.splitlines() if line.endswith("<- holds updates of the slowest 1%")]
    assert len(marked) == 1 and marked[0].split()[0] == "0.50"


def test_system_names_become_file_names() -> None:
    assert latency_trace.slug("plain Celery (reference) on RabbitMQ") == "plain-celery-reference-on-rabbitmq"
    assert latency_trace.slug("customer-updates") == "customer-updates"
