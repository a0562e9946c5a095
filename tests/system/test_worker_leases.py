"""Leases on reserved messages (issue 27): a killed worker's reservation comes back within seconds, a
paused one's late commits apply nothing twice."""

from __future__ import annotations

import signal
import time

import pytest
import redis

from customer_updates.settings import Settings
from customer_updates.worker.leases import lease_times
from tests.system.harness import (
    UPDATES_QUEUE,
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    outcomes_in_logs,
    prepare_database,
    publish,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

# The holder applies one ten-command message per transaction, so that it still holds most of its reservation
# when the other worker is ready; it reserves up to 2,500 commands.
SLOW_HOLDER = {"worker_batch_size": 10, "worker_reserved_commands": 2500}
HELD_AT_LEAST = 1000


def _hold_a_reservation(pg_url: str, redis_url: str, start_worker, settings: dict[str, object]):
    """A worker holding at least HELD_AT_LEAST commands it has not applied, another worker running and
    nothing left on the queue; returns both and the workload."""
    workload = build_workload(count=3000, seed=7)
    prepare_database(pg_url, workload.customers)
    holder = start_worker(pg_url, redis_url, concurrency=1, queues=UPDATES_QUEUE, **{**settings, **SLOW_HOLDER})
    publish(redis_url, workload.messages())
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 30
    while client.llen(UPDATES_QUEUE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.llen(UPDATES_QUEUE) == 0, "the holder did not reserve the whole workload"
    other = start_worker(pg_url, redis_url, concurrency=2, beat=True, **settings)
    # The queue was empty when the other worker started: every unacked record is the holder's.
    held_messages = int(client.hlen("unacked"))
    client.close()
    assert held_messages * 10 >= HELD_AT_LEAST, f"the holder holds only {held_messages} messages"
    return holder, other, workload, held_messages * 10


# Redis only: leases renew kombu's Redis unacked index (RabbitMQ: test_reserved_commands_recovery.py).
def test_a_killed_workers_reservation_is_applied_by_a_running_worker_within_the_lease(
        pg_url, redis_url, start_worker, report):
    # Default recovery settings (visibility timeout and leases); quick retries and relay only.
    settings = {k: v for k, v in WORKER_SETTINGS.items() if k != "visibility_timeout"}
    holder, other, workload, held = _hold_a_reservation(pg_url, redis_url, start_worker, settings)

    holder.kill(signal.SIGKILL)
    killed, killed_at = time.monotonic(), time.time()
    holder.process.wait(10)
    client = redis.Redis.from_url(redis_url)
    # Restored records leave the index; taken again, they come back scored after the kill.
    while client.zcount("unacked_index", "-inf", killed_at) and time.monotonic() - killed < 120:
        time.sleep(0.1)
    back = time.monotonic() - killed  # every message the holder held is back on the queue or taken again
    client.close()
    wait_until_done(pg_url, redis_url, workload, timeout=120)
    recovery = time.monotonic() - killed

    figures = check_outcome(pg_url, redis_url, workload)
    assert other.process.poll() is None
    bound = lease_times(Settings().visibility_timeout)
    # Back on the queue within visibility timeout + one sweep period; then some seconds to apply them.
    assert recovery <= Settings().visibility_timeout + bound.sweep_every + 10, (recovery, back, held)
    report(**figures, held_commands=held, recovery_seconds=round(recovery, 1), back_seconds=round(back, 1),
           redelivered=outcomes_in_logs(holder, other)["duplicate"])


# Redis only: the pause outlasts the leases; on RabbitMQ the heartbeat (test_reserved_commands_recovery.py).
def test_a_worker_paused_past_the_visibility_timeout_applies_nothing_twice_when_it_resumes(
        pg_url, redis_url, start_worker, report):
    holder, other, workload, held = _hold_a_reservation(pg_url, redis_url, start_worker, WORKER_SETTINGS)
    visibility = float(WORKER_SETTINGS["visibility_timeout"])

    holder.kill(signal.SIGSTOP)
    time.sleep(visibility + lease_times(visibility).sweep_every + 3)  # its leases expire, the other takes over
    holder.kill(signal.SIGCONT)
    seconds = wait_until_done(pg_url, redis_url, workload, timeout=120)

    figures = check_outcome(pg_url, redis_url, workload)
    assert holder.process.poll() is None and other.process.poll() is None
    outcomes = outcomes_in_logs(holder, other)
    report(**figures, held_commands=held, drained_after_resume_seconds=round(seconds, 1),
           redelivered=outcomes["duplicate"])
