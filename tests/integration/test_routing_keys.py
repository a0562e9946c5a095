"""Each queue has its own routing key: a message sent the standard Celery way, to the `customer_updates`
exchange with one queue's key, lands in that queue alone, and a binding left by earlier releases is removed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis

from customer_updates.messaging.broker import EXCHANGE, drop_stale_bindings
from customer_updates.messaging.names import APPLY_TASK, AWARD_TASK, SIDE_EFFECTS_QUEUE, UPDATES_QUEUE
from tests.conftest import ROOT, cli_env

pytestmark = pytest.mark.redis


def declare_queues_as_a_worker_does(redis_url: str) -> None:
    from customer_updates.settings import Settings
    from customer_updates.worker.celery_app import make_app

    app = make_app(Settings(REDIS_URL=redis_url))
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue(channel).declare()


def depths(client: redis.Redis) -> dict[str, int]:
    return {name: int(client.llen(name)) for name in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE)}


def celery_call(redis_url: str, task: str, routing_key: str) -> None:
    """`celery call` as an operator types it, against the worker's app."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "customer_updates.worker", "call", task, "--kwargs",
         json.dumps({"commands": []}), "--exchange", EXCHANGE.name, "--routing-key", routing_key],
        capture_output=True, text=True, cwd=ROOT, env=cli_env("sqlite://", redis_url), timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_celery_call_to_the_exchange_reaches_each_queue_once(redis_url):
    declare_queues_as_a_worker_does(redis_url)
    client = redis.Redis.from_url(redis_url)

    celery_call(redis_url, APPLY_TASK, UPDATES_QUEUE)
    assert depths(client) == {UPDATES_QUEUE: 1, SIDE_EFFECTS_QUEUE: 0}

    celery_call(redis_url, AWARD_TASK, SIDE_EFFECTS_QUEUE)
    assert depths(client) == {UPDATES_QUEUE: 1, SIDE_EFFECTS_QUEUE: 1}


def test_the_binding_of_earlier_releases_is_dropped_and_routing_is_single_again(redis_url):
    declare_queues_as_a_worker_does(redis_url)
    client = redis.Redis.from_url(redis_url)
    # What releases before each queue had its own key left: the side-effects queue bound under
    # `customer_updates`, in kombu's own member format (routing key, pattern, queue).
    from kombu.transport.redis import Channel

    stale = Channel.sep.join([UPDATES_QUEUE, "", SIDE_EFFECTS_QUEUE])
    client.sadd(f"_kombu.binding.{EXCHANGE.name}", stale)
    client.sadd(f"_kombu.binding_permanent.{EXCHANGE.name}", stale)
    celery_call(redis_url, APPLY_TASK, UPDATES_QUEUE)
    assert depths(client) == {UPDATES_QUEUE: 1, SIDE_EFFECTS_QUEUE: 1}  # the duplicate of the issue

    assert drop_stale_bindings(client) == 2
    assert drop_stale_bindings(client) == 0
    celery_call(redis_url, APPLY_TASK, UPDATES_QUEUE)
    assert depths(client) == {UPDATES_QUEUE: 2, SIDE_EFFECTS_QUEUE: 1}
