"""SIGKILL of a pool child mid-run, then of the whole worker, then a restart: nothing lost, nothing twice."""

from __future__ import annotations

import signal

import psutil
import pytest

from tests.system.harness import (
    WORKER_SETTINGS,
    PacedPublisher,
    build_workload,
    check_outcome,
    outcomes_in_logs,
    prepare_database,
    wait_for_records,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]


def test_killed_pool_child_and_killed_worker_lose_nothing_and_apply_nothing_twice(pg_url, redis_url, broker_url,
                                                                                 start_worker, report):
    workload = build_workload(seed=1)
    prepare_database(pg_url, workload.customers)
    # Follow-on awards and the outbox relay run in a worker of their own, so the killed worker's
    # children are all pool processes of the update queue.
    side = start_worker(pg_url, redis_url, concurrency=1, beat=True, queues="customer_updates.side_effects",
                        broker_url=broker_url, **WORKER_SETTINGS)
    worker = start_worker(pg_url, redis_url, concurrency=2, queues="customer_updates", broker_url=broker_url,
                          **WORKER_SETTINGS)
    publisher = PacedPublisher(redis_url, workload.messages(), seconds=12, broker_url=broker_url).start()
    total = len(workload.commands)

    wait_for_records(pg_url, 1, total // 5)
    children = psutil.Process(worker.process.pid).children()
    assert children, "the worker has no pool processes"
    children[0].send_signal(signal.SIGKILL)

    wait_for_records(pg_url, 1, total // 2)
    worker.kill(signal.SIGKILL)
    worker.process.wait(10)
    publisher.join()
    restarted = start_worker(pg_url, redis_url, concurrency=2, queues="customer_updates", broker_url=broker_url,
                             **WORKER_SETTINGS)

    seconds = wait_until_done(pg_url, redis_url, workload, broker_url=broker_url)

    figures = check_outcome(pg_url, redis_url, workload, broker_url=broker_url)
    assert restarted.process.poll() is None
    outcomes = outcomes_in_logs(side, worker, restarted)
    report(**figures, drain_after_restart_seconds=round(seconds, 1), redelivered=outcomes["duplicate"])
