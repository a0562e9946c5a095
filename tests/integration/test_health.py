"""`customer-updates health` and the Prometheus exporter against real Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from customer_updates import Producer
from customer_updates.messaging.dead_letters import push_dead_letter
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.ops.processes import free_port
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import ROOT, cli_env, run_cli

ITEMS = {"root": {"customer": [{"mobile": f"91980000100{n}", "firstname": "Test"} for n in range(3)]}}


def health(pg_url: str, redis_url: str, **extra: str) -> tuple[int, dict]:
    done = run_cli(["health", "--json"], pg_url, redis_url, timeout=60, **extra)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def enqueue_without_worker(pg_url: str, redis_url: str, broker_url: str = "") -> None:
    producer = Producer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, broker_url=broker_url,
                                 producer_message_size=1))
    producer.enqueue_batch(1, ITEMS)


def add_outbox_award(pg_url: str, age: timedelta) -> None:
    with session_scope(pg_url) as session:
        session.add(t.OutboxEntry(org_id=1, user_id=1, kind="award", payload={"rule": "demo", "points": 1},
                                  created_at=utcnow() - age))


# A worker counts as settled after this long up (the default, 10 s, would slow each test down).
SETTLED = {"health_worker_min_uptime_seconds": "1"}


def wait_settled(pg_url: str, redis_url: str, timeout: float = 30, **extra: str) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout
    while True:
        code, report = health(pg_url, redis_url, **SETTLED, **extra)
        if code == 0 or time.monotonic() > deadline:
            return code, report
        time.sleep(0.5)


def no_worker_warnings(report: dict) -> list[str]:
    return [w for w in report["warnings"] if "no worker answering consumes it" in w]


def test_an_idle_system_with_a_worker_is_ok_with_empty_queues(pg_url, redis_url, start_worker):
    worker = start_worker(pg_url, redis_url, concurrency=1)

    code, report = wait_settled(pg_url, redis_url)

    assert code == 0, report
    assert (report["status"], report["broker"], report["database"]) == ("ok", True, True)
    assert [w["name"] for w in report["workers"]] == [f"celery@{socket.gethostname()}"]
    assert set(report["workers"][0]["queues"]) == {"customer_updates", "customer_updates.side_effects"}
    assert worker.process.poll() is None
    assert {q["name"]: q["messages"] for q in report["queues"]} == {
        "customer_updates": 0, "customer_updates.side_effects": 0}
    assert (report["outbox_unpublished"], report["outbox_awards_pending"], report["dead_letters"]) == (0, 0, 0)


def test_waiting_messages_show_their_count_and_the_age_of_the_oldest(pg_url, redis_url):
    enqueue_without_worker(pg_url, redis_url)
    time.sleep(1.2)

    code, report = health(pg_url, redis_url, health_max_wait_seconds="0.5")

    updates = next(q for q in report["queues"] if q["name"] == "customer_updates")
    assert updates["messages"] == 3
    assert 1.0 <= updates["oldest_age_seconds"] < 60
    assert (code, report["status"]) == (1, "degraded")
    assert any("customer_updates: oldest waited" in w for w in report["warnings"])


def test_dead_letters_and_old_outbox_work_make_the_system_degraded(pg_url, redis_url):
    import redis

    push_dead_letter(redis.Redis.from_url(redis_url), "customer_updates.dead_letters",
                             {"commands": []}, "test", attempts=7)
    add_outbox_award(pg_url, age=timedelta(minutes=10))

    code, report = health(pg_url, redis_url)

    assert code == 1
    assert report["dead_letters"] == 1
    assert (report["outbox_unpublished"], report["outbox_awards_pending"]) == (1, 1)
    assert report["outbox_oldest_pending_age_seconds"] >= 590
    assert len(report["warnings"]) - len(no_worker_warnings(report)) == 2


def test_an_unreachable_broker_and_database_are_down_with_exit_code_2():
    nothing = f"127.0.0.1:{free_port()}"
    done = run_cli(["health"], f"postgresql+psycopg://postgres@{nothing}/none", f"redis://{nothing}/0", timeout=60)

    assert done.returncode == 2
    assert "DOWN" in done.stdout
    assert "broker unreachable" in done.stdout
    assert "database unreachable" in done.stdout


def scrape_exporter(pg_url: str, redis_url: str, log_path: Path, **extra: str) -> dict[tuple[str, tuple], float]:
    """One scrape of a `customer-updates metrics` process started for it (and stopped after)."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "customer_updates.cli", "metrics", "--port", str(port)],
                                   env=cli_env(pg_url, redis_url, **extra), cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text = ""
        deadline = time.monotonic() + 30
        while not text and time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            except httpx.HTTPError:
                time.sleep(0.3)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_metrics_exporter_serves_what_health_sees_to_prometheus(pg_url, redis_url, tmp_path):
    enqueue_without_worker(pg_url, redis_url)
    add_outbox_award(pg_url, age=timedelta(seconds=5))

    samples = scrape_exporter(pg_url, redis_url, tmp_path / "metrics.log")

    assert samples[("customer_updates_up", (("component", "broker"),))] == 1
    assert samples[("customer_updates_up", (("component", "database"),))] == 1
    assert samples[("customer_updates_queue_messages", (("queue", "customer_updates"),))] == 3
    assert samples[("customer_updates_queue_messages", (("queue", "customer_updates.side_effects"),))] == 0
    assert samples[("customer_updates_queue_oldest_message_age_seconds", (("queue", "customer_updates"),))] >= 0
    assert samples[("customer_updates_outbox_awards_pending", ())] == 1
    assert samples[("customer_updates_dead_letters", ())] == 0


def test_without_any_worker_the_system_is_degraded_at_once(pg_url, redis_url):
    started = time.monotonic()
    code, report = health(pg_url, redis_url)

    assert (code, report["status"], report["workers"]) == (1, "degraded", [])
    assert len(no_worker_warnings(report)) == 2
    assert time.monotonic() - started < 15


def test_a_worker_killed_with_sigkill_makes_the_system_degraded_within_seconds(pg_url, redis_url, start_worker):
    worker = start_worker(pg_url, redis_url, concurrency=1)
    assert wait_settled(pg_url, redis_url)[0] == 0

    worker.kill(signal.SIGKILL)
    killed = time.monotonic()
    code, report = health(pg_url, redis_url, **SETTLED)

    assert (code, report["workers"]) == (1, [])
    assert len(no_worker_warnings(report)) == 2
    assert time.monotonic() - killed < 10


def test_a_worker_consuming_only_one_queue_leaves_the_other_without_a_worker(pg_url, redis_url, start_worker):
    start_worker(pg_url, redis_url, concurrency=1, queues="customer_updates")

    code, report = wait_settled(pg_url, redis_url, timeout=8)

    assert code == 1
    assert no_worker_warnings(report) == [
        "queue customer_updates.side_effects: no worker answering consumes it: are workers running?"]


def test_a_worker_restarting_in_a_loop_keeps_the_system_degraded(pg_url, redis_url, start_worker):
    codes, restarting = [], 0
    for _ in range(2):
        worker = start_worker(pg_url, redis_url, concurrency=1)
        code, report = health(pg_url, redis_url, health_worker_min_uptime_seconds="30")
        codes.append(code)
        restarting += any("restarting in a loop" in w for w in report["warnings"])
        worker.kill(signal.SIGKILL)
        codes.append(health(pg_url, redis_url)[0])

    assert codes == [1] * 4
    assert restarting == 2


def test_the_workers_only_probe_checks_one_node_and_not_the_database(pg_url, redis_url, start_worker):
    start_worker(pg_url, redis_url, concurrency=1)
    node = f"celery@{socket.gethostname()}"
    nothing = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    probe = ["health", "--json", "--workers-only"]

    deadline = time.monotonic() + 30
    while (done := run_cli([*probe, "--node", node], nothing, redis_url,
                           health_worker_min_uptime_seconds="1")).returncode != 0:
        assert time.monotonic() < deadline, done.stdout
        time.sleep(0.5)
    other = run_cli([*probe, "--node", "celery@elsewhere"], nothing, redis_url)

    assert json.loads(done.stdout)["database_checked"] is False
    assert other.returncode == 1
    assert json.loads(other.stdout)["workers"] == []


def publish_to_the_rabbitmq_dead_letter_queue(rabbitmq_url: str) -> None:
    """One message on RabbitMQ's dead-letter queue, as a quorum queue would dead-letter it (confirmed)."""
    from kombu import Connection

    from customer_updates.messaging.broker import DEAD_LETTER_EXCHANGE_DECLARATION, dead_letter_queue

    with Connection(rabbitmq_url, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(b"{}", exchange=DEAD_LETTER_EXCHANGE_DECLARATION, routing_key="x",
                                content_type="application/json", declare=[dead_letter_queue()])


def test_on_rabbitmq_health_counts_the_ready_messages_of_each_queue_and_both_kinds_of_dead_letters(
        pg_url, redis_url, rabbitmq_url):
    import redis

    enqueue_without_worker(pg_url, redis_url, rabbitmq_url)
    push_dead_letter(redis.Redis.from_url(redis_url), "customer_updates.dead_letters", {"commands": []}, "test",
                     attempts=1)
    publish_to_the_rabbitmq_dead_letter_queue(rabbitmq_url)

    code, report = health(pg_url, redis_url, broker_url=rabbitmq_url)

    assert (code, report["status"], report["broker"], report["database"]) == (1, "degraded", True, True), report
    assert {q["name"]: q["messages"] for q in report["queues"]} == {
        "customer_updates": 3, "customer_updates.side_effects": 0}
    # What RabbitMQ does not tell an AMQP client stays unknown rather than 0.
    assert [q["oldest_age_seconds"] for q in report["queues"]] == [None, None]
    assert report["reserved"] is None
    assert report["dead_letters"] == 2  # one on the Redis list, one not yet moved from RabbitMQ's queue
    assert len(no_worker_warnings(report)) == 2


def test_on_rabbitmq_an_idle_system_with_a_worker_is_ok_and_its_workers_answer(pg_url, redis_url, rabbitmq_url,
                                                                                start_worker):
    start_worker(pg_url, redis_url, concurrency=1, broker_url=rabbitmq_url)

    code, report = wait_settled(pg_url, redis_url, broker_url=rabbitmq_url)

    assert code == 0, report
    assert [w["name"] for w in report["workers"]] == [f"celery@{socket.gethostname()}"]
    assert {q["name"]: q["messages"] for q in report["queues"]} == {
        "customer_updates": 0, "customer_updates.side_effects": 0}
    assert report["dead_letters"] == 0


def test_on_rabbitmq_the_metrics_exporter_serves_the_queue_depth(pg_url, redis_url, rabbitmq_url, tmp_path):
    enqueue_without_worker(pg_url, redis_url, rabbitmq_url)
    publish_to_the_rabbitmq_dead_letter_queue(rabbitmq_url)

    samples = scrape_exporter(pg_url, redis_url, tmp_path / "metrics.log", broker_url=rabbitmq_url)

    assert samples[("customer_updates_up", (("component", "broker"),))] == 1
    assert samples[("customer_updates_queue_messages", (("queue", "customer_updates"),))] == 3
    assert samples[("customer_updates_queue_messages", (("queue", "customer_updates.side_effects"),))] == 0
    assert samples[("customer_updates_dead_letters", ())] == 1
    unknown = {name for name, _ in samples} & {"customer_updates_queue_oldest_message_age_seconds",
                                              "customer_updates_reserved_messages"}
    assert unknown == set()


def test_on_rabbitmq_an_unreachable_broker_is_down_with_exit_code_2(pg_url, redis_url):
    done = run_cli(["health"], pg_url, redis_url, timeout=60,
                   broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//")

    assert done.returncode == 2
    assert "broker unreachable" in done.stdout
