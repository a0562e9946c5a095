"""Consumer-side batching that keeps batches full: flush only when a pool process is free.

celery-batches flushes its whole buffer on every timer tick. When every pool process is busy, each
tick queued one more pool job made of the few messages that arrived since the last tick; with
`acks_late` few messages arrive (the prefetch window is full of unacknowledged ones), so batches shrank
to a message or two and a transaction's cost was paid per message again. Here a tick while the pool
is busy does nothing (the messages wait in the buffer and the batch grows), and a flush takes at most
`worker_batch_size` commands, so that a batch of large messages is not one long job either.

The prefetch count follows the size of the messages: with `acks_late` a message stays reserved until
its batch is applied, so the main process can fetch the next batch while the pool applies one only if
it may reserve about two batches' worth. One-update messages need a thousand reserved; hundred-update
messages need a hundred, and a thousand of them would hold a hundred thousand commands in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from time import monotonic
from typing import Any, Protocol

from celery.worker.request import Request
from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

from customer_updates.settings import get_settings
from customer_updates.worker.amqp_delivery import amqp_messages_in_hand, reads_from_amqp
from customer_updates.worker.task_events import NoTaskEvents, TaskEvents
from customer_updates.worker.transport import acknowledge_all

log = logging.getLogger("customer_updates.worker.batching")


class BatchObserver(Protocol):
    """What `PacedBatches` tells about each batch it hands to the pool (worker/task_events.py sends events)."""

    def received(self, requests: Collection[Any]) -> None: ...

    def started(self, requests: Collection[Any]) -> None: ...

    def succeeded(self, requests: Collection[Any], result: Any, runtime: float) -> None: ...


def _commands_in(request: Any) -> int:
    try:
        commands = request.kwargs.get("commands")
    except Exception:  # an undecodable body is the handler's business, not the batcher's
        return 1
    return len(commands) if isinstance(commands, list) else 1


def prefetch_for(commands_per_message: float, reserved_commands: int, most: int, least: int) -> int:
    """Messages to reserve so that about `reserved_commands` commands are in hand."""
    wanted = round(reserved_commands / max(1.0, commands_per_message))
    return max(least, min(most, wanted))


def reserved_per_process(reserved_commands: int, processes: int, batch_size: int) -> int:
    """The worker's reservation shared by its pool processes, at least two batches each: the main process
    holds every reserved message, so a reservation per process would grow its memory with the pool."""
    return max(reserved_commands // max(1, processes), 2 * batch_size)


class PacedBatches(Batches):
    """celery-batches' `Batches` that owns the whole way from buffer to pool: pacing (flush only to a free
    pool process, at most `worker_batch_size` commands), the prefetch count, and the hand-over itself
    (slim requests, acknowledgements, the next batch as soon as one returns). Task events are told through
    `BatchObserver`; celery-batches' private `_buffer`, `_pool` and `_do_flush` are listed in worker/hooks.py."""

    _buffer: Any
    _pool: Any

    def __init__(self) -> None:
        super().__init__()
        self._held: list[tuple[Any, int]] = []  # taken from the buffer, left for the next batch (with counts)
        self._consumer: Any = None
        self._message_size: float | None = None  # moving average of commands per message
        self._waiting = 0  # commands in the buffer and held back, as counted on arrival
        self._check_due = False
        self.observer: BatchObserver = NoTaskEvents()

    def Strategy(self, task: Any, app: Any, consumer: Any) -> Any:
        self._consumer = consumer
        hub = getattr(consumer, "hub", None)
        self.observer = TaskEvents(getattr(consumer, "event_dispatcher", None), self,
                                   call_later=getattr(hub, "call_later", None))
        handle = super().Strategy(task, app, consumer)

        def on_message(*args: Any, **kwargs: Any) -> Any:
            returned = handle(*args, **kwargs)
            self.message_buffered()
            return returned

        return on_message

    def message_buffered(self) -> None:
        """A message just went into the buffer: count its commands, and apply what waits without waiting for
        the flush timer when a pool process is free and waiting cannot make the batch better
        (`flush_at_once`). The check runs after the current delivery, not at once: the transport hands
        over up to `worker_fetch_batch` messages in one go, and the first of them alone would make a small
        batch."""
        queued = getattr(self._buffer, "queue", None)
        if queued:
            self._waiting += _commands_in(queued[-1])
        if self._check_due:
            return
        if self._waiting < get_settings().worker_flush_at_commands and not self._transport_tells_in_hand():
            return  # a transport that cannot tell what it still holds: the flush timer gathers a batch
        hub = getattr(self._consumer, "hub", None)
        if hub is None:
            self._flush_if_free()
            return
        self._check_due = True
        hub.call_soon(self._flush_if_free)

    def _flush_if_free(self) -> None:
        self._check_due = False
        if self._pool_busy():
            return  # the transport is asked only for a free pool process: on RabbitMQ asking is a system call
        if flush_at_once(True, self._messages_in_hand(), self._waiting, get_settings().worker_flush_at_commands):
            self._do_flush()

    def _task_channel(self) -> Any:
        return getattr(getattr(self._consumer, "task_consumer", None), "channel", None)

    def _transport_tells_in_hand(self) -> bool:
        """Whether `_messages_in_hand` can be answered, found without I/O."""
        channel = self._task_channel()
        return isinstance(getattr(channel, "messages_in_hand", None), int) or reads_from_amqp(channel)

    def _messages_in_hand(self) -> int | None:
        """Messages the transport took and has not delivered yet (None: it cannot tell). The worker's Redis
        transport counts them (worker/transport.py); on RabbitMQ py-amqp's connection is asked
        (worker/amqp_delivery.py)."""
        channel = self._task_channel()
        in_hand = getattr(channel, "messages_in_hand", None)
        return in_hand if isinstance(in_hand, int) else amqp_messages_in_hand(channel)

    def _pool_busy(self) -> bool:
        return pool_busy(getattr(self, "_pool", None))

    def _tune_prefetch(self, sizes: list[int]) -> None:
        qos = getattr(self._consumer, "qos", None)
        if not sizes or qos is None:
            return
        settings = get_settings()
        average = sum(sizes) / len(sizes)
        self._message_size = average if self._message_size is None else 0.7 * self._message_size + 0.3 * average
        processes = getattr(self._pool, "limit", None) or 1
        # From the live value: Celery sets it too (after a reconnect, and +1 per message with an ETA).
        current = max(1, int(qos.value) // processes)
        per_process = reserved_per_process(settings.worker_reserved_commands, processes, settings.worker_batch_size)
        wanted = prefetch_for(self._message_size, per_process,
                              settings.worker_prefetch_max, settings.worker_prefetch_multiplier)
        if abs(wanted - current) < max(2, current // 4):
            return  # not worth a change
        # Relative changes, so that Celery's own (for messages with an ETA) stay in the count.
        if wanted > current:
            qos.increment_eventually((wanted - current) * processes)
        else:
            qos.decrement_eventually((current - wanted) * processes)
        qos.update()
        self._restart_amqp_consumer()
        log.info("prefetch changed", extra={"prefetch": wanted, "commands_per_message": round(self._message_size, 1)})

    def _restart_amqp_consumer(self) -> None:
        """On RabbitMQ, make the new prefetch count hold: quorum queues refuse a channel-wide (global) one, and a
        per-consumer count set by `basic.qos` holds only for consumers started after it. So the task consumer
        is cancelled and started again (new consumer tags, the queues and callbacks unchanged), as Celery does
        when told to add or cancel a queue. Messages already delivered stay with this worker and are
        acknowledged as before: acknowledgements are by delivery tag on the channel, not by consumer."""
        task_consumer = getattr(self._consumer, "task_consumer", None)
        connection = getattr(self._consumer, "connection", None)
        if task_consumer is None or getattr(getattr(connection, "transport", None), "driver_type", None) != "amqp":
            return
        try:
            task_consumer.cancel()
            task_consumer.consume()
        except Exception:  # a lost connection: Celery's reconnection starts the consumer again
            log.warning("task consumer not restarted for the new prefetch count", exc_info=True)

    def batch_returned(self) -> None:
        """A pool process just returned a batch (its acks made room in the prefetch window): hand it the
        next one now. Left to the flush timer, the event loop first took and decoded the messages that
        room let in while the next batch waited in the buffer and the pool process idled."""
        self._do_flush()

    def _do_flush(self) -> None:
        if self._pool_busy():
            return  # the flush timer calls again; meanwhile the batch grows
        fresh = [(r, _commands_in(r)) for r in consume_queue(self._buffer)]
        self._tune_prefetch([count for _, count in fresh])
        waiting = self._held + fresh
        limit = get_settings().worker_batch_size
        taken, size = 0, 0
        for _, count in waiting:
            if taken and size + count > limit:
                break
            taken, size = taken + 1, size + count
        self._held = waiting[taken:]
        self._waiting = sum(count for _, count in self._held)
        for request, _ in waiting[:taken]:
            self._buffer.put(request)
        super()._do_flush()  # celery-batches: ETAs, then `flush` of the ready requests

    def flush(self, requests: Collection[Any]) -> Any:
        """Hand a batch to the pool (replaces celery-batches' own, which sends no task events and pickles
        whole requests)."""
        requests = list(requests)
        self.observer.received(requests)
        started = monotonic()

        def on_accepted(pid: int, time_accepted: float) -> None:
            for req in requests:
                if not req.task.acks_late:
                    req.acknowledge()
            self.observer.started(requests)

        def on_return(result: Any) -> None:
            runtime = monotonic() - started
            # The pool process is free: give it the next batch before acknowledging this one and sending
            # its events (work of the main process that the pool process would otherwise idle through).
            self.batch_returned()
            acknowledge_all([req for req in requests if req.task.acks_late])
            self.observer.succeeded(requests, result, runtime)

        simple = ([slim(r) for r in requests],)
        return self._pool.apply_async(apply_batches_task, (self, simple, 0, None),
                                      accept_callback=on_accepted, callback=on_return)


def flush_at_once(pool_free: bool, messages_in_hand: int | None, commands_waiting: int, flush_at: int) -> bool:
    """Whether what waits in the buffer goes to the pool now rather than at the flush timer's next tick.

    Only to a free pool process (a busy pool lets the batch grow). Then at once when the batch is worth a
    transaction of its own (`flush_at` commands, e.g. one hundred-update message), or when no further
    message is in the transport's hand: the timer would only make the commands wait (at low load every
    message waited the whole `worker_flush_interval` while a pool process idled), since what arrives
    meanwhile gathers in the buffer anyway while this batch runs. `messages_in_hand` None: unknown, wait."""
    if not pool_free or commands_waiting <= 0:
        return False
    return commands_waiting >= flush_at or messages_in_hand == 0


def pool_busy(pool: Any) -> bool:
    """Whether every process of a prefork pool runs a job (other pools: never busy, as celery-batches has it)."""
    jobs = getattr(getattr(pool, "_pool", None), "_cache", None)  # prefork: jobs not yet returned
    limit = getattr(pool, "limit", None)
    return jobs is not None and isinstance(limit, int) and limit > 0 and len(jobs) >= limit


def slim(request: Any) -> SimpleRequest:
    """What the pool process needs of a request: id, name, args and kwargs. celery-batches'
    `SimpleRequest.from_request` also copies the delivery info and every header, among them `kwargsrepr`
    (the kwargs again, as text): twice or more the bytes to pickle and push through the pool's pipe, which
    the main process writes between deliveries of newly fetched messages."""
    args, kwargs, _ = request._payload
    return SimpleRequest(request.id, request.name, args, kwargs, None, request.hostname,
                         getattr(request, "ignore_result", False), None, None, None)


class HandsOverRequest(Request):
    """The request of an `acks_late` task that shares the pool with the batches (awards, relay, purge):
    when it is acknowledged it has returned and its pool process is free, so the waiting batch goes to
    that process at once.

    An award is published by an apply batch and runs right after it; left to the flush timer, the next
    batch then waited up to `worker_flush_interval` more, every cycle, while that pool process idled.
    The hook is `acknowledge` because Celery builds a subclass of this class per task that replaces
    `on_success` without calling it; with `acks_late` the acknowledgement follows the return."""

    batches_task: str = ""  # the name of the batching task whose waiting batch to hand over

    def acknowledge(self) -> None:
        if self.task.acks_late and not self.acknowledged:
            self._hand_over()  # first: the acknowledgement is a round trip to the broker
        super().acknowledge()

    def _hand_over(self) -> None:
        batches = self.task.app.tasks.get(self.batches_task)
        returned = getattr(batches, "batch_returned", None)  # PacedBatches (None: another kind of task)
        if returned is None:
            return
        try:
            returned()
        except Exception:  # the flush timer hands it over instead
            log.warning("batch not handed over", exc_info=True)
