"""Redis (append-only file on, as in docker-compose) restarted mid-run: queued and unacknowledged messages
survive in the AOF, workers reconnect, and every command applies once."""

from __future__ import annotations

import pytest

from tests.system.harness import (
    WORKER_SETTINGS,
    PacedPublisher,
    build_workload,
    check_outcome,
    dead_letters,
    down_mid_run,
    outcomes_in_logs,
    prepare_database,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

DOWN_SECONDS = 3


# Redis only: the broker restarted is Redis with its AOF; RabbitMQ's quorum queues keep messages on their own.
def test_a_redis_restart_mid_run_loses_no_message_and_applies_nothing_twice(pg_url, own_redis, start_worker,
                                                                           report):
    redis_url = own_redis.url
    workload = build_workload(seed=3)
    prepare_database(pg_url, workload.customers)
    worker = start_worker(pg_url, redis_url, concurrency=2, beat=True, **WORKER_SETTINGS)
    publisher = PacedPublisher(redis_url, workload.messages(), seconds=12).start()

    down_mid_run(pg_url, workload, own_redis, DOWN_SECONDS)
    publisher.join()

    seconds = wait_until_done(pg_url, redis_url, workload)

    assert dead_letters(redis_url) == []
    figures = check_outcome(pg_url, redis_url, workload)
    assert worker.process.poll() is None
    assert "Connection to broker lost" in worker.log_path.read_text(), "the restart did not hit the run"
    report(**figures, down_seconds=DOWN_SECONDS, producer_resends=publisher.resends,
           redelivered=outcomes_in_logs(worker)["duplicate"], drain_after_restart_seconds=round(seconds, 1))
