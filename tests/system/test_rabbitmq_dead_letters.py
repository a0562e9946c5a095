"""RabbitMQ as the broker: raw AMQP messages a worker cannot use, and what the quorum queue dead-letters,
all reach the Redis dead-letter list; none stops the worker; a dead-lettered command can be replayed."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from kombu import Connection

from customer_updates.messaging.broker import EXCHANGE, queue_declarations
from customer_updates.messaging.names import UPDATES_QUEUE
from customer_updates.messaging.results import read_result
from customer_updates.settings import Settings
from tests.conftest import run_cli
from tests.system.harness import (
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    dead_letters,
    prepare_database,
    publish,
    task_headers,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

JUNK = b"\x00\xff\xfe{not json"


def _broken_headers() -> list[dict[str, Any]]:
    base = task_headers()
    return [{**base, "task": ["a", "list"]},  # not hashable: no strategy can be looked up
            {**base, "eta": "not a date", "expires": {"x": 1}},
            {**base, "task": None}]


def _publish_raw(broker_url: str, redis_url: str, messages: list[tuple[bytes, dict[str, Any], str]]) -> None:
    """Publish bodies as they are (no serializer), with kombu, onto the updates queue.

    With publisher confirms, as the product's producers publish: without them RabbitMQ may drop a message
    published just before the connection closes, and no dead letter of it would ever come."""
    queue = queue_declarations(Settings(REDIS_URL=redis_url, broker_url=broker_url))[0]
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for body, headers, content_type in messages:
            producer.publish(body, exchange=EXCHANGE, routing_key=UPDATES_QUEUE, content_type=content_type,
                             content_encoding="utf-8", headers=headers, declare=[queue])


def test_raw_amqp_messages_with_broken_headers_or_bodies_are_dead_lettered_and_the_worker_goes_on(
        pg_url, redis_url, rabbitmq_url, start_worker):
    workload = build_workload(count=100, seed=7)
    prepare_database(pg_url, workload.customers)
    good_body = b'[[], {"commands": []}, {}]'
    raw = [(JUNK, task_headers(), "application/json"),
           (JUNK, {}, "application/json"),
           (b'{"hello": "world"}', task_headers(), "application/json"),
           (b"\x80\x04K\x01.", task_headers(), "application/x-python-serialize"),
           (b'[[], {"customers": [1]}, {}]', task_headers(), "application/json"),
           *[(good_body, headers, "application/json") for headers in _broken_headers()]]
    _publish_raw(rabbitmq_url, redis_url, raw[:4])
    publish(redis_url, workload.messages(), rabbitmq_url)
    _publish_raw(rabbitmq_url, redis_url, raw[4:])
    worker = start_worker(pg_url, redis_url, concurrency=1, broker_url=rabbitmq_url, beat=True, **WORKER_SETTINGS)

    wait_until_done(pg_url, redis_url, workload, timeout=90, broker_url=rabbitmq_url)

    check_outcome(pg_url, redis_url, workload, broker_url=rabbitmq_url)
    # The good commands' results can be stored before the last broken message is dead-lettered: a message the
    # worker received while it restarted its consumer (a new prefetch count) comes back a moment later.
    _wait_for_letters(redis_url, len(raw))
    time.sleep(1)  # a dead letter stored twice (by the worker and by the dead-letter exchange) would show now
    letters = dead_letters(redis_url)
    assert len(letters) == len(raw), [e["error"] for e in letters]
    assert not any("RabbitMQ" in e["error"] for e in letters)  # stored once by the worker, not again by the DLX
    assert worker.process.poll() is None


def test_a_message_the_quorum_queue_dead_letters_reaches_the_list_and_replays(
        pg_url, redis_url, rabbitmq_url, start_worker):
    workload = build_workload(count=10, seed=8)
    prepare_database(pg_url, workload.customers)
    queue = queue_declarations(Settings(REDIS_URL=redis_url, broker_url=rabbitmq_url))[0]
    # Declared here, before the publish: a producer that declared it earlier in this process may skip the
    # declaration (kombu remembers declared entities), and the fixture deleted the queues since.
    with Connection(rabbitmq_url) as conn:
        queue.bind(conn.default_channel).declare()
    publish(redis_url, [workload.commands], rabbitmq_url)
    refused: list[Any] = []
    with Connection(rabbitmq_url) as conn, conn.Consumer(queue, callbacks=[lambda _, m: refused.append(m)]):
        conn.drain_events(timeout=30)
        refused[0].reject()  # a consumer refuses it for good: the quorum queue dead-letters it
    start_worker(pg_url, redis_url, concurrency=1, broker_url=rabbitmq_url, **WORKER_SETTINGS)

    letters = _wait_for_letters(redis_url, 1)
    assert letters[0]["error"] == f"dead-lettered by RabbitMQ: rejected on {UPDATES_QUEUE}"
    assert letters[0]["message"] == {"commands": workload.commands}
    replayed = run_cli(["dead-letters", "replay"], pg_url, redis_url, broker_url=rabbitmq_url)
    assert replayed.returncode == 0, replayed.stderr

    wait_until_done(pg_url, redis_url, workload, timeout=60, broker_url=rabbitmq_url)
    client = redis.Redis.from_url(redis_url)
    assert all(read_result(client, 1, c["request_id"]) is not None for c in workload.commands)
    client.close()


def _wait_for_letters(redis_url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        letters = dead_letters(redis_url)
        if len(letters) >= count:
            return letters
        time.sleep(0.3)
    raise AssertionError(f"{count} dead letters expected, found {dead_letters(redis_url)}")
