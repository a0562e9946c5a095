"""PostgreSQL stopped (like a crash) for several seconds mid-run, then started again."""

from __future__ import annotations

import time

import pytest

from tests.system.harness import (
    WORKER_SETTINGS,
    PacedPublisher,
    build_workload,
    check_outcome,
    count_log,
    dead_letters,
    outcomes_in_logs,
    prepare_database,
    wait_for_records,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

OUTAGE_SECONDS = 6


def test_a_database_outage_mid_run_is_retried_until_every_command_applied_once(
        own_postgres, own_postgres_url, redis_url, start_worker, report):
    db_url = own_postgres_url
    workload = build_workload(seed=2)
    prepare_database(db_url, workload.customers)
    # Retries must outlast the outage: up to 15 tries, each delay drawn from [0, min(4 s, 0.2 s * 2^n)],
    # about 23 s on average. (With 10, about 13 s, a message now and then ran out of tries on a loaded
    # machine: every message a worker holds is retried on its own while the database is away.)
    settings = {**WORKER_SETTINGS, "max_retries": 15, "retry_backoff_max": 4.0}
    worker = start_worker(db_url, redis_url, concurrency=2, beat=True, **settings)
    publisher = PacedPublisher(redis_url, workload.messages(), seconds=12).start()

    wait_for_records(db_url, 1, len(workload.commands) // 5)
    own_postgres.stop(mode="immediate")
    time.sleep(OUTAGE_SECONDS)
    own_postgres.start()
    publisher.join()

    seconds = wait_until_done(db_url, redis_url, workload)

    assert dead_letters(redis_url) == []
    figures = check_outcome(db_url, redis_url, workload)
    retries = count_log(worker.log_path, "retrying message")
    assert retries > 0, "the outage did not hit the run"
    report(**figures, outage_seconds=OUTAGE_SECONDS, retries_logged=retries,
           redelivered=outcomes_in_logs(worker)["duplicate"], drain_after_restart_seconds=round(seconds, 1))
