"""Prometheus counters and the batch-duration histogram of the workers, in prometheus_client's multiprocess mode.

A Celery worker applies batches in its pool processes: each process writes its samples to files in
`metrics_dir` (PROMETHEUS_MULTIPROC_DIR, set by `customer-updates worker` before prometheus_client is
imported), and `customer-updates metrics` on the same host sums them (ops/metrics.py). Without `metrics_dir`
the counters count in memory and nobody serves them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from customer_updates.rules.codes import Code

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_dir(directory: str) -> None:
    """Make this process and its children write their samples to `directory` (before prometheus_client is
    imported: it picks the file-backed values at import)."""
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = directory


_metrics = None


def _made() -> tuple[object, ...]:
    # Made on first use, not at import: the worker sets PROMETHEUS_MULTIPROC_DIR first.
    global _metrics
    if _metrics is None:
        from prometheus_client import Counter, Histogram

        _metrics = (
            Counter("customer_updates_commands", "Commands handled by the workers, by outcome and result code.",
                    ["outcome", "code"]),
            Counter("customer_updates_merges", "Customer merges and unmerges the workers applied."),
            Counter("customer_updates_retries", "Messages sent again after a transient error."),
            Counter("customer_updates_dead_letters", "Messages or commands pushed to the dead-letter list."),
            Histogram("customer_updates_batch_duration_seconds", "Time to apply one transaction of commands.",
                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)),
        )
    return _metrics


def commands(outcomes: Iterable[tuple[str, int, str, int]], deferred: int, merges: int, duration: float) -> None:
    """One transaction's outcomes (services/apply.py's `(request, org, kind, code)`)."""
    counter, merges_counter, _, _, histogram = _made()
    for _, _, kind, code in outcomes:
        outcome = "failed" if kind == "applied" and code != Code.SUCCESS else kind
        counter.labels(outcome=outcome, code=str(int(code))).inc()  # type: ignore[attr-defined]
    if deferred:
        counter.labels(outcome="deferred", code="").inc(deferred)  # type: ignore[attr-defined]
    if merges:
        merges_counter.inc(merges)  # type: ignore[attr-defined]
    histogram.observe(duration)  # type: ignore[attr-defined]


def retried() -> None:
    _made()[2].inc()  # type: ignore[attr-defined]


def dead_lettered() -> None:
    _made()[3].inc()  # type: ignore[attr-defined]


def merges_in(outbox: Iterable[object]) -> int:
    """Merges and unmerges among a transaction's outbox rows (one `customer.merged`/`unmerged` event each)."""
    count = 0
    for row in outbox:
        payload = getattr(row, "payload", None) or {}
        events = payload.get("events", [payload]) if isinstance(payload, dict) else []
        count += sum(1 for event in events if isinstance(event, dict)
                     and event.get("event") in ("customer.merged", "customer.unmerged"))
    return count
