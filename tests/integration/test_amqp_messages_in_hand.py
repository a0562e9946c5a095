"""On RabbitMQ the batcher learns from py-amqp's connection whether a further message has arrived (real broker)."""

from __future__ import annotations

import socket
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue

from customer_updates.worker.amqp_delivery import amqp_messages_in_hand
from tests.polling import wait_until


# kombu's own py-amqp transport (producers, Flower) and the worker's, which reads ahead into the buffer.
@pytest.mark.parametrize("transport", [None, "customer_updates.worker.amqp_transport:Transport"],
                         ids=["kombu", "worker"])
def test_a_message_pushed_by_rabbitmq_and_not_yet_delivered_counts_as_in_hand(rabbitmq_url: str,
                                                                               transport: str | None):
    queue = Queue(f"in-hand-{uuid.uuid4().hex[:8]}", Exchange("", type="direct"), auto_delete=True)
    delivered: list[Any] = []
    with Connection(rabbitmq_url, transport=transport) as connection:
        channel = connection.channel()
        consumer = Consumer(channel, [queue], callbacks=[lambda body, message: delivered.append(message)])
        consumer.qos(prefetch_count=10)
        consumer.consume()
        assert amqp_messages_in_hand(channel) == 0

        producer = Producer(connection.channel(), routing_key=queue.name)
        producer.publish({"n": 1})
        producer.publish({"n": 2})
        # RabbitMQ pushes both to this consumer. py-amqp mostly delivers one message a drain, but both have been
        # seen delivered after one: whenever a message is still undelivered, it must count as in hand.
        for _ in range(2):
            if len(delivered) == 2:
                break
            assert wait_until(lambda: amqp_messages_in_hand(channel) == 1, 5, interval=0.01), \
                "an undelivered message is in hand"
            connection.drain_events(timeout=5)
        assert len(delivered) == 2
        assert amqp_messages_in_hand(channel) == 0
        for message in delivered:
            message.ack()


def test_bytes_buffered_by_the_connection_or_waiting_in_its_socket_count_as_in_hand():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = SimpleNamespace(sock=ours, _read_buffer=b"")
        channel = SimpleNamespace(connection=SimpleNamespace(transport=transport))
        assert amqp_messages_in_hand(channel) == 0
        theirs.sendall(b"\x01")
        assert wait_until(lambda: amqp_messages_in_hand(channel) == 1, 5, interval=0.01)
        ours.recv(1)
        transport._read_buffer = b"\x01\x00"
        assert amqp_messages_in_hand(channel) == 1


def test_a_channel_of_another_transport_cannot_tell():
    assert amqp_messages_in_hand(SimpleNamespace(connection=None)) is None
    assert amqp_messages_in_hand(None) is None
