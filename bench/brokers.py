"""The brokers `python -m bench run --broker` compares: Redis (the claimed database) or a RabbitMQ vhost of its own.

A RabbitMQ run gets a vhost made with `rabbitmqctl` (removed at the end) and its queues deleted between runs,
as the Redis database is emptied, so that every run starts from empty queues.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator

from customer_updates.messaging.names import DEAD_LETTER_QUEUE, QUEUES

RABBITMQ_BASE = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
REFERENCE_QUEUE = "bench_reference"  # bench/reference.py (not imported: it makes a Celery app at import)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def broker_urls(names: list[str]) -> Iterator[dict[str, str]]:
    """Broker URL per name: "" for redis (REDIS_URL is the broker), an amqp:// URL of a fresh vhost for rabbitmq."""
    urls: dict[str, str] = {}
    vhost = f"cu_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    for name in names:
        if name == "redis":
            urls[name] = ""
        elif name == "rabbitmq":
            user = RABBITMQ_BASE.split("://", 1)[1].split(":", 1)[0]
            _rabbitmqctl("add_vhost", vhost)
            _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
            urls[name] = f"{RABBITMQ_BASE}/{vhost}"
        else:
            raise ValueError(f"unknown broker {name!r}: redis or rabbitmq")
    try:
        yield urls
    finally:
        if urls.get("rabbitmq"):
            _rabbitmqctl("delete_vhost", vhost)


def empty_queues(broker_url: str) -> None:
    """Delete the queues a run used on RabbitMQ (nothing to do for Redis: its database is emptied)."""
    if not broker_url:
        return
    _each_queue(broker_url, "queue_delete")
    from kombu import pools

    # kombu's process-wide pools remember which queues their connections declared: the next run's producer
    # would not declare the deleted queues again, and RabbitMQ would drop every message it sends.
    pools.reset()


def purge_queues(broker_url: str) -> None:
    """Drop the messages of a run's RabbitMQ queues, keeping the queues (producers that declared them stay
    usable); nothing to do for Redis."""
    if broker_url:
        _each_queue(broker_url, "queue_purge")


def _each_queue(broker_url: str, method: str) -> None:
    from kombu import Connection

    with Connection(broker_url) as conn:
        for name in (*QUEUES, DEAD_LETTER_QUEUE, REFERENCE_QUEUE):
            with contextlib.suppress(*conn.channel_errors):  # not declared: only its channel closes
                getattr(conn.channel(), method)(name)
