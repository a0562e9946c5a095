"""RabbitMQ: a worker holding more than a thousand reserved commands while another worker runs is killed
(SIGKILL), or paused (SIGSTOP) and resumed later.

Killed, its connection closes with it, so the quorum queue hands its unacknowledged messages to the other
worker at once (no visibility timeout): the figure reported is the seconds from the kill until every command
has its result, with the default settings. Paused, its connection stays open but silent: RabbitMQ closes it
only once the worker's AMQP heartbeats are missed (the lower of the heartbeat Celery asks for,
`broker_heartbeat`, and RabbitMQ's own, 60 s by default), then hands its messages to the other worker: the
figure reported is the seconds from the pause until every command has its result. When it resumes, its late
commits and acknowledgements must apply nothing twice. Nothing may be lost either way.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.system.harness import (
    UPDATES_QUEUE,
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    log_entries,
    outcomes_in_logs,
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


def test_a_worker_paused_past_its_heartbeat_applies_nothing_twice_when_it_resumes(
        pg_url, redis_url, rabbitmq_url, start_worker, report):
    workload = build_workload(count=3000, seed=11)
    prepare_database(pg_url, workload.customers)
    holder = start_worker(pg_url, redis_url, concurrency=1, queues=UPDATES_QUEUE, broker_url=rabbitmq_url,
                          **WORKER_SETTINGS)
    first, *rest = workload.messages(MESSAGE_SIZE)
    # Celery hands work only to a pool process that has reported itself up, which may come after "ready":
    # once one message is applied, the process stopped below is sure to be handed the next batch.
    publish(redis_url, [first], rabbitmq_url)
    wait_for_records(pg_url, 1, len(first), timeout=60)
    for child in psutil.Process(holder.process.pid).children():
        # Its pool waits, so that it holds a reservation and no database transaction when the pause comes.
        child.send_signal(signal.SIGSTOP)
    publish(redis_url, rest, rabbitmq_url)
    reserved = _wait_for_unacked(rabbitmq_url, at_least=10)
    assert reserved * MESSAGE_SIZE >= 1000, reserved

    holder.kill(signal.SIGSTOP)  # the whole process group: main process, pool and all
    paused = time.monotonic()
    other = start_worker(pg_url, redis_url, concurrency=2, beat=True, broker_url=rabbitmq_url, **WORKER_SETTINGS)
    wait_for_records(pg_url, 1, len(workload.commands), timeout=400)
    takeover = time.monotonic() - paused  # the paused worker's messages went to the other one and were applied
    holder.kill(signal.SIGCONT)
    resumed = time.monotonic()

    wait_until_done(pg_url, redis_url, workload, timeout=120, broker_url=rabbitmq_url)
    # Its pool takes up the batch it was handed before the pause, all of it applied by the other worker by now:
    # answered as duplicates, or, while the other worker's claims on those request ids last, deferred to the
    # queue (and answered as duplicates by whichever worker takes them next).
    _wait_for_log(holder.log_path, "duplicate", timeout=60, or_event="deferred requests another worker is applying")
    _wait_for_log(holder.log_path, "duplicate", timeout=60, or_log=other.log_path)
    figures = check_outcome(pg_url, redis_url, workload, broker_url=rabbitmq_url)
    assert holder.process.poll() is None and other.process.poll() is None
    report(**figures, reserved_commands=reserved * MESSAGE_SIZE, results_while_paused_seconds=round(takeover, 1),
           drained_after_resume_seconds=round(time.monotonic() - resumed, 1),
           redelivered=outcomes_in_logs(holder, other)["duplicate"])


def _wait_for_log(log_path: Path, outcome: str, timeout: float, or_event: str | None = None,
                  or_log: Path | None = None) -> None:
    """Until the worker of this log (or of `or_log`) has logged a batch with commands of this outcome, or the
    worker of this log the event `or_event`."""
    deadline = time.monotonic() + timeout
    logs = [log_path] if or_log is None else [log_path, or_log]
    while not any(int(entry.get(outcome, 0)) for path in logs for entry in log_entries(path, "batch")):
        if or_event is not None and log_entries(log_path, or_event):
            return
        assert time.monotonic() < deadline, f"no batch with {outcome} commands logged after {timeout}s"
        time.sleep(0.5)


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
