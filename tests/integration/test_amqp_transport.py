"""The worker's buffered py-amqp transport against a real RabbitMQ: every message arrives whole and in order.
That what it read ahead counts as in hand for the batcher: test_amqp_messages_in_hand.py."""

from __future__ import annotations

import uuid
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from customer_updates.worker.amqp_transport import READ_SIZE, BufferedTCPTransport
from tests.polling import wait_until

TRANSPORT = "customer_updates.worker.amqp_transport:Transport"


def test_messages_small_and_larger_than_a_read_arrive_whole_and_in_order(rabbitmq_url: str):
    queue = Queue(f"buffered-{uuid.uuid4().hex[:8]}", Exchange("", type="direct"), auto_delete=True)
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

