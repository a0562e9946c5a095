"""The producer library (DESIGN §3): enqueue update commands, read their results.

Needs only `REDIS_URL`: results are read from Redis keys the worker writes, not from Celery's result
backend and not from the database.

Sends go through a coalescing buffer (messaging/coalescing.py): by default a call returns once Redis holds
its commands, and calls made at the same time from several threads share one round trip; `durable=False`
(or `Producer.buffered()`) returns at once and sends within `producer_linger_ms`, `flush()` waiting for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

import redis

from customer_updates.messaging import outgoing
from customer_updates.messaging.coalescing import Coalescer, Submission, send_now
from customer_updates.messaging.outgoing import Outgoing
from customer_updates.messaging.outgoing import items_of as items_of
from customer_updates.messaging.outgoing import refuse_unusable as refuse_unusable
from customer_updates.messaging.results import read_batch_response, read_result, wait_for
from customer_updates.models.commands import UserContext, payload_hash
from customer_updates.models.v11 import checked_batch, checked_item
from customer_updates.settings import Settings, get_settings


@dataclass
class BatchReceipt:
    batch_id: str
    request_ids: list[str] = field(default_factory=list)


class ProducerBase:
    """What `Producer` and `AsyncProducer` share: settings, the Celery app they send with, the sync Redis
    client their reads use, and the payload hashes of the request ids they sent."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._redis: redis.Redis | None = None
        self._celery: Any = None
        # The payload hash of each request id this producer sent, so that its reads can tell a 409 (the id's
        # stored result belongs to another payload) from its own result. Bounded: oldest forgotten first.
        self._sent: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Self:
        return cls(get_settings())

    @property
    def celery(self) -> Any:
        """A Celery app of our own settings, used only to send (connects on first send)."""
        if self._celery is None:
            from customer_updates.messaging.broker import producer_app

            self._celery = producer_app(self.settings)
        return self._celery

    @property
    def redis(self) -> redis.Redis:
        """A sync client for reads (the async producer runs them in worker threads)."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.redis_url)
        return self._redis

    def _remember(self, sent: list[tuple[int, str, str]]) -> None:
        limit = max(0, self.settings.producer_remembered_hashes)
        with self._lock:
            for org_id, request_id, digest in sent[-limit:] if limit else ():
                self._sent[(org_id, request_id)] = digest
            while len(self._sent) > limit:
                del self._sent[next(iter(self._sent))]


class Producer(ProducerBase):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._buffer: Coalescer | None = None
        self._push: Any = None
        self._broker: redis.Redis | None = None

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(self, org_id: int, customer: Any, request_id: str | None, issued_at: datetime | None,
                 user_context: dict[str, Any] | UserContext | None, batch_id: str | None = None,
                 position: int | None = None) -> dict[str, Any]:
        wire = outgoing.command(org_id, customer, request_id, issued_at, user_context, batch_id, position)
        refuse_unusable(customer)
        return wire

    def enqueue_update(self, org_id: int, customer: Any, *, request_id: str | None = None,
                       issued_at: datetime | None = None,
                       user_context: dict[str, Any] | UserContext | None = None, durable: bool = True) -> str:
        """One command. Returns once Redis holds it; with `durable=False` at once (see `flush`)."""
        out = outgoing.update(org_id, customer, request_id, issued_at, user_context)
        self._send(out, durable)
        return str(out.commands[0]["request_id"])

    def enqueue_merge(self, org_id: int, survivor_id: int, victim_id: int, *, request_id: str | None = None,
                      issued_at: datetime | None = None,
                      user_context: dict[str, Any] | UserContext | None = None) -> str:
        """A merge request (SPEC §4): merge `victim_id` into `survivor_id`, members included."""
        out = outgoing.merge_kind(org_id, "merge", {"survivor_id": survivor_id, "victim_id": victim_id},
                                  request_id, issued_at, user_context)
        self._send(out, True)
        return str(out.commands[0]["request_id"])

    def enqueue_unmerge(self, org_id: int, victim_id: int, *, request_id: str | None = None,
                        issued_at: datetime | None = None,
                        user_context: dict[str, Any] | UserContext | None = None) -> str:
        """Undo the latest merge of `victim_id` (SPEC §4)."""
        out = outgoing.merge_kind(org_id, "unmerge", {"victim_id": victim_id}, request_id, issued_at, user_context)
        self._send(out, True)
        return str(out.commands[0]["request_id"])

    def enqueue_batch(self, org_id: int, body: Any, *, request_ids: list[str] | None = None,
                      issued_at: datetime | None = None, user_context: dict[str, Any] | UserContext | None = None,
                      batch_id: str | None = None) -> BatchReceipt:
        batch_id, out = outgoing.batch(org_id, body, request_ids, issued_at, user_context, batch_id)
        self._send(out, True)
        return BatchReceipt(batch_id, [c["request_id"] for c in out.commands])

    def flush(self) -> None:
        """Wait until every command sent so far is on Redis; raise EnqueueFailed naming buffered ones that
        could not be sent (none of those was enqueued)."""
        if self._buffer is not None:
            self._buffer.flush()

    @contextmanager
    def buffered(self) -> Iterator[Buffered]:
        """`with producer.buffered() as p: p.enqueue_update(...)`: calls return at once; leaving the block
        flushes (and raises EnqueueFailed if any of them could not be sent)."""
        yield Buffered(self)
        self.flush()

    def _send(self, out: Outgoing, durable: bool) -> None:
        if self._buffer is None:
            with self._lock:
                if self._buffer is None:
                    self._buffer = Coalescer(self._flush_now, self.settings.producer_linger_ms / 1000,
                                             self.settings.producer_buffer_commands)
        submission = self._buffer.submit(Submission(out, durable))
        if durable:
            submission.future.result()
        if out.checks:  # made-up ids cannot be reused by another payload: nothing to remember
            self._remember(out.checks)

    def _flush_now(self, taken: list[Submission]) -> None:
        if self._push is None:
            self._push, on_redis = _pusher(self.celery, self.settings.producer_message_size)
            broker_url = self.settings.celery_broker_url
            # Messages go to the broker's Redis; manifests and 409 checks to REDIS_URL's (often the same).
            self._broker = redis.Redis.from_url(broker_url) if on_redis and broker_url != self.settings.redis_url \
                else None
        send_now(self.redis, self.settings.result_ttl_seconds, taken, self._push, self._broker)

    def get_result(self, org_id: int, request_id: str, timeout: float = 0, *,
                   payload: Any = None) -> dict[str, Any] | None:
        """The v1.1 item of a request id. A 409 item when its stored result was made for another payload
        than `payload` (or than the one this producer sent under that id)."""
        wanted = payload_hash(payload) if payload is not None else self._sent.get((org_id, request_id))
        found = wait_for(
            lambda: read_result(self.redis, org_id, request_id, wanted, payload), timeout)
        return checked_item(found) if found is not None else None

    def get_batch_result(self, org_id: int, batch_id: str, timeout: float = 0) -> dict[str, Any] | None:
        # The batch's manifest holds each item's payload hash: a reused request id reads as its 409.
        found = wait_for(lambda: read_batch_response(self.redis, org_id, batch_id), timeout)
        return checked_batch(found) if found is not None else None

    def close(self) -> None:
        """Send what is buffered and release the connection; a closed producer refuses to send."""
        try:
            if self._buffer is not None:
                self._buffer.close()
        finally:
            if self._redis is not None:
                self._redis.close()
            if self._broker is not None:
                self._broker.close()


class Buffered:
    """A producer whose `enqueue_update` does not wait for Redis (`Producer.buffered()`)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    def enqueue_update(self, org_id: int, customer: Any, *, request_id: str | None = None,
                       issued_at: datetime | None = None,
                       user_context: dict[str, Any] | UserContext | None = None) -> str:
        return self.producer.enqueue_update(org_id, customer, request_id=request_id, issued_at=issued_at,
                                            user_context=user_context, durable=False)

    def flush(self) -> None:
        self.producer.flush()


def _pusher(celery: Any, size: int) -> tuple[Any, bool]:
    """How a flush adds its messages to the pipeline: straight onto the queue's Redis list, or, on
    another broker, through Celery once the pipeline (manifests) has run; and whether the broker is Redis."""
    from customer_updates.messaging.coalescing import messages_of
    from customer_updates.messaging.sending import encode_apply, publish_many, redis_route

    route = redis_route(celery)

    def push(pipe: Any, live: list[Submission]) -> None:
        messages = messages_of(live, size)
        if route is not None:
            route.push(pipe, [encode_apply(celery, m, route) for m in messages])
        else:
            pipe.execute()
            publish_many(messages, celery=celery)

    return push, route is not None
