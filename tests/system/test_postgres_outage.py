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
    down_mid_run,
    log_entries,
    outcomes_in_logs,
    prepare_database,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

OUTAGE_SECONDS = 6
LONG_OUTAGE_SECONDS = 30
# The retry settings a deployment gets when it sets none (max_retries, retry_budget_seconds and the backoff).
RETRY_KEYS = ("max_retries", "retry_budget_seconds", "retry_backoff_base", "retry_backoff_max")


def test_a_database_outage_mid_run_is_retried_until_every_command_applied_once(
        own_postgres, own_postgres_url, redis_url, broker_url, start_worker, report):
    db_url = own_postgres_url
    workload = build_workload(seed=2)
    prepare_database(db_url, workload.customers)
    # Retries must outlast the outage: up to 15 tries, each delay drawn from [0, min(4 s, 0.2 s * 2^n)],
    # about 23 s on average. (With 10, about 13 s, a message now and then ran out of tries on a loaded
    # machine: every message a worker holds is retried on its own while the database is away.)
    settings = {**WORKER_SETTINGS, "max_retries": 15, "retry_backoff_max": 4.0}
    worker = start_worker(db_url, redis_url, concurrency=2, beat=True, broker_url=broker_url, **settings)
    publisher = PacedPublisher(redis_url, workload.messages(), seconds=12, broker_url=broker_url).start()

    down_mid_run(db_url, workload, own_postgres, OUTAGE_SECONDS)
    publisher.join()

    seconds = wait_until_done(db_url, redis_url, workload, broker_url=broker_url)

    assert dead_letters(redis_url) == []
    figures = check_outcome(db_url, redis_url, workload, broker_url=broker_url)
    retries = count_log(worker.log_path, "retrying message")
    assert retries > 0, "the outage did not hit the run"
    report(**figures, outage_seconds=OUTAGE_SECONDS, retries_logged=retries,
           redelivered=outcomes_in_logs(worker)["duplicate"], drain_after_restart_seconds=round(seconds, 1))


def test_a_30_second_database_outage_dead_letters_nothing_with_the_default_retry_settings(
        own_postgres, own_postgres_url, redis_url, start_worker, report):
    db_url = own_postgres_url
    workload = build_workload(count=600, seed=3)
    prepare_database(db_url, workload.customers)
    # Default retries; a visibility timeout longer than a retry's countdown (the harness's 6 s would hand a
    # message waiting for its retry to another worker: harmless, but not this scenario).
    settings = {k: v for k, v in WORKER_SETTINGS.items() if k not in RETRY_KEYS} | {"visibility_timeout": 60}
    worker = start_worker(db_url, redis_url, concurrency=2, beat=True, **settings)
    publisher = PacedPublisher(redis_url, workload.messages(), seconds=8).start()

    down_mid_run(db_url, workload, own_postgres, LONG_OUTAGE_SECONDS)
    restarted = time.monotonic()
    publisher.join()

    wait_until_done(db_url, redis_url, workload, timeout=180)
    drained = time.monotonic() - restarted

    assert dead_letters(redis_url) == []
    figures = check_outcome(db_url, redis_url, workload)
    retries = log_entries(worker.log_path, "retrying message")
    assert retries, "the outage did not hit the run"
    report(**figures, outage_seconds=LONG_OUTAGE_SECONDS, retries_logged=len(retries),
           most_attempts=max(line["attempt"] for line in retries),
           drain_after_restart_seconds=round(drained, 1))
