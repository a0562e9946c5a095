"""What a merging update costs against a plain one, in the worker's own unit of work (no broker)."""

from __future__ import annotations

import os
import statistics
import time

from bench import seed
from bench.seed import ORG_ID, Layout
from bench.workload import Update, Workload
from customer_updates.models.commands import utcnow
from customer_updates.services.apply import BatchApplier
from customer_updates.store.db import dispose_engines, session_scope
from customer_updates.store.orgs import OrgCache


def _apply(url: str, orgs: OrgCache, updates: list[Update]) -> float:
    now = utcnow().isoformat()
    commands = [{"org_id": ORG_ID, "request_id": u.request_id, "issued_at": now, "customer": u.item}
                for u in updates]
    started = time.perf_counter()
    with session_scope(url) as session:
        BatchApplier(session, orgs).run(commands)
    return (time.perf_counter() - started) * 1000 / len(updates)


def main(db: str, customers: int, batches: int, size: int = 100) -> int:
    layout = Layout(customers)
    url = seed.database_url(db, f"cu_bench_merge_{os.getpid()}")
    try:
        seed.seed(url, layout)
        workload = Workload(layout, seed=7)
        orgs = OrgCache(60)
        _apply(url, orgs, workload.plain(size))  # warm the org cache and the connection pool
        plain, merging = [], []
        for _ in range(batches):
            plain.append(_apply(url, orgs, workload.plain(size)))
            merges = workload.merges(size)
            if merges:
                merging.append(_apply(url, orgs, merges))
        p, m = statistics.median(plain), statistics.median(merging)
        print(f"| update kind ({db}, batches of {size}) | ms per update (median of {batches}) |")
        print("|---|---|")
        print(f"| plain profile update | {p:.3f} |\n| merging update | {m:.3f} |\n| ratio | {m / p:.2f}x |")
    finally:
        dispose_engines()
        seed.drop_database(db, url)
    return 0
