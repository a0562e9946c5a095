"""CPU per update of the worker's whole unit of work, in one process and without a broker.

Batches of the bench workload go through what a pool process does with them (`worker_messages.apply_messages`:
claims, the transaction, the award tasks sent, results, events and outbox receipts to Redis) and the award
tasks they publish are run at once (`worker_messages.award`). Printed: the process's CPU, PostgreSQL's CPU (its local
server processes, so on a machine where nothing else uses it) and the wall time, per update.

It is the measure for comparing two versions of the code (run it in each checkout, in turns): a run
takes seconds after the seeding, and it leaves out Celery, the paced producer and a second process,
which make `bench run` vary more. What it leaves out, the main process and the broker, `bench run`
measures.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import time

import psutil

from bench import seed
from bench.seed import ORG_ID, Layout
from bench.workload import Workload
from customer_updates.models.commands import utcnow
from customer_updates.services import worker_messages
from customer_updates.services.resources import Runtime
from customer_updates.settings import Settings
from customer_updates.store.db import dispose_engines
from customer_updates.store.orgs import OrgCache
from customer_updates.worker.celery_app import collect_after_batch, tune_gc

WARM_UP_BATCHES = 10  # prepared statements, org cache, pooled connections


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _postgres_cpu() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if (proc.info["name"] or "").startswith("postgres") and proc.info["cpu_times"] is not None:
            total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return total


def _messages(workload: Workload, size: int) -> list[worker_messages.Message]:
    now = utcnow().isoformat()
    commands = []
    for _ in range(size):
        update = workload.next()
        commands.append({"org_id": ORG_ID, "request_id": update.request_id, "issued_at": now,
                         "customer": update.item})
    return [worker_messages.Message(commands)]


def _measure(rt: Runtime, layout: Layout, run: int, batches: int, size: int) -> tuple[float, float, float]:
    workload = Workload(layout, seed=11 + run, run=run)
    work = [_messages(workload, size) for _ in range(WARM_UP_BATCHES + batches)]
    awards: list[list[int]] = []

    def apply(messages: list[worker_messages.Message]) -> None:
        worker_messages.apply_messages(rt, messages, awards.append, lambda message, delay: None)
        for outbox_ids in awards:
            worker_messages.award(rt, outbox_ids)
        awards.clear()
        collect_after_batch()  # as the apply task does

    for messages in work[:WARM_UP_BATCHES]:
        apply(messages)
    cpu, pg, started = _process_cpu(), _postgres_cpu(), time.perf_counter()
    for messages in work[WARM_UP_BATCHES:]:
        apply(messages)
    updates = batches * size
    return ((_process_cpu() - cpu) * 1000 / updates, (_postgres_cpu() - pg) * 1000 / updates,
            (time.perf_counter() - started) * 1000 / updates)


def main(db: str, customers: int, batches: int, size: int, repeat: int, redis_url: str) -> int:
    layout = Layout(customers)
    url = seed.database_url(db, f"cu_bench_batch_{os.getpid()}")
    try:
        seed.seed(url, layout)
        rt = Runtime(Settings(DATABASE_URL=url, REDIS_URL=redis_url), OrgCache(60))
        gc.collect()
        tune_gc(rt.settings.worker_gc_threshold)  # as a pool process starts
        runs: list[tuple[float, float, float]] = []
        for run in range(repeat):
            runs.append(_measure(rt, layout, run, batches, size))
            print(f"  run {run + 1}/{repeat}: worker {runs[-1][0]:.3f}, PostgreSQL {runs[-1][1]:.3f}, "
                  f"wall {runs[-1][2]:.3f} ms/update", flush=True)
        medians = [statistics.median(r[i] for r in runs) for i in range(3)]
        print(f"| {db}, batches of {size}, median of {repeat} | worker CPU ms/update | PostgreSQL CPU ms/update "
              f"| wall ms/update |\n|---|---|---|---|\n| {batches} batches a run | {medians[0]:.3f} | "
              f"{medians[1]:.3f} | {medians[2]:.3f} |")
    finally:
        dispose_engines()
        seed.drop_database(db, url)
    return 0
