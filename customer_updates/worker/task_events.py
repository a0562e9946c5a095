"""Task events for consumer-side batches, so that Flower shows each message's real state.

celery-batches hands a worker's buffered messages to the pool as one call and sends no task events
for them: Flower would show every apply message as sent and never done. This mixin sends, per message,
what Celery's own request does: `task-received` when the batch is formed, `task-started` when the pool
accepts it and `task-succeeded` when it returns. Events go from the worker's main process, like
Celery's, over its event dispatcher's exchange, with the fields Celery's would have.

A batch's events of one kind go out together, made at once: one timestamp and UTC offset for all,
as one grouped message (`task.multi`, a list of events, which Celery's event receivers and so Flower
read like Celery's own buffered task events). One `send_event` per message (a dict built field by field,
the local UTC offset worked out again, a buffer flush every 24 events) was a third of the main
process's CPU with one-update messages (bench/README.md); the main process is also what fetches
messages and hands batches to the pool, so its time is every update's latency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from time import monotonic, time
from typing import Any

from celery.utils.time import utcoffset
from celery_batches import SimpleRequest
from celery_batches.trace import apply_batches_task

from customer_updates.worker.transport import acknowledge_all

log = logging.getLogger("customer_updates.worker.task_events")

EVENTS_PER_MESSAGE = 200  # a grouped message stays small (a received event carries the kwargs' repr, 1 KiB at most)


def batch_events(dispatcher: Any, requests: Collection[Any], kind: str,
                 fields: Callable[[Any], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The events Celery's `Request.send_event(kind, **fields(request))` makes, for every request at once."""
    common = {"hostname": dispatcher.hostname, "utcoffset": utcoffset(), "pid": dispatcher.pid,
              "timestamp": time(), "type": kind}
    return [{**common, "uuid": request.id, "clock": dispatcher.clock.forward(),
             **(fields(request) if fields else {})} for request in requests]


def publish_events(dispatcher: Any, events: list[dict[str, Any]]) -> None:
    """Publish events as grouped messages on the dispatcher's exchange, as its own buffered flush does.

    Task events are for monitoring: a broker error loses them with a warning, never the batch."""
    try:
        with dispatcher.mutex:
            for start in range(0, len(events), EVENTS_PER_MESSAGE):
                dispatcher.producer.publish(
                    events[start:start + EVENTS_PER_MESSAGE], routing_key="task.multi",
                    exchange=dispatcher.exchange.name, declare=[dispatcher.exchange],
                    serializer=dispatcher.serializer, headers=dispatcher.headers,
                    delivery_mode=dispatcher.delivery_mode, retry=False)
    except Exception as exc:
        log.warning("task events not sent", extra={"events": len(events), "error": type(exc).__name__})


class BatchEvents:
    """Mix in before `celery_batches.Batches`; replaces its `flush` with one that also sends events."""

    _pool: Any
    _consumer: Any = None  # batching.PacedBatches keeps the consumer, whose event dispatcher this uses
    send_events: bool  # celery.Task's (declared, not set: the task's own value stays in force)

    def _events_to(self) -> Any:
        """The worker's task event dispatcher, or None when it sends no task events."""
        dispatcher = getattr(self._consumer, "event_dispatcher", None)
        if dispatcher is None or not dispatcher.enabled or not self.send_events:
            return None
        if dispatcher.groups and "task" not in dispatcher.groups:
            return None
        return dispatcher

    def _send(self, requests: Collection[Any], kind: str,
              fields: Callable[[Any], dict[str, Any]] | None = None) -> None:
        dispatcher = self._events_to()
        if dispatcher is not None and requests:
            publish_events(dispatcher, batch_events(dispatcher, requests, kind, fields))

    def flush(self, requests: Collection[Any]) -> Any:
        requests = list(requests)
        self._send(requests, "task-received", _received_fields)
        started = monotonic()

        def on_accepted(pid: int, time_accepted: float) -> None:
            for req in requests:
                if not req.task.acks_late:
                    req.acknowledge()
            self._send(requests, "task-started")

        def on_return(result: Any) -> None:
            runtime = monotonic() - started
            # The pool process is free: give it the next batch before acknowledging this one and sending
            # its events (some 25 ms of the main process for 500 messages, which it idled through).
            returned = getattr(self, "batch_returned", None)  # batching.PacedBatches
            if returned is not None:
                returned()
            acknowledge_all([req for req in requests if req.task.acks_late])
            # The batch reports problems per command (results, retries, dead letters), never by raising.
            succeeded = {"result": repr(result), "runtime": runtime}
            self._send(requests, "task-succeeded", lambda req: succeeded)

        simple = ([slim(r) for r in requests],)
        return self._pool.apply_async(apply_batches_task, (self, simple, 0, None),
                                      accept_callback=on_accepted, callback=on_return)


def _received_fields(req: Any) -> dict[str, Any]:
    """What Celery's strategy sends with `task-received`."""
    return {"name": req.name, "args": req.argsrepr, "kwargs": req.kwargsrepr, "root_id": req.root_id,
            "parent_id": req.parent_id, "retries": req.request_dict.get("retries", 0),
            "eta": req.eta and req.eta.isoformat(), "expires": req.expires and req.expires.isoformat()}


def slim(request: Any) -> SimpleRequest:
    """What the pool process needs of a request: id, name, args and kwargs. celery-batches also copies the
    delivery info and every header, among them `kwargsrepr` (the kwargs again, as text): twice or more the
    bytes to pickle and push through the pool's pipe, which the main process writes between deliveries of
    newly fetched messages. (Measured together with the earlier hand-over in on_return; its own share was
    not measured apart.)"""
    args, kwargs, _ = request._payload
    return SimpleRequest(request.id, request.name, args, kwargs, None, request.hostname,
                         getattr(request, "ignore_result", False), None, None, None)
