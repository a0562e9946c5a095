"""The worker's Redis transport (customer_updates/worker/transport.py) against a real Redis."""

from __future__ import annotations

from typing import Any

import redis as redis_lib
from kombu import Connection, Exchange, Queue
from kombu.utils.json import loads

from customer_updates.worker.transport import acknowledge_all

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


def _receive(connection: Connection, count: int, prefetch: int | None = None) -> list[Any]:
    received: list[Any] = []
    with connection.Consumer(QUEUE, callbacks=[lambda body, message: received.append(message)],
                             accept=["json"]) as consumer:
        consumer.qos(prefetch_count=prefetch or count)
        while len(received) < count:
            connection.drain_events(timeout=5)
    return received


def _fetching(redis_url: str, batch: int) -> Connection:
    return Connection(redis_url, transport="customer_updates.worker.transport:Transport",
                      transport_options={"fetch_batch": batch})


def test_a_batch_is_acknowledged_in_one_go_and_nothing_is_left_unacked(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with Connection(redis_url, transport="customer_updates.worker.transport:Transport") as connection:
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
    with Connection(redis_url, transport="customer_updates.worker.transport:Transport") as connection:
        _publish(connection, 3)
        messages = _receive(connection, 3)
        acknowledge_all([_Request(messages[0])])
    # The connection closed holding two: kombu restores them to the queue, as with its own transport.
    with Connection(redis_url, transport="customer_updates.worker.transport:Transport") as connection:
        again = _receive(connection, 2)
        assert sorted(m.payload["n"] for m in again) == [1, 2]
        acknowledge_all([_Request(m) for m in again])


def test_several_messages_come_in_one_round_trip_each_recorded_as_kombu_records_it(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with _fetching(redis_url, 10) as connection:
        _publish(connection, 25)
        channel = connection.default_channel
        received: list[Any] = []
        with connection.Consumer(QUEUE, callbacks=[lambda body, message: received.append(message)],
                                 accept=["json"]) as consumer:
            consumer.qos(prefetch_count=100)
            connection.drain_events(timeout=5)  # one BRPOP reply
            assert len(received) == 10
            while len(received) < 25:
                connection.drain_events(timeout=5)
        assert [m.payload["n"] for m in received] == list(range(25))  # the queue's order
        assert client.hlen("unacked") == 25 and client.zcard("unacked_index") == 25
        for message in received:
            payload, exchange, routing_key = loads(client.hget("unacked", message.delivery_tag))
            assert payload == message._raw
            assert (exchange, routing_key) == (message.delivery_info["exchange"],
                                               message.delivery_info["routing_key"])
        assert len(channel.qos._delivered) == 25  # kombu's in-memory record, for restore at shutdown
        acknowledge_all([_Request(m) for m in received])
    assert client.hlen("unacked") == 0 and client.llen(QUEUE.name) == 0


def test_no_more_messages_are_taken_than_the_prefetch_count_allows(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with _fetching(redis_url, 50) as connection:
        _publish(connection, 20)
        messages = _receive(connection, 5, prefetch=5)
        assert len(messages) == 5
        assert client.llen(QUEUE.name) == 15 and client.hlen("unacked") == 5
        acknowledge_all([_Request(m) for m in messages])


def test_messages_taken_together_and_not_acknowledged_come_back_when_the_channel_closes(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with _fetching(redis_url, 10) as connection:
        _publish(connection, 10)
        messages = _receive(connection, 10)
        acknowledge_all([_Request(m) for m in messages[:4]])
    assert client.llen(QUEUE.name) == 6 and client.hlen("unacked") == 0
    with _fetching(redis_url, 10) as connection:
        again = _receive(connection, 6)
        assert sorted(m.payload["n"] for m in again) == [4, 5, 6, 7, 8, 9]
        acknowledge_all([_Request(m) for m in again])


def test_an_entry_that_is_not_a_message_stops_the_taking_and_stays_in_the_queue(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with _fetching(redis_url, 10) as connection:
        _publish(connection, 2)
        client.lpush(QUEUE.name, b"not a message")  # lpush: taken after the two messages
        _publish(connection, 2)
        messages = _receive(connection, 2, prefetch=10)
        # The two published first came with one reply; the foreign entry went back to the queue's end.
        assert [m.payload["n"] for m in messages] == [0, 1]
        assert client.lrange(QUEUE.name, -1, -1) == [b"not a message"] and client.llen(QUEUE.name) == 3
        assert client.hlen("unacked") == 2
        acknowledge_all([_Request(m) for m in messages])


def test_with_a_global_key_prefix_messages_come_one_at_a_time_under_the_prefixed_keys(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with Connection(redis_url, transport="customer_updates.worker.transport:Transport",
                    transport_options={"fetch_batch": 10, "global_keyprefix": "cu_test:"}) as connection:
        _publish(connection, 5)
        messages = _receive(connection, 5)
        assert sorted(m.payload["n"] for m in messages) == [0, 1, 2, 3, 4]
        assert client.hlen("cu_test:unacked") == 5 and client.hlen("unacked") == 0
        acknowledge_all([_Request(m) for m in messages])
        assert client.hlen("cu_test:unacked") == 0
