"""Every message delivered twice, in shuffled order, to two workers: each command still applies once."""

from __future__ import annotations

import random

import pytest

from tests.system.harness import (
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    prepare_database,
    publish,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]


def test_every_message_twice_and_out_of_order_applies_each_command_once(pg_url, redis_url, broker_url,
                                                                        start_worker, report):
    workload = build_workload(seed=4)
    prepare_database(pg_url, workload.customers)
    messages = workload.messages()
    # Each message twice, and the whole stream shuffled: issued_at order and delivery order are unrelated,
    # and a duplicate may arrive before its original.
    deliveries = messages + [list(m) for m in messages]
    random.Random(4).shuffle(deliveries)
    publish(redis_url, deliveries, broker_url)
    start_worker(pg_url, redis_url, concurrency=2, beat=True, broker_url=broker_url, **WORKER_SETTINGS)
    start_worker(pg_url, redis_url, concurrency=2, broker_url=broker_url, **WORKER_SETTINGS)

    seconds = wait_until_done(pg_url, redis_url, workload, broker_url=broker_url)

    figures = check_outcome(pg_url, redis_url, workload, broker_url=broker_url)
    report(**figures, deliveries=sum(len(m) for m in deliveries), drain_seconds=round(seconds, 1))
