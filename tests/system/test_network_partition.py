"""A partition between real hosts (issue 27): two worker hosts in network namespaces of their own, the broker
and the databases in a third (tests/system/netns.py). One host, in the middle of applying a reservation, is
cut off for longer than the visibility timeout and then plugged back in, on Redis and on RabbitMQ.

The other host must apply everything the cut-off one held within the recovery goal (30 s after the cut),
with the default recovery settings; when the link is back, nothing may have been lost or applied twice and
both workers must still be running.

The cut sets the host's bridge port down, a cable pulled at the switch: neither the servers nor the worker
get a reset or a close, only silence (netem's packet loss would do as well, but not every kernel has it).
Two defaults keep the takeover within the goal (docs/operations.md, Recovery settings): the AMQP heartbeat,
without which RabbitMQ keeps the cut-off worker's messages for minutes, and PostgreSQL dropping sessions
whose client is unreachable, without which the cut-off worker's open transaction keeps its row locks.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from sqlalchemy import create_engine, text

from customer_updates.ops.processes import WorkerProcess, worker_command
from tests.conftest import ROOT, _unavailable, cli_env
from tests.system import harness
from tests.system.harness import (
    WORKER_SETTINGS,
    broker_backlog,
    build_workload,
    check_outcome,
    log_entries,
    outcomes_in_logs,
    prepare_database,
    publish,
    wait_for_records,
    wait_until_done,
)
from tests.system.netns import CorePostgres, CoreRabbitMQ, CoreRedis, Network, unavailable_reason

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]

RECOVERY_GOAL = 30.0  # seconds from the cut until the other host has applied what the cut-off one held
CUT_SECONDS = 25.0  # longer than the default visibility timeout (20 s)
MESSAGE_SIZE = 100
# Sixteen messages: what the holder reserves at once on either broker (prefetch 16 x 2 processes on RabbitMQ).
COMMANDS = 1600
# The holder applies ten commands per transaction, so that at the cut it is in the middle of its reservation
# (and of a transaction) rather than done with it.
HOLDER: dict[str, Any] = {"worker_batch_size": 10}
# Quick retries and outbox relay; the visibility timeout and leases keep their defaults.
SETTINGS = {k: v for k, v in WORKER_SETTINGS.items() if k != "visibility_timeout"}


@dataclass
class Lab:
    network: Network
    db_url: str
    redis_url: str
    broker_url: str
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, host: int, concurrency: int = 2, beat: bool = False, **settings: Any) -> WorkerProcess:
        """A real `customer-updates worker` inside worker host `host`'s namespace."""
        log_path = self.logs / f"host{host + 1}.log"
        args = worker_command(concurrency, beat_schedule=log_path.with_suffix(".beat") if beat else None,
                              hostname=f"host{host + 1}@%h")
        env = cli_env(self.db_url, self.redis_url, **{**SETTINGS, **settings},
                      **({"broker_url": self.broker_url} if self.broker_url else {}))
        worker = WorkerProcess(self.network.command(self.network.hosts[host], args), env, log_path, cwd=ROOT)
        self.workers.append(worker)
        worker.wait_ready(90)
        return worker


@pytest.fixture(params=["redis", "rabbitmq"])
def lab(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """The namespaces, the servers in the core one, a migrated database; all of it gone afterwards."""
    from customer_updates.store.db import dispose_engines
    from customer_updates.store.migrate import upgrade

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    network = Network()
    servers: list[CoreRedis | CorePostgres | CoreRabbitMQ] = []
    lab: Lab | None = None
    try:
        try:
            network.create()
            redis_server, postgres = CoreRedis(network), CorePostgres(network)
            servers += [redis_server, postgres]
            redis_server.start()
            postgres.start()
            broker_url = ""
            if request.param == "rabbitmq":
                rabbit = CoreRabbitMQ(network)
                servers.append(rabbit)
                rabbit.start()
                broker_url = rabbit.url
                # The harness asks the machine's RabbitMQ for the backlog; ours is asked inside its namespace.
                monkeypatch.setattr(harness, "rabbitmq_backlog", rabbit.backlog)
        except (RuntimeError, TimeoutError, OSError) as exc:
            _unavailable("network namespaces with their own servers", exc)
        admin = create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "customers"'))
        admin.dispose()
        db_url = postgres.admin_url.rsplit("/", 1)[0] + "/customers"
        upgrade(db_url)
        lab = Lab(network, db_url, redis_server.url, broker_url, tmp_path)
        yield lab
    finally:
        for worker in lab.workers if lab else []:
            worker.stop(10)
        dispose_engines()
        for server in servers:
            server.close()
        network.destroy()


def test_a_host_cut_off_past_the_visibility_timeout_loses_nothing_and_the_other_host_takes_over(
        lab: Lab, report: Any) -> None:
    workload = build_workload(count=COMMANDS, seed=27)
    prepare_database(lab.db_url, workload.customers)
    holder = lab.start_worker(0, **HOLDER)
    pool = psutil.Process(holder.pid).children()
    for child in pool:  # until the other host is up, what the holder takes stays reserved
        child.send_signal(signal.SIGSTOP)
    publish(lab.redis_url, workload.messages(MESSAGE_SIZE), lab.broker_url)
    held_messages = _wait_for_the_holder_to_reserve_everything(lab)
    other = lab.start_worker(1, beat=True)
    for child in pool:
        child.send_signal(signal.SIGCONT)
    wait_for_records(lab.db_url, workload.org_id, 50, timeout=60)  # the holder is applying its reservation

    lab.network.cut(0)
    cut_at = time.monotonic()
    applied_before_cut = wait_for_records(lab.db_url, workload.org_id, 0)
    try:
        wait_for_records(lab.db_url, workload.org_id, COMMANDS, timeout=RECOVERY_GOAL + 15)
        takeover: float | None = time.monotonic() - cut_at
    except AssertionError:
        takeover = None
    time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
    lab.network.restore(0)
    restored_at = time.monotonic()
    cut_seconds = restored_at - cut_at

    # Back on the network, the holder answers through the broker again and works off what it still held
    # (already applied by the other host: answered as duplicates) before the outcome is checked.
    back = _wait_for_a_pong(lab, holder_name="host1", timeout=60)
    settled = _wait_for_the_holder_to_settle(holder, timeout=60)
    wait_until_done(lab.db_url, lab.redis_url, workload, timeout=60, broker_url=lab.broker_url)
    figures = check_outcome(lab.db_url, lab.redis_url, workload, broker_url=lab.broker_url)
    assert other.process.poll() is None, other.log_tail()
    assert holder.process.poll() is None, holder.log_tail()
    report(**figures, broker="rabbitmq" if lab.broker_url else "redis", held_messages=held_messages,
           held_commands=COMMANDS - applied_before_cut, cut_seconds=round(cut_seconds, 1),
           takeover_seconds=None if takeover is None else round(takeover, 1),
           holder_answers_after_restore_seconds=round(back, 1),
           holder_settled_after_restore_seconds=round(settled - restored_at, 1),
           holder_broker_reconnects=holder.log_path.read_text(errors="replace").count("Connection to broker lost"),
           redelivered=outcomes_in_logs(holder, other)["duplicate"])
    assert takeover is not None and takeover <= RECOVERY_GOAL, \
        f"the other host applied the cut-off host's reservation after {takeover} s (goal {RECOVERY_GOAL} s)"


def _wait_for_the_holder_to_reserve_everything(lab: Lab, timeout: float = 60) -> int:
    """Wait until nothing is left on the queue and the holder has taken every message; returns how many."""
    client = redis.Redis.from_url(lab.redis_url)
    deadline = time.monotonic() + timeout
    backlog: dict[str, int] = {}
    try:
        while time.monotonic() < deadline:
            backlog = broker_backlog(client, lab.broker_url)
            if backlog["queued"] == 0 and backlog["unacked"] >= COMMANDS // MESSAGE_SIZE:
                return backlog["unacked"]
            time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError(f"the holder did not reserve the whole workload: {backlog}")


def _wait_for_a_pong(lab: Lab, holder_name: str, timeout: float) -> float:
    """Seconds until the worker answers a ping through the broker (Celery's remote control)."""
    from customer_updates.messaging.broker import producer_app
    from customer_updates.settings import Settings

    app = producer_app(Settings(REDIS_URL=lab.redis_url, broker_url=lab.broker_url))
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            with contextlib.suppress(Exception):  # the broker connection of this process may fail too
                if app.control.ping(destination=[f"{holder_name}@{socket.gethostname()}"], timeout=1.0):
                    return time.monotonic() - started
            time.sleep(0.5)
    finally:
        app.close()
    raise AssertionError(f"{holder_name} does not answer {timeout}s after the link came back")


HANDED_BACK = ("retrying message", "results not published; message requeued")  # log lines with "commands"
QUIET_SECONDS = 15.0


def _wait_for_the_holder_to_settle(holder: WorkerProcess, timeout: float) -> float:
    """Wait until the holder has logged an outcome (applied, duplicate, ...) for every command it took, or
    handed it back to the queue (a retry, or results Redis did not take), or has logged nothing new for
    `QUIET_SECONDS`: on RabbitMQ, messages Celery had reserved on the channel that closed are dropped on
    reconnect (the broker redelivered them to the other host), and the holder never logs them. Returns
    the time it settled. Until then it may still hold messages it could apply a second time."""
    deadline = time.monotonic() + timeout
    accounted, changed_at = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = sum(outcomes_in_logs(holder).values()) + sum(
            int(entry.get("commands", 0)) for line in HANDED_BACK for entry in log_entries(holder.log_path, line))
        if now != accounted:
            accounted, changed_at = now, time.monotonic()
        if accounted >= COMMANDS or time.monotonic() - changed_at >= QUIET_SECONDS:
            return time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"the holder accounted for {accounted} of its {COMMANDS} commands {timeout}s after the "
                         f"link came back and was still logging:\n{holder.log_tail()}")
