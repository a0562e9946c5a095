"""The coalescing buffer of the asyncio producer: the rules of messaging/coalescing.py, in one event loop.

A flusher task takes what every coroutine submitted since its last flush and sends it in one pipeline. A
durable submission wakes it at once and its caller awaits that flush; a buffered one waits at most the
linger time or until `limit` buffered commands are held (and further buffered sends wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from customer_updates.messaging.coalescing import (
    EnqueueFailed,
    ProducerClosed,
    Submission,
    conflict_keys,
    refuse_conflicts,
    settle,
)


async def send_async(client: aioredis.Redis, ttl: int, taken: list[Submission],
                     push: Callable[[Any, list[Submission]], Awaitable[None]],
                     broker: aioredis.Redis | None = None) -> None:
    """One flush: the 409 check (one round trip, only when ids were given), then manifests and messages
    (`push` adds the messages to the pipeline and runs it; a second pipeline when the broker is another
    Redis than `client`)."""
    keys = conflict_keys(taken)
    try:
        live = refuse_conflicts(taken, await client.mget(keys)) if keys else taken
        if live:
            async with client.pipeline(transaction=False) as pipe:
                for s in live:
                    if s.outgoing.manifest is not None:
                        pipe.set(*s.outgoing.manifest, ex=ttl)
                if broker is None:
                    await push(pipe, live)
                else:
                    await pipe.execute()
            if broker is not None:
                async with broker.pipeline(transaction=False) as pipe:
                    await push(pipe, live)
    except Exception as exc:  # handed to each caller whose commands it stopped
        for s in taken:
            s.error = s.error or exc


class AsyncCoalescer:
    """Bound to the event loop it was made in (the flusher task and the futures live there)."""

    def __init__(self, send: Callable[[list[Submission]], Awaitable[None]], linger_seconds: float,
                 limit: int) -> None:
        self._send = send
        self._linger = max(0.0, linger_seconds)
        self._limit = max(1, limit)
        self._cond = asyncio.Condition()
        self._pending: list[Submission] = []
        self._held = 0
        self._oldest: float | None = None
        self._urgent = False
        self._submitted = self._flushed = 0
        self._failures: list[EnqueueFailed] = []
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, submission: Submission) -> None:
        """Queue it; a durable submission returns once its flush has completed (raising its error)."""
        loop = asyncio.get_running_loop()
        if submission.durable:
            submission.future = loop.create_future()
        async with self._cond:
            if self._closed:
                raise ProducerClosed("this producer is closed")
            while not submission.durable and self._held and self._held + submission.size > self._limit:
                self._urgent = True
                self._cond.notify_all()
                await self._cond.wait()
                if self._closed:
                    raise ProducerClosed("this producer is closed")
            self._pending.append(submission)
            self._submitted += 1
            if submission.durable:
                self._urgent = True
            else:
                self._held += submission.size
                self._oldest = self._oldest or time.monotonic()
            if self._task is None:
                self._task = loop.create_task(self._run(), name="customer-updates-producer")
            self._cond.notify_all()
        if submission.future is not None:
            await submission.future

    async def flush(self) -> None:
        async with self._cond:
            wanted = self._submitted
            self._urgent = True
            self._cond.notify_all()
            while self._flushed < wanted and self._task is not None:
                await self._cond.wait()
            failures, self._failures = self._failures, []
        if failures:
            raise EnqueueFailed([rid for f in failures for rid in f.request_ids],
                                [e for f in failures for e in f.errors]) from failures[0].errors[0]

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            async with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._task is not None:
                await self._task

    async def _take(self) -> tuple[list[Submission], int] | None:
        async with self._cond:
            while True:
                if self._pending:
                    if self._urgent or self._closed or self._held >= self._limit:
                        break
                    wait = (self._oldest or 0) + self._linger - time.monotonic()
                    if wait <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), wait)
                elif self._closed:
                    return None
                else:
                    await self._cond.wait()
            taken, self._pending = self._pending, []
            self._urgent, self._oldest = False, None
            return taken, self._submitted

    async def _run(self) -> None:
        while (work := await self._take()) is not None:
            taken, upto = work
            try:
                await self._send(taken)
            except Exception as exc:  # the flusher task must outlive any error
                for s in taken:
                    s.error = s.error or exc
            lost = settle(taken)
            async with self._cond:
                self._held -= sum(s.size for s in taken if not s.durable)
                self._flushed = upto
                if lost is not None:
                    self._failures.append(lost)
                self._cond.notify_all()
