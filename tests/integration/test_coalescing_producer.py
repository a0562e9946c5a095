"""The producers' coalescing buffer against a real Redis: what each call is promised, and what it shares."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
import redis

from customer_updates.async_producer import AsyncProducer
from customer_updates.errors import EnqueueFailed, ProducerClosed, RequestIdConflict
from customer_updates.messaging.names import UPDATES_QUEUE
from customer_updates.messaging.results import result_key
from customer_updates.producer import Producer
from customer_updates.settings import Settings

pytestmark = pytest.mark.redis

ITEM = {"mobile": "919800000001", "firstname": "Asha"}


def queued(url: str) -> list[dict[str, Any]]:
    """Every command on the update queue, in the order workers will take them."""
    client = redis.Redis.from_url(url)
    commands = []
    for raw in reversed(client.lrange(UPDATES_QUEUE, 0, -1)):
        envelope = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        commands.extend(kwargs["commands"])
    return commands


def settings(url: str, **extra: Any) -> Settings:
    return Settings(DATABASE_URL="sqlite://", REDIS_URL=url, **extra)


def test_every_command_of_many_threads_reaches_redis_exactly_once(redis_url):
    producer = Producer(settings(redis_url))
    sent: list[str] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        for i in range(60):
            rid = producer.enqueue_update(1, {**ITEM, "lastname": f"T{n}-{i}"}, durable=i % 2 == 0)
            with lock:
                sent.append(rid)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.close()
    counts = Counter(c["request_id"] for c in queued(redis_url))
    assert len(sent) == 360 and set(counts) == set(sent) and set(counts.values()) == {1}


def test_a_durable_send_is_on_redis_when_it_returns(redis_url):
    producer = Producer(settings(redis_url, producer_linger_ms=60_000))
    rid = producer.enqueue_update(1, ITEM)
    assert [c["request_id"] for c in queued(redis_url)] == [rid]
    producer.close()


def test_buffered_sends_wait_for_flush_and_close_drains_the_rest(redis_url):
    producer = Producer(settings(redis_url, producer_linger_ms=60_000))
    with producer.buffered() as buffered:
        first = [buffered.enqueue_update(1, ITEM) for _ in range(5)]
        time.sleep(0.05)
        assert queued(redis_url) == []  # held for the linger time
    assert [c["request_id"] for c in queued(redis_url)] == first  # leaving the block flushed
    later = producer.enqueue_update(1, ITEM, durable=False)
    producer.close()
    assert queued(redis_url)[-1]["request_id"] == later
    with pytest.raises(ProducerClosed):
        producer.enqueue_update(1, ITEM)


def test_a_buffered_send_goes_within_the_linger_time_without_flush(redis_url):
    producer = Producer(settings(redis_url, producer_linger_ms=20))
    rid = producer.enqueue_update(1, ITEM, durable=False)
    deadline = time.monotonic() + 5
    while not queued(redis_url) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [c["request_id"] for c in queued(redis_url)] == [rid]
    producer.close()


def test_the_buffer_holds_at_most_its_limit_of_buffered_commands(redis_url):
    producer = Producer(settings(redis_url, producer_linger_ms=60_000, producer_buffer_commands=10))
    for _ in range(25):
        producer.enqueue_update(1, ITEM, durable=False)
    assert len(queued(redis_url)) >= 20  # two full buffers went without waiting for the linger time
    producer.close()
    assert len(queued(redis_url)) == 25


def test_concurrent_durable_senders_share_round_trips(redis_url, monkeypatch):
    producer = Producer(settings(redis_url))
    flushes = []
    real = producer._flush_now

    def slow_flush(taken: list[Any]) -> None:
        flushes.append(len(taken))
        time.sleep(0.01)  # a slow round trip: what other threads send meanwhile waits for the next one
        real(taken)

    monkeypatch.setattr(producer, "_flush_now", slow_flush)
    threads = [threading.Thread(target=lambda: [producer.enqueue_update(1, ITEM) for _ in range(20)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.close()
    assert sum(flushes) == 160 and len(queued(redis_url)) == 160
    assert len(flushes) < 160 / 2 and max(flushes) > 1


def test_a_conflicting_request_id_fails_only_its_own_caller(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set(result_key(1, "taken-id"), json.dumps({"hash": "another payload", "result": {}}))
    producer = Producer(settings(redis_url))
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def send(rid: str) -> None:
        barrier.wait()
        try:
            producer.enqueue_update(1, ITEM, request_id=rid)
        except RequestIdConflict as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(rid,)) for rid in ("taken-id", "a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.close()
    assert [e.request_ids for e in errors] == [["taken-id"]]  # type: ignore[attr-defined]
    assert sorted(c["request_id"] for c in queued(redis_url)) == ["a", "b", "c"]


def test_a_failed_flush_raises_to_its_durable_caller_and_at_flush_for_buffered_ones(redis_url, monkeypatch):
    producer = Producer(settings(redis_url, producer_linger_ms=60_000))
    producer.enqueue_update(1, ITEM)  # connected
    monkeypatch.setattr(producer, "_push", lambda pipe, live: (_ for _ in ()).throw(redis.ConnectionError("down")))
    lost = [producer.enqueue_update(1, ITEM, durable=False) for _ in range(3)]
    with pytest.raises(redis.ConnectionError):
        producer.enqueue_update(1, ITEM)  # its flush carried the three buffered ones too
    with pytest.raises(EnqueueFailed) as failed:
        producer.flush()
    assert failed.value.request_ids == lost
    producer.flush()  # reported once
    assert len(queued(redis_url)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_producer_shares_flushes_and_puts_each_command_once(redis_url, anyio_backend):
    producer = AsyncProducer(settings(redis_url))
    ids = await asyncio.gather(*(producer.enqueue_update(1, {**ITEM, "lastname": f"L{i}"}) for i in range(200)))
    async with producer.buffered() as buffered:
        ids += [await buffered.enqueue_update(1, ITEM) for _ in range(50)]
    counts = Counter(c["request_id"] for c in queued(redis_url))
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert len(redis.Redis.from_url(redis_url).lrange(UPDATES_QUEUE, 0, -1)) < 250  # messages were shared
    receipt = await producer.enqueue_batch(1, {"root": {"customer": [ITEM, ITEM]}})
    assert redis.Redis.from_url(redis_url).exists(f"cu:batch:1:{receipt.batch_id}")
    await producer.close()
    with pytest.raises(ProducerClosed):
        await producer.enqueue_update(1, ITEM)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_producer_hands_a_conflict_and_a_failed_flush_to_their_callers(redis_url, anyio_backend):
    redis.Redis.from_url(redis_url).set(result_key(1, "taken-id"), json.dumps({"hash": "other", "result": {}}))
    producer = AsyncProducer(settings(redis_url, producer_linger_ms=60_000))
    outcomes = await asyncio.gather(producer.enqueue_update(1, ITEM, request_id="taken-id"),
                                    producer.enqueue_update(1, ITEM, request_id="free-id"), return_exceptions=True)
    assert isinstance(outcomes[0], RequestIdConflict) and outcomes[1] == "free-id"

    async def broken(pipe: Any, live: list[Any]) -> None:
        raise redis.ConnectionError("down")

    producer._push = broken  # type: ignore[method-assign]
    lost = await producer.enqueue_update(1, ITEM, durable=False)
    with pytest.raises(EnqueueFailed) as failed:
        await producer.flush()
    assert failed.value.request_ids == [lost]
    await producer.close()
    assert [c["request_id"] for c in queued(redis_url)] == ["free-id"]
