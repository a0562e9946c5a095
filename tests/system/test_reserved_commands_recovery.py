"""RabbitMQ: SIGKILL of a worker holding more than a thousand reserved commands while another worker runs.

Its connection closes with it, so the quorum queue hands its unacknowledged messages to the other worker at
once (no visibility timeout): the figure reported is the seconds from the kill until every command has its
result, with the default settings. Nothing may be lost or applied twice.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.system.harness import (
    build_workload,
    check_outcome,
    prepare_database,
    publish,
    rabbitmq_backlog,
    wait_for_records,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

MESSAGE_SIZE = 100


def test_a_killed_workers_reserved_commands_reach_the_other_worker_when_its_connection_closes(
        pg_url, redis_url, rabbitmq_url, start_worker, report):
    workload = build_workload(count=6000, seed=9)
    prepare_database(pg_url, workload.customers)
    held = start_worker(pg_url, redis_url, concurrency=2, broker_url=rabbitmq_url, log_level="INFO")
    pool = psutil.Process(held.process.pid).children()
    for child in pool:  # its pool applies nothing: what its main process takes stays reserved
        child.send_signal(signal.SIGSTOP)
    publish(redis_url, workload.messages(MESSAGE_SIZE), rabbitmq_url)
    reserved = _wait_for_unacked(rabbitmq_url, at_least=10)
    other = start_worker(pg_url, redis_url, concurrency=2, broker_url=rabbitmq_url, log_level="INFO")

    # The other worker applies everything not reserved by the stopped one; then only those stay unacked.
    wait_for_records(pg_url, 1, len(workload.commands) - reserved * MESSAGE_SIZE, timeout=240)
    assert reserved * MESSAGE_SIZE >= 1000
    killed_at = time.monotonic()
    held.kill(signal.SIGKILL)
    for child in pool:
        child.send_signal(signal.SIGKILL)
    wait_for_records(pg_url, 1, len(workload.commands), timeout=240)
    recovery = time.monotonic() - killed_at

    wait_until_done(pg_url, redis_url, workload, broker_url=rabbitmq_url)
    figures = check_outcome(pg_url, redis_url, workload, broker_url=rabbitmq_url)
    assert other.process.poll() is None
    report(**figures, reserved_commands=reserved * MESSAGE_SIZE, results_after_kill_seconds=round(recovery, 1))


def _wait_for_unacked(broker_url: str, at_least: int, timeout: float = 60) -> int:
    """The messages the first worker reserved, once its prefetch window is full (the count stops rising)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        unacked = rabbitmq_backlog(broker_url)["unacked"]
        if unacked >= at_least and unacked == last:
            return unacked
        last = unacked
        time.sleep(0.5)
    raise AssertionError(f"fewer than {at_least} messages reserved after {timeout}s (last {last})")
