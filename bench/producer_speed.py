"""Enqueue speed from one process: customer-updates' producer against `task.delay()` per command."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from bench import reference
from customer_updates.producer import Producer
from customer_updates.settings import Settings


def _items(count: int) -> list[dict[str, object]]:
    return [{"mobile": f"9197{i:08d}", "firstname": f"Name{i}",
             "custom_fields": {"field": [{"name": "favourite_drink", "value": "chai"}]}} for i in range(count)]


def main(redis_url: str, commands: int, empty: Callable[[], None]) -> int:
    items = _items(commands)
    rows = []
    for message_size, body_size in ((100, 1000), (100, commands), (1, 1000)):
        producer = Producer(Settings(DATABASE_URL="sqlite://", REDIS_URL=redis_url,
                                     producer_message_size=message_size))
        producer.enqueue_batch(1, {"root": {"customer": items[:10]}})  # connect first
        empty()
        started = time.perf_counter()
        for start in range(0, commands, body_size):
            producer.enqueue_batch(1, {"root": {"customer": items[start:start + body_size]}})
        rate = commands / (time.perf_counter() - started)
        rows.append((f"enqueue_batch, {body_size} items/call, {message_size}/message", rate))
        producer.close()
        empty()
    producer = Producer(Settings(DATABASE_URL="sqlite://", REDIS_URL=redis_url))
    sample = items[: max(1, commands // 4)]
    producer.enqueue_update(1, sample[0])
    started = time.perf_counter()
    for item in sample:
        producer.enqueue_update(1, item)
    rows.append(("enqueue_update per command", len(sample) / (time.perf_counter() - started)))
    empty()
    reference.app.conf.broker_url = redis_url
    reference.update_customer.delay("warm-up", sample[0])
    started = time.perf_counter()
    for item in sample:
        reference.update_customer.delay(uuid.uuid4().hex, item)
    rows.append(("plain task.delay() per command (reference)", len(sample) / (time.perf_counter() - started)))
    reference.app.pool.force_close_all()
    width = max(len(name) for name, _ in rows)
    print(f"| {'producer path'.ljust(width)} | commands/s |\n|{'-' * (width + 2)}|------------|")
    for name, rate in rows:
        print(f"| {name.ljust(width)} | {rate:>10,.0f} |")
    return 0
