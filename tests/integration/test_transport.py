"""The worker's Redis transport (customer_updates/transport.py) against a real Redis."""

from __future__ import annotations

from typing import Any

import redis as redis_lib
from kombu import Connection, Exchange, Queue

from customer_updates.transport import acknowledge_all

QUEUE = Queue("cu_transport_test", Exchange("cu_transport_test"), routing_key="cu_transport_test")


class _Request:
    """What acknowledge_all needs of a Celery request."""

    def __init__(self, message: Any) -> None:
        self.message = message
        self.acknowledged = False
        self.one_by_one = 0

    def acknowledge(self) -> None:
        if not self.acknowledged:
            self.one_by_one += 1
            self.message.ack()
            self.acknowledged = True


def _publish(connection: Connection, count: int) -> None:
    with connection.Producer() as producer:
        for number in range(count):
            producer.publish({"n": number}, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key,
                             declare=[QUEUE], serializer="json")


def _receive(connection: Connection, count: int) -> list[Any]:
    received: list[Any] = []
    with connection.Consumer(QUEUE, callbacks=[lambda body, message: received.append(message)],
                             accept=["json"]) as consumer:
        consumer.qos(prefetch_count=count)
        while len(received) < count:
            connection.drain_events(timeout=5)
    return received


def test_a_batch_is_acknowledged_in_one_go_and_nothing_is_left_unacked(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with Connection(redis_url, transport="customer_updates.transport:Transport") as connection:
        _publish(connection, 20)
        messages = _receive(connection, 20)
        assert client.hlen("unacked") == 20  # kombu's record of what a worker holds
        requests = [_Request(m) for m in messages]
        acknowledge_all(requests)
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
        assert all(r.acknowledged and r.message.acknowledged and r.one_by_one == 0 for r in requests)
        acknowledge_all(requests)  # twice is harmless
    # Closing the connection restores what it still held: nothing comes back to the queue.
    assert client.llen(QUEUE.name) == 0 and client.hlen("unacked") == 0


def test_unacknowledged_messages_of_a_closed_channel_come_back(redis_url):
    with Connection(redis_url, transport="customer_updates.transport:Transport") as connection:
        _publish(connection, 3)
        messages = _receive(connection, 3)
        acknowledge_all([_Request(messages[0])])
    # The connection closed holding two: kombu restores them to the queue, as with its own transport.
    with Connection(redis_url, transport="customer_updates.transport:Transport") as connection:
        again = _receive(connection, 2)
        assert sorted(m.payload["n"] for m in again) == [1, 2]
        acknowledge_all([_Request(m) for m in again])
