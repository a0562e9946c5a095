"""The machine's load around each measured phase, from /proc/stat and /proc/loadavg, and the rule that says
when two phases ran under loads alike enough for their ratio to be stated (bench/METHOD.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

# The rule: a ratio is stated only when the two phases' steal differs by at most STEAL_POINTS percentage
# points and the idle CPU measured just before each differs by at most IDLE_POINTS.
STEAL_POINTS = 5.0
IDLE_POINTS = 20.0
IDLE_WINDOW = 0.5  # seconds of /proc/stat read just before a phase: what else the machine was doing


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate `cpu` line of /proc/stat, in clock ticks."""

    busy: int  # user, nice, system, irq, softirq
    idle: int  # idle and iowait
    steal: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.steal


def parse_stat(text: str) -> CpuTimes:
    """The first `cpu ` line: user nice system idle iowait irq softirq steal [guest guest_nice]. Guest time
    is already counted in user and nice."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(v) for v in line.split()[1:]] + [0] * 8
            user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
            return CpuTimes(user + nice + system + irq + softirq, idle + iowait, steal)
    raise ValueError("no aggregate cpu line in /proc/stat")


def parse_loadavg(text: str) -> float:
    return float(text.split()[0])


@dataclass(frozen=True)
class Usage:
    """Shares of all CPUs' time between two readings, in percent."""

    busy: float
    idle: float
    steal: float


def usage(before: CpuTimes, after: CpuTimes) -> Usage:
    ticks = after.total - before.total
    if ticks <= 0:
        return Usage(0.0, 100.0, 0.0)
    return Usage(100 * (after.busy - before.busy) / ticks, 100 * (after.idle - before.idle) / ticks,
                 100 * (after.steal - before.steal) / ticks)


@dataclass(frozen=True)
class PhaseLoad:
    idle_before: float  # % idle in the IDLE_WINDOW before the phase
    during: Usage
    load_before: float
    load_after: float

    def shown(self) -> str:
        return (f"idle before {self.idle_before:.0f}%, busy {self.during.busy:.0f}%, steal {self.during.steal:.1f}%, "
                f"load {self.load_before:.2f}->{self.load_after:.2f}")


def incomparable(a: PhaseLoad | None, b: PhaseLoad | None) -> str | None:
    """Why two phases' ratio must not be stated, or None when their loads were alike (or unknown)."""
    if a is None or b is None:
        return None
    steal = abs(a.during.steal - b.during.steal)
    if steal > STEAL_POINTS:
        return f"steal differed by {steal:.0f} points ({a.during.steal:.0f}% vs {b.during.steal:.0f}%)"
    idle = abs(a.idle_before - b.idle_before)
    if idle > IDLE_POINTS:
        return f"idle CPU before differed by {idle:.0f} points ({a.idle_before:.0f}% vs {b.idle_before:.0f}%)"
    return None


class Meter:
    """Reads the machine around one phase: `with Meter() as m: ...; m.load`."""

    def __init__(self, root: Path = Path("/proc")) -> None:
        self.root = root
        self.load: PhaseLoad | None = None

    def _stat(self) -> CpuTimes | None:
        try:
            return parse_stat((self.root / "stat").read_text())
        except (OSError, ValueError):
            return None  # not Linux: the bench says nothing of the load

    def _loadavg(self) -> float:
        try:
            return parse_loadavg((self.root / "loadavg").read_text())
        except (OSError, ValueError):
            return float("nan")

    def __enter__(self) -> Meter:
        first = self._stat()
        time.sleep(IDLE_WINDOW)
        self._start = self._stat()
        self._idle = usage(first, self._start).idle if first and self._start else None
        self._load_before = self._loadavg()
        return self

    def begin(self) -> None:
        """The phase starts now (the idle window stays the one read on entering)."""
        self._start = self._stat()
        self._load_before = self._loadavg()

    def __exit__(self, *exc: object) -> None:
        end = self._stat()
        if self._start is not None and end is not None and self._idle is not None:
            self.load = PhaseLoad(self._idle, usage(self._start, end), self._load_before, self._loadavg())


def median_load(loads: list[PhaseLoad | None]) -> PhaseLoad | None:
    """Each figure's median over several runs' phases (None when none was read)."""
    known = [load for load in loads if load is not None]
    if not known:
        return None

    def med(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    return PhaseLoad(med([k.idle_before for k in known]),
                     Usage(med([k.during.busy for k in known]), med([k.during.idle for k in known]),
                           med([k.during.steal for k in known])),
                     med([k.load_before for k in known]), med([k.load_after for k in known]))
