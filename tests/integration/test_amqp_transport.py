"""The worker's buffered py-amqp transport against a real RabbitMQ: every message arrives whole and in order,
and what it has read ahead counts as in hand for the batcher."""

from __future__ import annotations

import uuid
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from customer_updates.worker.amqp_delivery import amqp_messages_in_hand
from customer_updates.worker.amqp_transport import READ_SIZE, BufferedTCPTransport
from tests.polling import wait_until

TRANSPORT = "customer_updates.worker.amqp_transport:Transport"


def _queue() -> Queue:
    return Queue(f"buffered-{uuid.uuid4().hex[:8]}", Exchange("", type="direct"), auto_delete=True)


def test_messages_small_and_larger_than_a_read_arrive_whole_and_in_order(rabbitmq_url: str):
    queue = _queue()
    bodies = [f"{n}:".encode() + b"x" * size for n, size in enumerate([0, 10, 600, 5_000, 3 * READ_SIZE, 40] * 50)]
    received: list[bytes] = []
    with Connection(rabbitmq_url, transport=TRANSPORT) as connection:
        channel = connection.channel()
        assert isinstance(connection.connection.transport, BufferedTCPTransport)

        def on_message(message: Any) -> None:
            received.append(message.body)
            message.ack()

        consumer = Consumer(channel, [queue], on_message=on_message)
        consumer.qos(prefetch_count=200)
        consumer.consume()
        with Connection(rabbitmq_url) as publishing:
            producer = Producer(publishing.channel(), routing_key=queue.name)
            for body in bodies:
                producer.publish(body, content_type="application/octet-stream", content_encoding="binary")

        def drained() -> bool:
            # As kombu's event loop reads: at timeout 0, until the socket has nothing more.
            try:
                while True:
                    connection.drain_events(timeout=0)
            except TimeoutError:
                pass
            return len(received) == len(bodies)

        assert wait_until(drained, 60, interval=0.01), f"{len(received)} of {len(bodies)} messages received"
    assert received == bodies


def test_a_message_read_ahead_and_not_yet_delivered_counts_as_in_hand(rabbitmq_url: str):
    queue = _queue()
    delivered: list[Any] = []
    with Connection(rabbitmq_url, transport=TRANSPORT) as connection:
        channel = connection.channel()
        consumer = Consumer(channel, [queue], callbacks=[lambda body, message: delivered.append(message)])
        consumer.qos(prefetch_count=10)
        consumer.consume()
        assert amqp_messages_in_hand(channel) == 0
        producer = Producer(connection.channel(), routing_key=queue.name)
        for n in range(5):
            producer.publish({"n": n})
        while len(delivered) < 5:
            assert wait_until(lambda: amqp_messages_in_hand(channel) == 1, 5, interval=0.01), \
                "an undelivered message is in hand"
            connection.drain_events(timeout=5)
        assert [message.payload["n"] for message in delivered] == list(range(5))
        assert amqp_messages_in_hand(channel) == 0
        for message in delivered:
            message.ack()
