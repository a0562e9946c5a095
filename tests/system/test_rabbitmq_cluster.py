"""RabbitMQ as a three-node cluster with quorum queues: one node killed mid-run and started again.

The node killed is the first of the broker URL list: workers and producers are connected to it, and the
queues' leader is there (RabbitMQ places a quorum queue's leader on the node of the client that declares
it). So one kill makes every connection fail over to the next node of the list and the queues elect a new
leader among the two replicas left, while commands are being sent. Nothing may be lost or applied twice.
Figures: the seconds from the kill until every command has its result (the producer sends for about ten
of them), and the longest time after the kill in which no worker applied anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest

from customer_updates.messaging.names import DEAD_LETTER_QUEUE, SIDE_EFFECTS_QUEUE, UPDATES_QUEUE
from tests.conftest import _unavailable
from tests.system.harness import (
    WORKER_SETTINGS,
    PacedPublisher,
    build_workload,
    check_outcome,
    dead_letters,
    log_entries,
    outcomes_in_logs,
    prepare_database,
    wait_for_records,
    wait_until_done,
)
from tests.system.rabbitmq_cluster import RabbitCluster, connected_ports

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

DOWN_SECONDS = 2


@pytest.fixture
def rabbitmq_cluster() -> Iterator[RabbitCluster]:
    try:
        cluster = RabbitCluster(3)
    except FileNotFoundError as exc:
        _unavailable("rabbitmq-server (for a cluster of the test's own)", exc)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def test_a_cluster_node_killed_mid_run_and_restarted_loses_no_command_and_applies_none_twice(
        pg_url, redis_url, rabbitmq_cluster, start_worker, report):
    cluster = rabbitmq_cluster
    first, survivor = cluster.nodes[0], cluster.nodes[1]
    names = sorted(node.name for node in cluster.nodes)
    workload = build_workload(seed=27)
    prepare_database(pg_url, workload.customers)
    workers = [start_worker(pg_url, redis_url, wait=False, concurrency=1, beat=number == 0,
                            broker_url=cluster.broker_url, **WORKER_SETTINGS) for number in range(2)]
    for worker in workers:
        worker.wait_ready(timeout=90)

    queues = cluster.queues(survivor)
    for name in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE, DEAD_LETTER_QUEUE):
        assert queues[name]["type"] == "quorum", queues[name]
        assert sorted(queues[name]["members"]) == names, queues[name]
    assert queues[UPDATES_QUEUE]["leader"] == first.name, queues[UPDATES_QUEUE]
    assert [connected_ports(w.log_path) for w in workers] == [[first.amqp_port]] * len(workers)

    publisher = PacedPublisher(redis_url, workload.messages(), seconds=12, broker_url=cluster.broker_url).start()
    wait_for_records(pg_url, workload.org_id, len(workload.commands) // 5)
    killed_at, killed_wall = time.monotonic(), time.time()
    cluster.kill(first)

    def restart() -> float:
        time.sleep(DOWN_SECONDS)
        cluster.start_node(first)
        cluster.wait_running(first)
        return time.monotonic() - killed_at

    with ThreadPoolExecutor(1) as pool:
        restarted = pool.submit(restart)
        publisher.join()
        sent_at = time.monotonic()
        wait_for_records(pg_url, workload.org_id, len(workload.commands), timeout=120)
        results_after_kill, results_after_send = time.monotonic() - killed_at, time.monotonic() - sent_at
        back_after_kill = restarted.result(timeout=120)

    # The harness's broker checks ask the machine's own node: here the queues are asked of the cluster.
    wait_until_done(pg_url, redis_url, workload, timeout=60)
    assert cluster.wait_drained(survivor) == {"queued": 0, "unacked": 0}
    figures = check_outcome(pg_url, redis_url, workload)
    assert cluster.wait_drained(survivor) == {"queued": 0, "unacked": 0}
    assert dead_letters(redis_url) == []
    for worker in workers:
        assert worker.process.poll() is None, worker.log_tail()
        ports = connected_ports(worker.log_path)
        assert len(ports) >= 2 and ports[-1] != first.amqp_port, f"no failover: connected to {ports}"
    queue = cluster.wait_online(UPDATES_QUEUE, via=survivor)
    assert sorted(queue["online"]) == names, queue  # the restarted node's replica is back
    report(**figures, killed="first node of the URL list: every connection and the queues' leader",
           results_after_kill_seconds=round(results_after_kill, 1),
           results_after_last_send_seconds=round(results_after_send, 1),
           longest_pause_after_kill_seconds=round(_longest_pause(workers, killed_wall), 1),
           node_back_after_kill_seconds=round(back_after_kill, 1), producer_resends=publisher.resends,
           redelivered=outcomes_in_logs(*workers)["duplicate"], leader_after=queue["leader"])


def _longest_pause(workers: list[Any], since: float) -> float:
    """The longest time after `since` (epoch seconds) in which no worker logged an applied batch."""
    times = sorted(datetime.fromisoformat(entry["ts"]).timestamp()
                   for worker in workers for entry in log_entries(worker.log_path, "batch"))
    return max((b - a for a, b in pairwise([since, *(t for t in times if t > since)])), default=0.0)
