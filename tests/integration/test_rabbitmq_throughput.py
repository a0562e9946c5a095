"""RabbitMQ: the prefetch count follows the size of the messages, as on Redis, and many messages are sent with
one wait for their publisher confirms.

Quorum queues refuse a channel-wide prefetch, and a per-consumer one holds only for consumers started after
it was set; the worker restarts its task consumer when it changes the count (worker/batching.py). Without
that, one-update messages ran with the 32 messages a worker of two processes starts with, and the pool
idled for lack of messages.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from customer_updates.messaging.broker import producer_app
from customer_updates.messaging.names import UPDATES_QUEUE
from customer_updates.messaging.sending import publish_many
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from customer_updates.worker.batching import prefetch_for, reserved_per_process

MESSAGES = 400
PROCESSES = 2


def _consumer_prefetch_counts(broker_url: str, queue: str) -> list[int]:
    vhost = broker_url.rsplit("/", 1)[1]
    out = subprocess.run(["rabbitmqctl", "-q", "list_consumers", "-p", vhost, "queue_name", "prefetch_count",
                          "--no-table-headers"], check=True, capture_output=True, text=True, timeout=60).stdout
    return [int(count) for name, count in (line.split("\t") for line in out.splitlines() if line.strip())
            if name == queue]


def _commands(count: int) -> list[dict[str, Any]]:
    return [{"org_id": 1, "request_id": f"prefetch-{uuid.uuid4().hex}", "issued_at": utcnow().isoformat(),
             "customer": {"mobile": "919800000001", "firstname": f"First{i}"}} for i in range(count)]


def test_one_update_messages_raise_the_prefetch_of_the_running_rabbitmq_consumer(
        loaded_db, redis_url, rabbitmq_url, start_worker):
    settings = Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=rabbitmq_url)
    worker = start_worker(loaded_db, redis_url, concurrency=PROCESSES, broker_url=rabbitmq_url)
    starting = settings.worker_prefetch_multiplier * PROCESSES
    assert _consumer_prefetch_counts(rabbitmq_url, UPDATES_QUEUE) == [starting]

    commands = _commands(MESSAGES)
    publish_many([[command] for command in commands], celery=producer_app(settings))
    deadline = time.monotonic() + 60
    applied = 0
    while time.monotonic() < deadline:
        with session_scope(loaded_db) as session:
            applied = session.scalar(select(func.count()).select_from(t.CommandRecord).where(
                t.CommandRecord.request_id.like("prefetch-%"))) or 0
        if applied == MESSAGES:
            break
        time.sleep(0.2)

    assert applied == MESSAGES, worker.log_tail()
    per_process = prefetch_for(1.0, reserved_per_process(settings.worker_reserved_commands, PROCESSES,
                                                         settings.worker_batch_size),
                               settings.worker_prefetch_max, settings.worker_prefetch_multiplier)
    # One consumer of the queue (the first was cancelled), started with the count for one-update messages.
    assert _consumer_prefetch_counts(rabbitmq_url, UPDATES_QUEUE) == [per_process * PROCESSES]
    assert "prefetch changed" in worker.log_path.read_text()


def test_many_messages_sent_at_once_are_all_on_the_rabbitmq_queue_when_the_call_returns(loaded_db, redis_url,
                                                                                         rabbitmq_url):
    from kombu import Connection

    settings = Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=rabbitmq_url)
    messages = [[command] for command in _commands(250)]

    publish_many(messages, celery=producer_app(settings))  # one wait for 500 publisher confirms (and events)

    with Connection(rabbitmq_url) as conn:
        declared = conn.default_channel.queue_declare(UPDATES_QUEUE, passive=True)
    assert declared.message_count == len(messages)


def test_sending_after_rabbitmq_closed_the_connection_still_puts_every_message_on_the_queue(
        loaded_db, redis_url, rabbitmq_url):
    from kombu import Connection

    settings = Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=rabbitmq_url)
    celery = producer_app(settings)
    publish_many([[command] for command in _commands(20)], celery=celery)  # the confirming channel is open
    vhost = rabbitmq_url.rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "closed by the test"],
                   check=True, capture_output=True, timeout=60)
    time.sleep(0.5)

    publish_many([[command] for command in _commands(30)], celery=celery)

    with Connection(rabbitmq_url) as conn:
        declared = conn.default_channel.queue_declare(UPDATES_QUEUE, passive=True)
    assert declared.message_count >= 50  # a message whose confirm the closed connection took is sent again


def _get_one(rabbitmq_url: str) -> Any:
    from kombu import Connection

    with Connection(rabbitmq_url) as conn:
        message = conn.default_channel.basic_get(UPDATES_QUEUE, no_ack=True)
    assert message is not None
    return message


def test_a_pipelined_message_carries_what_celerys_send_task_publishes(loaded_db, redis_url, rabbitmq_url):
    import json

    from customer_updates.messaging.sending import send_apply

    celery = producer_app(Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=rabbitmq_url))
    commands = _commands(1)
    with celery.producer_or_acquire() as producer:
        send_apply(commands, celery=celery, producer=producer)
    by_celery = _get_one(rabbitmq_url)
    publish_many([commands], celery=celery)
    pipelined = _get_one(rabbitmq_url)

    varying = {"id", "root_id", "origin", "sent_at"}  # per message, or per process
    celery_headers, our_headers = by_celery.properties.pop("application_headers"), \
        pipelined.properties.pop("application_headers")
    assert {k: v for k, v in our_headers.items() if k not in varying} == \
        {k: v for k, v in celery_headers.items() if k not in varying}
    assert our_headers["id"] == our_headers["root_id"] == pipelined.properties["correlation_id"]
    assert {k: v for k, v in pipelined.properties.items() if k != "correlation_id"} == \
        {k: v for k, v in by_celery.properties.items() if k != "correlation_id"}
    assert json.loads(pipelined.body) == json.loads(by_celery.body)


def test_the_task_sent_events_of_pipelined_messages_reach_an_event_receiver(loaded_db, redis_url, rabbitmq_url):
    from celery.events import EventReceiver
    from kombu import Connection

    celery = producer_app(Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=rabbitmq_url))
    seen: list[dict[str, Any]] = []
    with Connection(rabbitmq_url) as conn:
        receiver = EventReceiver(conn, handlers={"task-sent": seen.append}, app=celery)
        receiver.queue(conn.default_channel).declare()  # bound to the events exchange before anything is sent
        publish_many([[command] for command in _commands(3)], celery=celery)
        try:
            for _ in receiver.consume(timeout=10, wakeup=False):
                if len(seen) >= 3:
                    break
        except TimeoutError:  # fewer than three: the assertion below says so
            pass

    assert len(seen) == 3
    assert {event["queue"] for event in seen} == {UPDATES_QUEUE}
    assert {event["name"] for event in seen} == {"customer_updates.apply_updates"}
    assert len({event["uuid"] for event in seen}) == 3


def test_a_calls_messages_are_written_corked_and_the_socket_is_uncorked_after(loaded_db, redis_url, rabbitmq_url,
                                                                               monkeypatch):
    import contextlib
    import socket

    from customer_updates.messaging import sending

    cork = getattr(socket, "TCP_CORK", None)
    if cork is None:
        pytest.skip("TCP_CORK is Linux's")
    states: list[tuple[int, int]] = []  # (inside the block, after it) per call
    real = sending.corked

    @contextlib.contextmanager
    def watched(connection: Any) -> Any:
        sock = connection.transport.sock
        with real(connection):
            inside = sock.getsockopt(socket.IPPROTO_TCP, cork)
            yield
        states.append((inside, sock.getsockopt(socket.IPPROTO_TCP, cork)))

    monkeypatch.setattr(sending, "corked", watched)
    settings = Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=rabbitmq_url)
    publish_many([[command] for command in _commands(20)], celery=producer_app(settings))
    assert states == [(1, 0)]
