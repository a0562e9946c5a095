"""Enqueue speed from one process: customer-updates' producers against `task.delay()` per command.

Each row is one phase, read with the machine's load around it (bench/machine.py); the ratio of
`enqueue_update` to `task.delay()` is stated only when both ran under alike loads.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import reference
from bench.machine import Meter, PhaseLoad, incomparable
from customer_updates.async_producer import AsyncProducer
from customer_updates.producer import Producer
from customer_updates.settings import Settings

THREADS = 8  # senders of the shared-round-trip row


def _items(count: int) -> list[dict[str, object]]:
    return [{"mobile": f"9197{i:08d}", "firstname": f"Name{i}",
             "custom_fields": {"field": [{"name": "favourite_drink", "value": "chai"}]}} for i in range(count)]


def _settings(redis_url: str, broker_url: str, **extra: Any) -> Settings:
    return Settings(DATABASE_URL="sqlite://", REDIS_URL=redis_url, broker_url=broker_url, **extra)


def _timed(run: Callable[[], int]) -> tuple[float, PhaseLoad | None]:
    with Meter() as meter:
        started = time.perf_counter()
        count = run()
        rate = count / (time.perf_counter() - started)
    return rate, meter.load


def _threads(producer: Producer, items: list[dict[str, object]]) -> int:
    share = len(items) // THREADS

    def send(part: list[dict[str, object]]) -> None:
        for item in part:
            producer.enqueue_update(1, item)

    threads = [threading.Thread(target=send, args=(items[i * share:(i + 1) * share],)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return share * THREADS


async def _async_rows(redis_url: str, broker_url: str, items: list[dict[str, object]], sample: list[dict[str, object]],
                      empty: Callable[[], None]) -> list[tuple[str, float, PhaseLoad | None]]:
    rows = []
    async with AsyncProducer(_settings(redis_url, broker_url)) as producer:
        await producer.enqueue_update(1, sample[0])  # connect first

        async def buffered() -> None:
            async with producer.buffered() as p:
                for item in items:
                    await p.enqueue_update(1, item)

        async def gathered() -> None:
            await asyncio.gather(*(producer.enqueue_update(1, item) for item in items))

        async def durable() -> None:
            for item in sample:
                await producer.enqueue_update(1, item)

        for name, run, count in (("AsyncProducer.enqueue_update one at a time, buffered (awaited each)", buffered,
                                  len(items)),
                                 ("AsyncProducer.enqueue_update, durable, all at once (gather)", gathered,
                                  len(items)),
                                 ("AsyncProducer.enqueue_update one at a time, durable", durable, len(sample))):
            empty()
            with Meter() as meter:
                started = time.perf_counter()
                await run()
                rate = count / (time.perf_counter() - started)
            rows.append((name, rate, meter.load))
    empty()
    return rows


def main(redis_url: str, commands: int, empty: Callable[[], None], broker_url: str = "") -> int:
    """`broker_url`: empty for Redis (`redis_url` is the broker), or a RabbitMQ vhost's URL."""
    items = _items(commands)
    sample = items[: max(1, commands // 10)]  # the paths bound by a round trip per command
    rows: list[tuple[str, float, PhaseLoad | None]] = []
    for message_size, body_size in ((100, 1000), (100, commands), (1, 1000)):
        producer = Producer(_settings(redis_url, broker_url, producer_message_size=message_size))
        producer.enqueue_batch(1, {"root": {"customer": items[:10]}})  # connect first
        empty()

        def batches(producer: Producer = producer, body_size: int = body_size) -> int:
            for start in range(0, commands, body_size):
                producer.enqueue_batch(1, {"root": {"customer": items[start:start + body_size]}})
            return commands

        rows.append((f"enqueue_batch, {body_size} items/call, {message_size}/message", *_timed(batches)))
        producer.close()
        empty()
    producer = Producer(_settings(redis_url, broker_url))
    producer.enqueue_update(1, sample[0])  # connect first

    def durable() -> int:
        for item in sample:
            producer.enqueue_update(1, item)
        return len(sample)

    def buffered() -> int:
        with producer.buffered() as p:
            for item in items:
                p.enqueue_update(1, item)
        return len(items)

    rows.append(("enqueue_update one at a time, durable (the default)", *_timed(durable)))
    empty()
    rows.append(("enqueue_update one at a time, buffered (Producer.buffered())", *_timed(buffered)))
    empty()
    rows.append((f"enqueue_update, durable, {THREADS} threads sharing the producer",
                 *_timed(lambda: _threads(producer, items))))
    producer.close()
    empty()
    rows.extend(asyncio.run(_async_rows(redis_url, broker_url, items, sample, empty)))
    reference.use_broker(broker_url or redis_url)
    reference.update_customer.delay("warm-up", sample[0])

    def delays() -> int:
        for item in sample:
            reference.update_customer.delay(uuid.uuid4().hex, item)
        return len(sample)

    rows.append(("plain task.delay() per command (reference)", *_timed(delays)))
    reference.app.pool.force_close_all()
    empty()
    print(_table(rows))
    return 0


def _table(rows: list[tuple[str, float, PhaseLoad | None]]) -> str:
    width = max(len(name) for name, _, _ in rows)
    lines = [f"| {'producer path'.ljust(width)} | commands/s | machine during the phase |",
             f"|{'-' * (width + 2)}|------------|--------------------------|"]
    for name, rate, load in rows:
        lines.append(f"| {name.ljust(width)} | {rate:>10,.0f} | {load.shown() if load else '-'} |")
    reference_rate, reference_load = rows[-1][1], rows[-1][2]
    lines.append("")
    for name, rate, load in rows[:-1]:
        if name.startswith(("enqueue_update one at a time", "AsyncProducer.enqueue_update one at a time")):
            why = incomparable(load, reference_load)
            lines.append(f"{name} / task.delay(): "
                         + (f"not stated, {why}" if why else f"{rate / reference_rate:.1f}x"))
    return "\n".join(lines)
