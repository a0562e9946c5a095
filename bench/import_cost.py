"""`python -m bench import`: time per 1,000 customers of `customers import` as the table grows.

A generated NDJSON file of the bench org's customers (full profiles, a line in 200 bad, a line in 500 a
customer already given earlier in the file) is imported into an empty database in chunks of 1,000; the
time of each chunk is taken from the import's progress callback. An import is linear when the last
chunks cost what the first ones did.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from bench import seed
from bench.seed import BENCH_ORG, ORG_ID
from customer_updates.models.orgfile import OrgSpec
from customer_updates.services.imports import import_customers
from customer_updates.store.db import dispose_engines, get_engine, session_scope
from customer_updates.store.migrate import upgrade
from customer_updates.store.orgs import load_org


def customer_line(i: int) -> str:
    """The i-th line of the file: a full profile, a bad line, or a repeat of an earlier customer."""
    if i % 200 == 199:
        return json.dumps({"org_id": ORG_ID, "mobile": f"9196{i:08d}", "loyalty_points": -1})
    n = i // 2 if i % 500 == 499 else i
    line = {"org_id": ORG_ID, "mobile": f"9196{n:08d}", "email": f"i{n}@import.example",
            "firstname": f"First{n}", "lastname": f"Last{n}", "registered_on": "2021-03-04 10:00:00",
            "loyalty_points": n % 1000, "lifetime_points": n % 5000, "lifetime_purchases": f"{n % 997}.50",
            "slab_number": 1 + n % 2,
            "custom_fields": {"field": [{"name": "favourite_drink", "value": ("tea", "coffee")[n % 2]},
                                        {"name": "postcode", "value": f"{400000 + n % 99999}"}]},
            "extended_fields": {"field": [{"name": "city", "value": ("Mumbai", "Agra")[n % 2]},
                                          {"name": "kids", "value": str(n % 4)}]},
            "subscriptions": {"subscription": [{"channel": "SMS", "priority": "TRANS", "is_subscribed": "1"}]}}
    if n % 10 == 0:
        line["external_id"] = f"EXT-{n}"
    return json.dumps(line)


def write_file(path: Path, customers: int) -> int:
    with path.open("w") as out:
        for i in range(customers):
            out.write(customer_line(i) + "\n")
    return path.stat().st_size


class Clock:
    """Per chunk: wall time, this process's CPU and the CPU of the PostgreSQL backends serving the import
    (CPU is what a loaded machine does not blur: the wall time also holds the waits for a core)."""

    def __init__(self, url: str, db: str, customers: int, chunk: int) -> None:
        self.url, self.db, self.every = url, db, max(1, customers // chunk // 10)
        self.marks: list[tuple[float, float, float]] = []
        self.sizes: list[int] = []
        self.backends: list[psutil.Process] | None = None

    def mark(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.marks.append((time.perf_counter(), usage.ru_utime + usage.ru_stime, self._backend_cpu()))

    def _backend_cpu(self) -> float:
        if self.db != "postgres":
            return 0.0
        if self.backends is None:  # the pool's connections, which the import's chunks use in turn
            with session_scope(self.url) as session:
                pids = session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
                self.backends = [psutil.Process(pid) for pid in pids]
        return sum(sum(p.cpu_times()[:2]) for p in self.backends if p.is_running())

    def chunk_done(self, lines: int) -> None:
        self.mark()
        self.sizes.append(lines)
        if len(self.sizes) % self.every == 0:
            print(f"  {sum(self.sizes):,} lines, {self.marks[-1][0] - self.marks[0][0]:.1f} s", flush=True)

    def per_thousand(self) -> list[tuple[float, float, float]]:
        """(wall s, client CPU s, PostgreSQL CPU s) per 1,000 lines, for each chunk."""
        return [tuple((b - a) * 1000 / n for a, b in zip(before, after, strict=True))  # type: ignore[misc]
                for before, after, n in zip(self.marks[:-1], self.marks[1:], self.sizes, strict=True)]


def _row(name: str, figures: list[tuple[float, float, float]]) -> str:
    medians = [statistics.median(f[k] for f in figures) for k in range(3)]
    return f"| {name} | " + " | ".join(f"{m:.3f}" for m in medians) + " |"


def main(db: str, customers: int, chunk: int = 1000) -> int:
    url = seed.database_url(db, f"cu_bench_import_{os.getpid()}")
    folder = Path(tempfile.mkdtemp(prefix="cu-bench-import-"))
    path = folder / "customers.ndjson"
    try:
        size = write_file(path, customers)
        print(f"{customers:,} lines, {size / 1e6:.0f} MB; importing into {db} in chunks of {chunk:,} ...", flush=True)
        upgrade(url)
        with session_scope(url) as session:
            load_org(session, OrgSpec.model_validate(BENCH_ORG))
        clock = Clock(url, db, customers, chunk)
        clock.mark()
        with path.open("rb") as lines:
            report = import_customers(sessionmaker(get_engine(url)), lines, chunk_size=chunk,
                                      progress=clock.chunk_done)
        total = clock.marks[-1][0] - clock.marks[0][0]
        figures = clock.per_thousand()
        tenth = max(1, len(figures) // 10)
        print(f"loaded {report.loaded:,}, already present {report.skipped:,}, bad lines {len(report.errors):,}")
        print(f"| {db}, {customers:,} lines, per 1,000 lines | wall s | import CPU s | PostgreSQL CPU s |")
        print("|---|---|---|---|")
        print(_row("first chunk", figures[:1]))
        print(_row(f"first {tenth} chunks (median)", figures[:tenth]))
        print(_row(f"last {tenth} chunks (median)", figures[-tenth:]))
        print(_row("last chunk", figures[-1:]))
        print(_row("overall (median of all chunks)", figures))
        print(f"| overall (total time / lines) | {total * 1000 / customers:.3f} | | |")
        first = statistics.median(f[0] for f in figures[:tenth])
        last = statistics.median(f[0] for f in figures[-tenth:])
        print(f"wall time per 1,000, last tenth / first tenth: {last / first:.2f}; total {total:.1f} s")
        print("wall s per 1,000 by tenth of the file: "
              + " ".join(f"{statistics.median(f[0] for f in figures[k:k + tenth]):.3f}"
                         for k in range(0, len(figures), tenth)))
        if db == "postgres":
            with session_scope(url) as session:
                scans = session.execute(text("SELECT seq_scan, idx_scan FROM pg_stat_user_tables "
                                             "WHERE relname = 'customers'")).one()
            print(f"customers: {scans.seq_scan} sequential scans, {scans.idx_scan} index scans")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()
        dispose_engines()
        seed.drop_database(db, url)
    return 0
