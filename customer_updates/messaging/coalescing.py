"""The producer's coalescing buffer: what many calls send goes to Redis in one round trip.

A background thread takes everything submitted since its last flush and sends it in one pipeline: the
409 check of caller-given request ids (one MGET), then the batch manifests and the messages, cut into
messages of `producer_message_size` commands whoever sent them. A durable submission (the default) is
flushed at once and its caller waits until that flush has completed, so many threads that enqueue
together share one round trip and no call returns before Redis holds its commands. A buffered submission
returns at once; it waits at most `producer_linger_ms` (or until `producer_buffer_commands` are held)
and its failure is raised by the next `flush()` or `close()`. A crash loses at most the buffered commands
held then: never more than `producer_buffer_commands`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import redis

from customer_updates.errors import CustomerUpdatesError, EnqueueFailed, ProducerClosed, RequestIdConflict
from customer_updates.messaging.outgoing import Outgoing
from customer_updates.messaging.results import result_key

log = logging.getLogger(__name__)



@dataclass(eq=False)
class Submission:
    """One producer call's commands on their way to Redis."""

    outgoing: Outgoing
    durable: bool
    future: Any = None  # resolved when its flush completes: a concurrent.futures or an asyncio Future
    error: BaseException | None = None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.outgoing.commands)


def conflict_keys(taken: list[Submission]) -> list[str]:
    return [result_key(org, rid) for s in taken for org, rid, _ in s.outgoing.checks]


def refuse_conflicts(taken: list[Submission], raws: list[Any]) -> list[Submission]:
    """Mark the submissions a stored result of another payload refuses (SPEC §6 409); the others."""
    found = iter(raws)
    live = []
    for s in taken:
        conflicts = []
        for _, rid, mine in s.outgoing.checks:
            raw = next(found)
            if raw and json.loads(raw)["hash"] != mine:
                conflicts.append(rid)
        if conflicts:
            s.error = RequestIdConflict(s.outgoing.checks[0][0], conflicts)
        else:
            live.append(s)
    return live


def messages_of(taken: list[Submission], size: int) -> list[list[dict[str, Any]]]:
    """The commands of all the submissions in order, cut into messages of at most `size` commands."""
    size = max(1, size)
    messages: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for s in taken:
        for c in s.outgoing.commands:
            current.append(c)
            if len(current) == size:
                messages.append(current)
                current = []
    if current:
        messages.append(current)
    return messages


def failed(taken: list[Submission]) -> EnqueueFailed | None:
    lost = [s for s in taken if s.error is not None and not s.durable]
    if not lost:
        return None
    return EnqueueFailed([c["request_id"] for s in lost for c in s.outgoing.commands], [s.error for s in lost
                                                                                       if s.error is not None])


def settle(taken: list[Submission]) -> EnqueueFailed | None:
    """Hand each caller of a flush its outcome; return (and log) the buffered commands it lost, which the
    next `flush()` raises."""
    lost = failed(taken)
    if lost is not None:
        log.error("buffered commands not enqueued", extra={"commands": len(lost.request_ids),
                                                           "error": type(lost.errors[0]).__name__})
    for s in taken:
        if s.future is not None and not s.future.done():  # an asyncio caller may have been cancelled
            if s.error is None:
                s.future.set_result(None)
            else:
                s.future.set_exception(s.error)
    return lost


def send_now(client: redis.Redis, ttl: int, taken: list[Submission], push: Callable[[Any, list[Submission]], None],
             broker: redis.Redis | None = None) -> None:
    """One flush: the 409 check (one round trip, only when ids were given), then manifests and messages
    (one pipeline; two when the broker is another Redis than `client`). Sets `error` on what was not sent."""
    keys = conflict_keys(taken)
    try:
        live = refuse_conflicts(taken, client.mget(keys)) if keys else taken
        if live:
            with client.pipeline(transaction=False) as pipe:
                for s in live:
                    if s.outgoing.manifest is not None:
                        pipe.set(*s.outgoing.manifest, ex=ttl)
                if broker is None:
                    push(pipe, live)
                pipe.execute()
            if broker is not None:
                with broker.pipeline(transaction=False) as pipe:
                    push(pipe, live)
                    pipe.execute()
    except Exception as exc:  # handed to each caller whose commands it stopped
        for s in taken:
            s.error = s.error or exc


class Coalescer:
    """The sync buffer: `submit` from any thread, a flusher thread of its own (started on first use)."""

    def __init__(self, send: Callable[[list[Submission]], None], linger_seconds: float, limit: int) -> None:
        self._send = send
        self._linger = max(0.0, linger_seconds)
        self._limit = max(1, limit)
        self._reset()
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: list[Submission] = []
        self._held = 0  # buffered commands pending or in flight
        self._oldest: float | None = None  # when the oldest pending buffered submission came
        self._urgent = False  # a durable submission or a flush() waits
        self._flushing = False  # a flush is under way (in the flusher thread or a caller's)
        self._waiters = 0  # callers waiting in flush() or for room in the buffer
        self._submitted = self._flushed = 0
        self._failures: list[EnqueueFailed] = []
        self._thread: threading.Thread | None = None

    def submit(self, submission: Submission) -> Submission:
        if self._pid != os.getpid():
            self._reset()  # a forked child: the parent's thread and buffer are not ours
        if submission.durable:
            submission.future = Future()
        with self._cond:
            if self._closed:
                raise ProducerClosed("this producer is closed")
            while not submission.durable and self._held and self._held + submission.size > self._limit:
                self._urgent = True
                self._cond.notify_all()
                self._waiters += 1
                self._cond.wait()  # back-pressure: the buffer holds at most `limit` buffered commands
                self._waiters -= 1
                if self._closed:
                    raise ProducerClosed("this producer is closed")
            wake = not self._pending or submission.durable
            self._pending.append(submission)
            self._submitted += 1
            work = None
            if submission.durable:
                self._urgent = True
                if not self._flushing:
                    # No flush under way: this caller sends now, in its own thread (a hand-over to the
                    # flusher thread would cost two thread switches a call); callers that come meanwhile
                    # wait, and the flusher thread sends them together next.
                    work = self._take_now()
            else:
                self._held += submission.size
                self._oldest = self._oldest or time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="customer-updates-producer", daemon=True)
                self._thread.start()
            # Woken only when it has to act: each wake-up is a thread switch that competes for the GIL.
            if work is None and (wake or self._held >= self._limit):
                self._cond.notify_all()
        if work is not None:
            self._complete(*work)
        return submission

    def flush(self) -> None:
        """Wait until everything submitted before this call has been sent (or failed); raise what failed."""
        with self._cond:
            wanted = self._submitted
            self._urgent = True
            self._cond.notify_all()
            while self._flushed < wanted and self._thread is not None:
                self._waiters += 1
                self._cond.wait()
                self._waiters -= 1
            failures, self._failures = self._failures, []
        if failures:
            raise EnqueueFailed([rid for f in failures for rid in f.request_ids],
                                [e for f in failures for e in f.errors]) from failures[0].errors[0]

    def close(self) -> None:
        """Send what is held, stop the thread; later submissions raise ProducerClosed."""
        if self._pid != os.getpid():
            self._reset()
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
                thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join()

    def _take_now(self) -> tuple[list[Submission], int]:
        taken, self._pending = self._pending, []
        self._urgent, self._oldest, self._flushing = False, None, True
        return taken, self._submitted

    def _take(self) -> tuple[list[Submission], int] | None:
        with self._cond:
            while True:
                if self._pending and not self._flushing:
                    if self._urgent or self._closed or self._held >= self._limit:
                        break
                    wait = (self._oldest or 0) + self._linger - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                elif self._closed and not self._pending:
                    return None
                else:
                    self._cond.wait()
            return self._take_now()

    def _run(self) -> None:
        while (work := self._take()) is not None:
            self._complete(*work)

    def _complete(self, taken: list[Submission], upto: int) -> None:
        """Send what was taken, hand each caller its outcome, and let the next flush begin."""
        try:
            self._send(taken)
        except BaseException as exc:  # the flusher thread must outlive any error
            for s in taken:
                s.error = s.error or exc
        lost = settle(taken)
        with self._cond:
            self._held -= sum(s.size for s in taken if not s.durable)
            self._flushed = upto
            self._flushing = False
            if lost is not None:
                self._failures.append(lost)
            if self._pending or self._waiters or self._closed:
                self._cond.notify_all()


def _close_at_exit(ref: weakref.ReferenceType[Coalescer]) -> None:
    # Buffered commands of a producer nobody closed are sent when the interpreter exits normally.
    coalescer = ref()
    if coalescer is not None:
        try:
            coalescer.close()
        except CustomerUpdatesError:
            log.exception("buffered commands not enqueued at exit")
