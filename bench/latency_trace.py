"""When each update of a latency phase was sent and how long it took (`run --latency-trace DIR`), and the
quarter seconds those updates make (`python -m bench windows FILE`).

A phase's p99 mixes two things its table row cannot tell apart: the steady tail (the slowest updates of
every quarter second) and episodes in which everything sent for a while came late. The trace keeps when
each update was sent, so that the windows show which of the two made the figure.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

HEADER = ("sent_s", "latency_ms")  # seconds from the phase's start; enqueue to stored result


@dataclass(frozen=True)
class Window:
    start: float  # seconds from the phase's start
    count: int  # updates sent in the window
    p50: float  # ms
    worst: float  # ms


def slug(system: str) -> str:
    """A system's name as a file name: "plain Celery (reference) on RabbitMQ" -> plain-celery-reference-on-rabbitmq."""
    return re.sub(r"[^a-z0-9]+", "-", system.lower()).strip("-")


def write(path: Path, seen: list[tuple[float, float]]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows((f"{sent:.4f}", f"{ms:.2f}") for sent, ms in sorted(seen))


def read(path: Path) -> list[tuple[float, float]]:
    with path.open(newline="") as source:
        rows = csv.reader(source)
        if tuple(next(rows, ())) != HEADER:
            raise ValueError(f"{path}: not a latency trace (its first line is not {','.join(HEADER)})")
        return [(float(sent), float(ms)) for sent, ms in rows]


def windows(seen: list[tuple[float, float]], width: float = 0.25) -> list[Window]:
    """The updates grouped by when they were sent, `width` seconds a group; empty groups left out."""
    groups: dict[int, list[float]] = {}
    for sent, ms in seen:
        groups.setdefault(int(sent // width), []).append(ms)
    out = []
    for index in sorted(groups):
        values = sorted(groups[index])
        out.append(Window(index * width, len(values), values[len(values) // 2], values[-1]))
    return out


def percentile(values: list[float], q: float) -> float | None:
    """The bench's percentile (nearest rank), None of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(path: Path, width: float) -> int:
    seen = read(path)
    if not seen:
        print(f"{path}: no updates")
        return 1
    p99 = percentile([ms for _, ms in seen], 0.99) or 0.0
    found = windows(seen, width)
    print(f"{len(seen):,} updates, p99 {p99:.0f} ms; windows of {width:g} s (sent at, updates, p50, slowest):")
    holding = 0
    for window in found:
        slowest = window.worst >= p99
        holding += slowest
        mark = "  <- holds updates of the slowest 1%" if slowest else ""
        print(f"{window.start:8.2f} s {window.count:6,} {window.p50:7.1f} {window.worst:7.1f} ms{mark}")
    print(f"{holding} of {len(found)} windows hold updates of the slowest 1%: a few in a row is an episode, "
          "many apart the steady tail")
    return 0
