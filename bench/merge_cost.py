"""What a merging update and an unmerge cost against a plain update, in the worker's own unit of work
(no broker)."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any

from sqlalchemy import select

from bench import seed
from bench.seed import ORG_ID, Layout
from bench.workload import Update, Workload
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.services.apply import BatchApplier
from customer_updates.store.db import dispose_engines, session_scope
from customer_updates.store.orgs import OrgCache


def _apply(url: str, orgs: OrgCache, updates: list[Update]) -> float:
    now = utcnow().isoformat()
    return _run(url, orgs, [{"org_id": ORG_ID, "request_id": u.request_id, "issued_at": now, "customer": u.item}
                            for u in updates])


def _run(url: str, orgs: OrgCache, commands: list[dict[str, Any]], must_succeed: bool = False) -> float:
    started = time.perf_counter()
    with session_scope(url) as session:
        outcome = BatchApplier(session, orgs).run(commands)
    took = (time.perf_counter() - started) * 1000 / len(commands)
    refused = [r.result["item_status"]["code"] for r in outcome.results if r.result["item_status"]["code"] != "1000"]
    if must_succeed and refused:
        raise SystemExit(f"{len(refused)} commands were refused ({sorted(set(refused))}): not the cost measured")
    return took


def _unmerges(url: str, merges: list[Update]) -> list[dict[str, Any]]:
    """An unmerge of each victim the merging updates made."""
    with session_scope(url) as session:
        victims = session.scalars(select(t.Merge.victim_id).where(
            t.Merge.org_id == ORG_ID, t.Merge.request_id.in_([u.request_id for u in merges]),
            t.Merge.undone_at.is_(None)))
        now = utcnow().isoformat()
        return [{"org_id": ORG_ID, "request_id": uuid.uuid4().hex, "issued_at": now, "kind": "unmerge",
                 "customer": {"victim_id": victim}} for victim in victims]


def main(db: str, customers: int, batches: int, size: int = 100) -> int:
    layout = Layout(customers)
    url = seed.database_url(db, f"cu_bench_merge_{os.getpid()}")
    try:
        seed.seed(url, layout)
        workload = Workload(layout, seed=7)
        orgs = OrgCache(60)
        _apply(url, orgs, workload.plain(size))  # warm the org cache and the connection pool
        plain, merging, unmerging = [], [], []
        for _ in range(batches):
            plain.append(_apply(url, orgs, workload.plain(size)))
            merges = workload.merges(size)
            if merges:
                merging.append(_apply(url, orgs, merges))
                unmerges = _unmerges(url, merges)
                if unmerges:
                    unmerging.append(_run(url, orgs, unmerges, must_succeed=True))
        if not unmerging:
            raise SystemExit("the merging updates merged nothing: the figures would be of something else")
        p, m, u = statistics.median(plain), statistics.median(merging), statistics.median(unmerging)
        print(f"| command kind ({db}, batches of {size}) | ms per command (median of {batches}) |")
        print("|---|---|")
        print(f"| plain profile update | {p:.3f} |\n| merging update | {m:.3f} |\n| ratio | {m / p:.2f}x |")
        print(f"| unmerge of a merged victim | {u:.3f} |\n| ratio to a plain update | {u / p:.2f}x |")
    finally:
        dispose_engines()
        seed.drop_database(db, url)
    return 0
