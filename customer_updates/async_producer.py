"""The producer library for asyncio services (FastAPI, aiohttp): `Producer`'s API with `async def`.

    async with AsyncProducer.from_env() as producer:
        request_id = await producer.enqueue_update(1, {"mobile": "919800000001", "lastname": "Rao"})
        item = await producer.get_result(1, request_id, timeout=5)

Sends go through the same coalescing rules as `Producer` (redis.asyncio, one flusher task per event loop):
a call returns once Redis holds its commands, and coroutines that enqueue at the same time share one
round trip; `durable=False` (or `buffered()`) returns at once and `flush()` waits for what it sent.
Reads (`get_result`, `get_batch_result`) run the sync readers in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from customer_updates.messaging import outgoing
from customer_updates.messaging.coalescing import Submission, messages_of
from customer_updates.messaging.coalescing_async import AsyncCoalescer, send_async
from customer_updates.messaging.outgoing import Outgoing
from customer_updates.messaging.results import read_batch_response, read_result
from customer_updates.models.commands import UserContext, payload_hash
from customer_updates.models.v11 import checked_batch, checked_item
from customer_updates.producer import BatchReceipt, ProducerBase
from customer_updates.settings import Settings


class AsyncProducer(ProducerBase):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._route: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aioredis.Redis | None = None
        self._broker: aioredis.Redis | None = None  # the broker's Redis when it is not REDIS_URL's
        self._buffer: AsyncCoalescer | None = None
        self._closed = False

    async def __aenter__(self) -> AsyncProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _buffer_here(self) -> AsyncCoalescer:
        loop = asyncio.get_running_loop()
        if self._buffer is None or self._loop is not loop:
            if self._closed:
                from customer_updates.errors import ProducerClosed

                raise ProducerClosed("this producer is closed")
            # A client and a flusher belong to one event loop; a new loop (a test client's) gets its own.
            self._loop = loop
            self._client = aioredis.Redis.from_url(self.settings.redis_url)
            from customer_updates.messaging.broker import is_amqp  # imports Celery: on first use only

            broker_url = self.settings.celery_broker_url
            # On RabbitMQ (one amqp:// URL or a failover list of them) messages go through Celery, not Redis.
            self._broker = aioredis.Redis.from_url(broker_url) \
                if broker_url != self.settings.redis_url and not is_amqp(broker_url) else None
            self._buffer = AsyncCoalescer(self._flush_now, self.settings.producer_linger_ms / 1000,
                                          self.settings.producer_buffer_commands)
        return self._buffer

    async def enqueue_update(self, org_id: int, customer: Any, *, request_id: str | None = None,
                             issued_at: datetime | None = None,
                             user_context: dict[str, Any] | UserContext | None = None, durable: bool = True) -> str:
        out = outgoing.update(org_id, customer, request_id, issued_at, user_context)
        await self._send(out, durable)
        return str(out.commands[0]["request_id"])

    async def enqueue_merge(self, org_id: int, survivor_id: int, victim_id: int, *, request_id: str | None = None,
                            issued_at: datetime | None = None,
                            user_context: dict[str, Any] | UserContext | None = None) -> str:
        out = outgoing.merge_kind(org_id, "merge", {"survivor_id": survivor_id, "victim_id": victim_id},
                                  request_id, issued_at, user_context)
        await self._send(out, True)
        return str(out.commands[0]["request_id"])

    async def enqueue_unmerge(self, org_id: int, victim_id: int, *, request_id: str | None = None,
                              issued_at: datetime | None = None,
                              user_context: dict[str, Any] | UserContext | None = None) -> str:
        out = outgoing.merge_kind(org_id, "unmerge", {"victim_id": victim_id}, request_id, issued_at, user_context)
        await self._send(out, True)
        return str(out.commands[0]["request_id"])

    async def enqueue_batch(self, org_id: int, body: Any, *, request_ids: list[str] | None = None,
                            issued_at: datetime | None = None,
                            user_context: dict[str, Any] | UserContext | None = None,
                            batch_id: str | None = None) -> BatchReceipt:
        batch_id, out = outgoing.batch(org_id, body, request_ids, issued_at, user_context, batch_id)
        await self._send(out, True)
        return BatchReceipt(batch_id, [c["request_id"] for c in out.commands])

    async def flush(self) -> None:
        if self._buffer is not None and self._loop is asyncio.get_running_loop():
            await self._buffer.flush()

    @asynccontextmanager
    async def buffered(self) -> AsyncIterator[AsyncBuffered]:
        yield AsyncBuffered(self)
        await self.flush()

    async def get_result(self, org_id: int, request_id: str, timeout: float = 0, *,
                         payload: Any = None) -> dict[str, Any] | None:
        wanted = payload_hash(payload) if payload is not None else self._sent.get((org_id, request_id))
        found = await _poll(lambda: read_result(self.redis, org_id, request_id, wanted, payload), timeout)
        return checked_item(found) if found is not None else None

    async def get_batch_result(self, org_id: int, batch_id: str, timeout: float = 0) -> dict[str, Any] | None:
        found = await _poll(lambda: read_batch_response(self.redis, org_id, batch_id), timeout)
        return checked_batch(found) if found is not None else None

    async def close(self) -> None:
        """Send what is buffered and release the connections; a closed producer refuses to send."""
        self._closed = True
        try:
            if self._buffer is not None and self._loop is asyncio.get_running_loop():
                await self._buffer.close()
        finally:
            if self._loop is asyncio.get_running_loop():
                for client in (self._client, self._broker):
                    if client is not None:
                        await client.aclose()  # type: ignore[attr-defined]  # redis>=5; stubs older
            if self._redis is not None:
                self._redis.close()

    async def _send(self, out: Outgoing, durable: bool) -> None:
        await self._buffer_here().submit(Submission(out, durable))
        if out.checks:  # made-up ids cannot be reused by another payload: nothing to remember
            self._remember(out.checks)

    async def _flush_now(self, taken: list[Submission]) -> None:
        if self._route is None:
            from customer_updates.messaging.sending import redis_route

            # kombu's Redis channel names the event topics; asked once, in a thread (it connects).
            self._route = (await asyncio.to_thread(redis_route, self.celery),)
        assert self._client is not None
        # Messages go to the broker's Redis; manifests and 409 checks to REDIS_URL's (often the same).
        broker = self._broker if self._route[0] is not None else None
        await send_async(self._client, self.settings.result_ttl_seconds, taken, self._push, broker)

    async def _push(self, pipe: Any, live: list[Submission]) -> None:
        from customer_updates.messaging.sending import encode_apply, publish_many

        route = self._route[0]
        messages = messages_of(live, self.settings.producer_message_size)
        if route is not None:
            route.push(pipe, [encode_apply(self.celery, m, route) for m in messages])
            await pipe.execute()
        else:  # another broker: the manifests first, then Celery's own sending in a thread
            await pipe.execute()
            await asyncio.to_thread(publish_many, messages, celery=self.celery)


class AsyncBuffered:
    """An async producer whose `enqueue_update` does not wait for Redis (`AsyncProducer.buffered()`)."""

    def __init__(self, producer: AsyncProducer) -> None:
        self.producer = producer

    async def enqueue_update(self, org_id: int, customer: Any, *, request_id: str | None = None,
                             issued_at: datetime | None = None,
                             user_context: dict[str, Any] | UserContext | None = None) -> str:
        return await self.producer.enqueue_update(org_id, customer, request_id=request_id, issued_at=issued_at,
                                                  user_context=user_context, durable=False)

    async def flush(self) -> None:
        await self.producer.flush()


async def _poll(read: Any, timeout: float, interval: float = 0.02) -> Any:
    """Like results.wait_for, without blocking the event loop: each look runs in a worker thread."""
    deadline = asyncio.get_running_loop().time() + max(timeout, 0)
    while True:
        value = await asyncio.to_thread(read)
        now = asyncio.get_running_loop().time()
        if value is not None or now >= deadline:
            return value
        await asyncio.sleep(min(interval, max(0.0, deadline - now)))
        interval = min(interval * 1.5, 0.25)
