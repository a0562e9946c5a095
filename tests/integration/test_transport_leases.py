"""Leases (customer_updates/worker/leases.py) and what the transport tells the batcher, against a real Redis."""

from __future__ import annotations

import time
from typing import Any

import redis as redis_lib
from kombu import Connection, Consumer, Exchange, Queue
from kombu.asynchronous import Hub

from customer_updates.worker import leases

QUEUE = Queue("cu_lease_test", Exchange("cu_lease_test"), routing_key="cu_lease_test")
TRANSPORT = "customer_updates.worker.transport:Transport"
VISIBILITY = 2.0


def _publish(redis_url: str, count: int) -> None:
    with Connection(redis_url) as connection, connection.Producer() as producer:
        for number in range(count):
            producer.publish({"n": number}, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key,
                             declare=[QUEUE], serializer="json")


def _holding_worker(redis_url: str, transport: str | None, held: list[Any]) -> tuple[Connection, Hub, Consumer]:
    """A consumer on an event loop, as a worker's, that takes messages and acknowledges none."""
    connection = Connection(redis_url, transport=transport,
                            transport_options={"visibility_timeout": VISIBILITY, "fetch_batch": 16})
    hub = Hub()
    connection.transport.register_with_event_loop(connection.connection, hub)
    consumer = Consumer(connection.default_channel, [QUEUE], accept=["json"],
                        callbacks=[lambda body, message: held.append(message)])
    consumer.qos(prefetch_count=100)
    consumer.consume()
    return connection, hub, consumer


def _run(hubs: list[Hub], seconds: float, sweeper: Any) -> None:
    """Turn the holder's event loop while another worker sweeps for expired leases twice a second."""
    loops = [hub.create_loop() for hub in hubs]
    deadline, next_sweep = time.monotonic() + seconds, 0.0
    while time.monotonic() < deadline:
        for loop in loops:
            next(loop)
        if time.monotonic() >= next_sweep:
            sweeper.restore_visible(num=None, interval=1)
            next_sweep = time.monotonic() + 0.5
        time.sleep(0.01)


def _messages_restored_while_held(redis_url: str, transport: str | None) -> int:
    """How many of 10 messages a live worker holds were handed back (queued again or delivered again)."""
    _publish(redis_url, 10)
    held: list[Any] = []
    holder, hub, consumer = _holding_worker(redis_url, transport, held)
    other = Connection(redis_url, transport=TRANSPORT, transport_options={"visibility_timeout": VISIBILITY})
    try:
        _run([hub], 3 * VISIBILITY, other.default_channel.qos)
        client = redis_lib.Redis.from_url(redis_url)
        restored = int(client.llen(QUEUE.name)) + len(held) - 10
        client.close()
        return restored
    finally:
        consumer.cancel()
        hub.close()
        other.release()
        holder.release()


def test_a_live_worker_keeps_the_messages_it_holds_past_the_visibility_timeout(redis_url):
    assert _messages_restored_while_held(redis_url, TRANSPORT) == 0, "a live worker's messages were handed back"


def test_without_renewal_the_same_messages_are_handed_back_after_the_visibility_timeout(redis_url):
    """The control of the test above: kombu's own transport does not renew, the sweep restores them."""
    assert _messages_restored_while_held(redis_url, None) >= 10


def test_renewal_rescores_only_the_records_of_what_the_channel_still_holds(redis_url):
    _publish(redis_url, 3)
    client = redis_lib.Redis.from_url(redis_url)
    with Connection(redis_url, transport=TRANSPORT) as connection:
        received: list[Any] = []
        with connection.Consumer(QUEUE, callbacks=[lambda body, message: received.append(message)],
                                 accept=["json"]):
            while len(received) < 3:
                connection.drain_events(timeout=5)
            received[0].ack()
            qos = connection.default_channel.qos
            client.zadd("unacked_index", {"someone-else": 1.0})

            assert leases.renew(qos, now=12345.0) == 2
            scores = dict(client.zrange("unacked_index", 0, -1, withscores=True))
            assert {tag.decode(): score for tag, score in scores.items()} == {
                received[1].delivery_tag: 12345.0, received[2].delivery_tag: 12345.0, "someone-else": 1.0}
            # A record restored or acknowledged elsewhere is not created again.
            client.zrem("unacked_index", received[1].delivery_tag)
            leases.renew(qos, now=23456.0)
            assert client.zscore("unacked_index", received[1].delivery_tag) is None
            for message in received[1:]:
                message.ack()
    client.close()


def test_the_transport_tells_how_many_messages_of_a_reply_it_has_not_delivered_yet(redis_url):
    _publish(redis_url, 3)
    seen: list[int] = []
    with Connection(redis_url, transport=TRANSPORT, transport_options={"fetch_batch": 16}) as connection:
        channel = connection.default_channel

        def on_message(body: Any, message: Any) -> None:
            seen.append(channel.messages_in_hand)
            message.ack()

        with Consumer(channel, [QUEUE], accept=["json"], callbacks=[on_message]):
            while len(seen) < 3:
                connection.drain_events(timeout=5)
        assert seen == [2, 1, 0] and channel.messages_in_hand == 0
