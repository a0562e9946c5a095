"""A RabbitMQ cluster as the broker: CUSTOMER_UPDATES_BROKER_URL lists its nodes' URLs separated by ';'."""

from __future__ import annotations

import asyncio

from customer_updates.async_producer import AsyncProducer
from customer_updates.cli.settings_view import rows
from customer_updates.messaging.broker import is_amqp, producer_app, shared_config, transport_options
from customer_updates.settings import Settings
from customer_updates.worker.consumer import DELAYED_DELIVERY_STEP, DeadLetteringConsumer

NODES = ["amqp://app:pw-one@rabbit-1:5672/cu", "amqp://app:pw-two@rabbit-2:5672/cu",
         "amqp://app:pw-three@rabbit-3:5672/cu"]
FAILOVER = ";".join(NODES)


def _settings() -> Settings:
    return Settings(REDIS_URL="redis://127.0.0.1:6379/15", broker_url=FAILOVER)


def test_a_failover_list_of_amqp_urls_is_rabbitmq_with_quorum_queues_and_publisher_confirms():
    settings = _settings()
    assert is_amqp(settings.celery_broker_url)
    assert all(q.queue_arguments["x-queue-type"] == "quorum" for q in shared_config(settings)["task_queues"])
    assert transport_options(settings) == {"confirm_publish": True}


def test_the_producers_connection_fails_over_through_every_node_in_order():
    app = producer_app(_settings())
    try:
        connection = app.connection_for_write()  # made, not connected
        assert connection.alt == NODES
        assert (connection.hostname, connection.virtual_host) == ("rabbit-1", "cu")
    finally:
        app.close()


def test_the_settings_command_masks_the_password_of_every_url_in_the_list():
    shown = next(row["value"] for row in rows(_settings()) if row["setting"] == "broker_url")
    assert shown == ";".join(url.replace(url.split(":")[2].split("@")[0], "****") for url in NODES)
    assert "pw-" not in shown


def test_an_async_producer_on_rabbitmq_opens_no_redis_client_for_the_broker():
    async def buffer_clients() -> tuple[object, object]:
        producer = AsyncProducer(_settings())
        producer._buffer_here()
        clients = (producer._client, producer._broker)
        await producer.close()
        return clients

    client, broker = asyncio.run(buffer_clients())
    assert client is not None and broker is None


def test_workers_leave_out_celerys_delayed_delivery_step_which_retries_a_dead_node_of_the_list():
    from celery.worker.consumer import Consumer

    assert DELAYED_DELIVERY_STEP in Consumer.Blueprint.default_steps  # else the name changed upstream
    steps = DeadLetteringConsumer.Blueprint.default_steps
    assert DELAYED_DELIVERY_STEP not in steps
    assert len(steps) == len(Consumer.Blueprint.default_steps) - 1
