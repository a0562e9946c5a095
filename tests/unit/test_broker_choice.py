"""CUSTOMER_UPDATES_BROKER_URL: Redis by default, RabbitMQ quorum queues with a dead-letter exchange on amqp://."""

from __future__ import annotations

import json
from types import SimpleNamespace

from customer_updates.messaging.broker import DeadLetteredQueue, producer_app, shared_config
from customer_updates.messaging.names import DEAD_LETTER_EXCHANGE, SIDE_EFFECTS_QUEUE, UPDATES_QUEUE
from customer_updates.settings import Settings
from customer_updates.worker.amqp_dead_letters import death_of, stored_form
from customer_updates.worker.celery_app import celery_config, make_app

AMQP = "amqp://guest:guest@127.0.0.1:5672/cu"


def test_the_broker_is_redis_url_unless_broker_url_names_another():
    assert Settings(REDIS_URL="redis://r:6379/2").celery_broker_url == "redis://r:6379/2"
    config = shared_config(Settings(REDIS_URL="redis://r:6379/2"))
    assert config["broker_url"] == "redis://r:6379/2"
    assert config["broker_transport_options"] == {}
    assert all(not q.queue_arguments for q in config["task_queues"])
    assert producer_app(Settings(REDIS_URL="redis://r:6379/2", broker_url=AMQP)).conf.broker_url == AMQP


def test_on_rabbitmq_both_queues_are_durable_quorum_queues_that_dead_letter_to_our_exchange():
    settings = Settings(REDIS_URL="redis://r:6379/2", broker_url=AMQP, amqp_delivery_limit=7)
    config = shared_config(settings)
    queues = {q.name: q for q in config["task_queues"]}
    assert set(queues) == {UPDATES_QUEUE, SIDE_EFFECTS_QUEUE}
    assert all(isinstance(queue, DeadLetteredQueue) for queue in queues.values())
    for queue in queues.values():
        assert queue.durable
        assert queue.routing_key == queue.name
        assert queue.queue_arguments == {"x-queue-type": "quorum", "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                                         "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
                                         "x-delivery-limit": 7}
    assert config["broker_transport_options"] == {"confirm_publish": True}


def test_a_rabbitmq_worker_keeps_publisher_confirms_and_drains_the_dead_letter_queue():
    settings = Settings(REDIS_URL="redis://r:6379/2", broker_url=AMQP)
    assert celery_config(settings)["broker_transport_options"]["confirm_publish"] is True
    steps = {step.__name__ for step in make_app(settings).steps["consumer"]}
    assert "DeadLetterDrain" in steps
    redis_steps = {step.__name__ for step in make_app(Settings(REDIS_URL="redis://r:6379/2")).steps["consumer"]}
    assert "DeadLetterDrain" not in redis_steps


def test_rabbitmqs_reason_and_queue_are_read_from_the_death_headers():
    headers = {"x-first-death-reason": "delivery_limit", "x-death": [{"reason": "delivery_limit",
                                                                      "queue": UPDATES_QUEUE, "count": 1}]}
    assert death_of(headers) == ("delivery_limit", UPDATES_QUEUE, 0)
    assert death_of(None) == ("unknown", "unknown", 0)


def test_a_dead_lettered_task_message_is_stored_as_its_commands_and_anything_else_raw():
    commands = [{"org_id": 1, "request_id": "r1", "customer": {"mobile": "919800000001"}}]
    task = _message(json.dumps([[], {"commands": commands}, {}]).encode())
    assert stored_form(task) == {"commands": commands}
    other = stored_form(_message(b'{"hello": "world"}'))
    assert other["body"] == '{"hello": "world"}' and other["routing_key"] == UPDATES_QUEUE


def _message(body: bytes) -> SimpleNamespace:
    return SimpleNamespace(body=body, headers={}, content_type="application/json", content_encoding="utf-8",
                           delivery_info={"routing_key": UPDATES_QUEUE}, decode=lambda: json.loads(body))
