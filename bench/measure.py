"""One measured run of one system: throughput with a full queue, then latency at half that rate."""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import latency_trace
from bench.latency_trace import percentile
from bench.machine import Meter, PhaseLoad, median_load
from bench.targets import Target
from bench.workload import Update, Workload


@dataclass
class Figures:
    system: str
    updates: int
    rate: float  # updates/s with a full queue
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    paced_rate: float  # the rate latency was measured at
    peak_rss_mib: float
    cpu_ms_per_update: float
    load: PhaseLoad | None = None  # the machine during the throughput phase
    # At low load, one update a message: rate → (p50 ms, p99 ms, the machine during that phase).
    low: dict[int, tuple[float | None, float | None, PhaseLoad | None]] = field(default_factory=dict)


def wait_applied(target: Target, expected: int, timeout: float, last: list[str]) -> float:
    """When the last update is done, to within POLL seconds.

    Counting is itself work for the database under test (a count over a growing table: 13 ms at 80,000
    results, a twentieth of PostgreSQL's time in a run when polled as the run nears its end), so the poll
    first waits for the `last` request ids sent to be done, which costs a lookup of each (results on
    Redis for customer-updates), and counts only then; until the count is complete, every POLL s."""
    start = time.monotonic()
    deadline = start + timeout
    while len(target.done(last)) < len(set(last)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target.name}: the last updates sent not applied after {timeout:.0f} s")
        time.sleep(POLL)
    while (done := target.applied()) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target.name}: {done} of {expected} applied after {timeout:.0f} s")
        time.sleep(POLL)
    return time.monotonic()


POLL = 0.05  # seconds between polls while waiting for a run to finish
LAST = 50  # updates at the end of the queue whose results gate counting (wait_applied)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The bench process's garbage collector off, and what exists frozen out of its sight, for a phase.

    The bench process holds the whole workload and the updates of the throughput phase: a full collection
    of that heap took about 100 ms, once in most 6 s latency phases, and held the paced producer and the
    poller alike (an enqueue call of 118 ms, every update sent or seen in it 100 ms late), which read as
    the system's p99. With the heap frozen the phase's own objects still made one of 25 ms. Reference
    counting frees what a phase makes; its few cycles wait for the end."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


PACE_TICK = 0.005  # seconds between the paced producer's enqueue calls while measuring latency
POLL_CHUNK = 64  # waiting request ids looked up per Redis round trip while measuring latency


def paced_latencies(target: Target, workload: Workload, rate: float, seconds: float,
                    message_size: int) -> list[tuple[float, float]]:
    """Send at `rate` updates/s (whole messages) for `seconds`; for each update, when it was sent (seconds
    from the start) and enqueue → result visible (ms)."""
    sent_at: dict[str, float] = {}
    latencies: list[tuple[float, float]] = []
    lock = threading.Lock()
    finished = threading.Event()

    def poll() -> None:
        # Results come back roughly in the order the updates were sent: look at the oldest waiting ones a
        # chunk at a time and go on to the next chunk only while the current one had results. Asking for
        # every waiting id each time (as this did before) cost the bench process and Redis more CPU the
        # longer the latency (by estimate some 36,000 lookups/s at 900 updates/s and 200 ms), on the cores
        # the worker runs on.
        while True:
            with lock:
                waiting = list(sent_at)
            if not waiting and finished.is_set():
                return
            for first in range(0, len(waiting), POLL_CHUNK):
                chunk = waiting[first:first + POLL_CHUNK]
                seen = time.monotonic()
                found = target.done(chunk)
                with lock:
                    for rid in found:
                        sent = sent_at.pop(rid)
                        latencies.append((sent - start, (seen - sent) * 1000))
                if not found:
                    break
            time.sleep(0.005)

    with collector_paused():
        poller = threading.Thread(target=poll, daemon=True)
        start = time.monotonic()
        poller.start()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds:
            # Every whole message that is due goes in one enqueue call, as a producer hands over what it
            # collected since its last call. With one call per message (as before; a manifest write and a
            # pipeline each) the bench process took 63% of a core at 774 one-update messages/s, mostly in
            # those calls, from the two cores the worker runs on; now 33% at 970/s.
            due = (int(rate * elapsed) - sent) // message_size * message_size
            if due > 0:
                updates: list[Update] = []
                while len(updates) < due:
                    u = workload.next()
                    if u.kind != "duplicate":  # a duplicate's result exists already: no latency to see
                        updates.append(u)
                with lock:
                    now = time.monotonic()
                    for u in updates:
                        sent_at[u.request_id] = now
                target.enqueue(updates)
                sent += len(updates)
            time.sleep(PACE_TICK)
        finished.set()
        poller.join(timeout=30)
    return latencies


def measure(target: Target, workload: Workload, updates: int, workers: int, message_size: int,
            latency_seconds: float, log_dir: Path, timeout: float, low_rates: tuple[int, ...] = (),
            trace_dir: Path | None = None) -> Figures:
    """One run; with `trace_dir`, each latency phase's updates are also written there (bench/latency_trace.py)."""
    batch = workload.take(updates)
    target.enqueue(batch)  # a full queue before the worker starts: the worker alone is measured
    log_name = f"{target.name.split()[0]}-{message_size}m-{workers}w-{time.time():.0f}.log"
    meter = Meter().__enter__()  # the idle window: before the worker starts
    worker = target.start(workers, log_dir / log_name)
    low: dict[int, tuple[float | None, float | None, PhaseLoad | None]] = {}
    try:
        worker.wait_ready()
        meter.begin()
        started, cpu_before = time.monotonic(), worker.cpu_seconds()
        # The clock runs from "ready" (the worker is applying already), so the collection that pausing
        # the collector begins with is inside the run; a pause later would read as the end coming late.
        with collector_paused():
            finished = wait_applied(target, target.expected(batch), timeout,
                                    [u.request_id for u in batch[-LAST:]])
        meter.__exit__()
        cpu = worker.cpu_seconds() - cpu_before
        rate = len(batch) / (finished - started)
        paced = rate / 2

        def phase(pace: float, size: int) -> list[float]:
            seen = paced_latencies(target, workload, pace, latency_seconds, size)
            if trace_dir is not None:
                name = f"{latency_trace.slug(target.name)}-{size}m-{workers}w-{pace:.0f}per-s-{time.time():.0f}.csv"
                latency_trace.write(trace_dir / name, seen)
            return [ms for _, ms in seen]

        latencies = phase(paced, message_size) if latency_seconds > 0 else []
        for low_rate in low_rates if latency_seconds > 0 else ():
            # One update a message, paced far below the maximum: the latency a quiet service sees.
            with Meter() as low_meter:
                low_seen = phase(low_rate, 1)
            low[low_rate] = (percentile(low_seen, 0.5), percentile(low_seen, 0.99), low_meter.load)
    finally:
        worker.stop()
    return Figures(target.name, len(batch), rate, percentile(latencies, 0.5), percentile(latencies, 0.95),
                   percentile(latencies, 0.99), paced, worker.max_rss_mib(), cpu * 1000 / len(batch),
                   meter.load, low)


def median_figures(runs: list[Figures]) -> Figures:
    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    first = runs[0]
    return Figures(first.system, int(statistics.median(r.updates for r in runs)),
                   statistics.median(r.rate for r in runs), med([r.p50_ms for r in runs]),
                   med([r.p95_ms for r in runs]), med([r.p99_ms for r in runs]),
                   statistics.median(r.paced_rate for r in runs), max(r.peak_rss_mib for r in runs),
                   statistics.median(r.cpu_ms_per_update for r in runs), median_load([r.load for r in runs]),
                   {rate: (med([r.low[rate][0] for r in runs]), med([r.low[rate][1] for r in runs]),
                           median_load([r.low[rate][2] for r in runs])) for rate in first.low})
