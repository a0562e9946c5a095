"""`python -m bench import`: time per 1,000 customers of `customers import` as the table grows.

A generated NDJSON file of the bench org's customers (full profiles, a line in 200 bad, a line in 500 a
customer already given earlier in the file) is imported into an empty database in chunks of 1,000; the
time of each chunk is taken from the import's progress callback. An import is linear when the last
chunks cost what the first ones did.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

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
        stamps: list[float] = []
        sizes: list[int] = []

        def progress(lines: int) -> None:
            stamps.append(time.perf_counter())
            sizes.append(lines)
            if len(stamps) % 100 == 0:
                print(f"  {sum(sizes):,} lines, {stamps[-1] - started:.1f} s", flush=True)

        started = time.perf_counter()
        with path.open("rb") as lines:
            report = import_customers(sessionmaker(get_engine(url)), lines, chunk_size=chunk, progress=progress)
        total = time.perf_counter() - started
        durations = [end - start for start, end in zip([started, *stamps], stamps, strict=False)]
        per_thousand = [seconds * 1000 / n for seconds, n in zip(durations, sizes, strict=True)]
        tenth = max(1, len(per_thousand) // 10)
        first, last = statistics.median(per_thousand[:tenth]), statistics.median(per_thousand[-tenth:])
        print(f"loaded {report.loaded:,}, already present {report.skipped:,}, bad lines {len(report.errors):,}")
        print(f"| {db}, {customers:,} customers | s per 1,000 |\n|---|---|")
        print(f"| first chunk | {per_thousand[0]:.3f} |\n| median of the first {tenth} chunks | {first:.3f} |")
        print(f"| median of the last {tenth} chunks | {last:.3f} |\n| last chunk | {per_thousand[-1]:.3f} |")
        print(f"| overall | {total * 1000 / customers:.3f} |\n| last / first (medians) | {last / first:.2f} |")
        print(f"total {total:.1f} s")
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()
        dispose_engines()
        seed.drop_database(db, url)
    return 0
