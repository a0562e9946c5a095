"""Task events for consumer-side batches, so that Flower shows each message's real state.

celery-batches hands a worker's buffered messages to the pool as one call and sends no task events
for them: Flower would show every apply message as sent and never done. `TaskEvents`, which the batching
task (worker/batching.py) calls, sends per message what Celery's own request does: `task-received` when
the batch is formed, `task-started` when the pool accepts it and, when it returns, `task-succeeded` with
the message's report (services/message_reports.py) or `task-failed` when the message was dead-lettered.
Each message gets its share of the batch's runtime by its number of commands. Events
go from the worker's main process, like Celery's, over its event dispatcher's exchange, with the fields
Celery's would have.

A batch's events of one kind go out together, made at once: one timestamp and UTC offset for all,
as one grouped message (`task.multi`, a list of events, which Celery's event receivers and so Flower
read like Celery's own buffered task events). One `send_event` per message builds a dict field by
field, works the local UTC offset out again and flushes a buffer every few events, all in the main
process; that process also fetches messages and hands batches to the pool, so its time is every
update's latency.

Events wait up to `EVENTS_DELAY` in the worker before they go out, so that the events of every batch in
that time share one round trip to the broker: sent at once, a batch's three were three round trips the
main process waited for. Their timestamps are those of the moments they describe; only their delivery
to Flower is later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from time import time
from typing import Any

import orjson
from celery import bootsteps
from celery.utils.time import utcoffset

log = logging.getLogger("customer_updates.worker.task_events")

EVENTS_DELAY = 0.05  # seconds an event may wait to share its round trip with later ones
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
                body, content_type, encoding = _encoded(dispatcher.serializer, events[start:start + EVENTS_PER_MESSAGE])
                dispatcher.producer.publish(
                    body, routing_key="task.multi", exchange=dispatcher.exchange.name, declare=[dispatcher.exchange],
                    serializer=dispatcher.serializer, content_type=content_type, content_encoding=encoding,
                    headers=dispatcher.headers, delivery_mode=dispatcher.delivery_mode, retry=False)
    except Exception as exc:
        log.warning("task events not sent", extra={"events": len(events), "error": type(exc).__name__})


def _encoded(serializer: str, events: list[dict[str, Any]]) -> tuple[Any, str | None, str | None]:
    """The body, content type and encoding to publish: JSON made by orjson when the dispatcher's serializer
    is JSON (kombu's encoder was the largest single cost of the events in the main process), else the events
    for kombu to serialise."""
    if serializer == "json":
        try:
            return orjson.dumps(events), "application/json", "utf-8"
        except TypeError:  # a value orjson has no form for: kombu's encoder knows more types
            pass
    return events, None, None


class TaskEvents:
    """The task events of one batching task's batches, sent over the worker's event dispatcher.

    The batching task (worker/batching.py) calls `received` when it forms a batch, `started` when the pool
    accepts it and `succeeded` when it returns; whether events go out is checked at each call, because
    Celery's remote control can turn a worker's events on and off while it runs."""

    def __init__(self, dispatcher: Any, task: Any,
                 call_later: Callable[[float, Callable[[], None]], Any] | None = None) -> None:
        self.dispatcher = dispatcher  # the consumer's event dispatcher (None: the worker has none)
        self.task = task  # its `send_events` says whether this task sends events at all
        self.call_later = call_later  # the worker's event loop timer (None: events go out at once)
        self._pending: list[dict[str, Any]] = []

    def _publish(self, dispatcher: Any, events: list[dict[str, Any]]) -> None:
        if self.call_later is None:
            publish_events(dispatcher, events)
            return
        if not self._pending:
            self.call_later(EVENTS_DELAY, self.flush)
        self._pending.extend(events)

    def flush(self) -> None:
        """Send the events that wait (the timer, and the consumer's shutdown: worker/celery_app.py)."""
        events, self._pending = self._pending, []
        if events and self.dispatcher is not None:
            publish_events(self.dispatcher, events)

    def _events_to(self) -> Any:
        """The worker's task event dispatcher, or None when it sends no task events."""
        dispatcher = self.dispatcher
        if dispatcher is None or not dispatcher.enabled or not self.task.send_events:
            return None
        if dispatcher.groups and "task" not in dispatcher.groups:
            return None
        return dispatcher

    def _send(self, requests: Collection[Any], kind: str,
              fields: Callable[[Any], dict[str, Any]] | None = None) -> None:
        dispatcher = self._events_to()
        if dispatcher is not None and requests:
            self._publish(dispatcher, batch_events(dispatcher, requests, kind, fields))

    def received(self, requests: Collection[Any]) -> None:
        self._send(requests, "task-received", _received_fields)

    def started(self, requests: Collection[Any]) -> None:
        self._send(requests, "task-started")

    def succeeded(self, requests: Collection[Any], result: Any, runtime: float) -> None:
        """The batch returned: each message is reported with its own share of the batch's runtime, as
        `task-succeeded` with its report, or `task-failed` when it was dead-lettered (message_reports.py)."""
        dispatcher = self._events_to()
        if dispatcher is None or not requests:
            return
        reports = result if isinstance(result, dict) else {}
        shares = runtime_shares(requests, reports, runtime)
        done: list[Any] = []
        failed: list[Any] = []
        for request in requests:
            report = reports.get(request.id)
            (failed if isinstance(report, dict) and report.get("dead_letter") else done).append(request)

        def succeeded_fields(req: Any) -> dict[str, Any]:
            report = reports.get(req.id)
            return {"result": repr(report if report is not None else None), "runtime": shares[req.id]}

        def failed_fields(req: Any) -> dict[str, Any]:
            reason = str(reports[req.id]["dead_letter"])
            return {"exception": f"DeadLettered({reason!r})", "runtime": shares[req.id],
                    "traceback": f"dead-lettered: {reason} (customer-updates dead-letters list)"}

        events = batch_events(dispatcher, done, "task-succeeded", succeeded_fields) if done else []
        if failed:
            events += batch_events(dispatcher, failed, "task-failed", failed_fields)
        self._publish(dispatcher, events)


def commands_of(request: Any, report: Any) -> int:
    """A message's commands: from its report, else from its kwargs (one when it has none)."""
    if isinstance(report, dict) and isinstance(report.get("commands"), int):
        return max(1, report["commands"])
    try:
        commands = request.kwargs.get("commands")
    except Exception:
        return 1
    return max(1, len(commands)) if isinstance(commands, list) else 1


def runtime_shares(requests: Collection[Any], reports: dict[str, Any], runtime: float) -> dict[str, float]:
    """Each message's part of the batch's runtime, in proportion to its commands: summed over the batch they
    make the batch's runtime, so Flower's totals are the worker's real time."""
    weights = {req.id: commands_of(req, reports.get(req.id)) for req in requests}
    total = sum(weights.values()) or 1
    return {task_id: runtime * weight / total for task_id, weight in weights.items()}


class NoTaskEvents:
    """Before the worker's consumer is known (the task is not consuming yet): no events."""

    def received(self, requests: Collection[Any]) -> None:
        pass

    def started(self, requests: Collection[Any]) -> None:
        pass

    def succeeded(self, requests: Collection[Any], result: Any, runtime: float) -> None:
        pass


def _received_fields(req: Any) -> dict[str, Any]:
    """What Celery's strategy sends with `task-received`."""
    return {"name": req.name, "args": req.argsrepr, "kwargs": req.kwargsrepr, "root_id": req.root_id,
            "parent_id": req.parent_id, "retries": req.request_dict.get("retries", 0),
            "eta": req.eta and req.eta.isoformat(), "expires": req.expires and req.expires.isoformat()}


class DelayedDispatcherFlush:
    """What Celery's event dispatcher calls when it buffers a task event (`on_send_buffered`): a flush of its
    buffer `EVENTS_DELAY` later, not at the event loop's next turn.

    Celery's own requests (award, relay and purge tasks) buffer their events, and Celery flushes that buffer
    at the loop's next turn: a message, and with publisher confirms on RabbitMQ a wait for its confirm,
    for nearly every event, since the loop turns far more often than such tasks end. Delayed, the events of
    those moments share one message, as the batches' own do (`TaskEvents`)."""

    def __init__(self, dispatcher: Any, call_later: Callable[[float, Callable[[], None]], Any]) -> None:
        self.dispatcher = dispatcher
        self.call_later = call_later
        self.due = False

    def __call__(self) -> None:
        if not self.due:
            self.due = True
            self.call_later(EVENTS_DELAY, self.flush)

    def flush(self) -> None:
        self.due = False
        try:
            self.dispatcher.flush()
        except Exception as exc:  # events are for monitoring: never the worker's loop
            log.warning("task events not sent", extra={"error": type(exc).__name__})


class FlushTaskEvents(bootsteps.StartStopStep):
    """A consumer step that delays the flushes of Celery's own buffered task events (`DelayedDispatcherFlush`),
    and sends the task events still waiting when the consumer stops, before the Events step it requires
    closes the dispatcher (steps stop in the reverse order of their start)."""

    requires = ("celery.worker.consumer.events:Events",)

    def start(self, c: Any) -> None:
        # After the Events step's start, which makes a new dispatcher at every (re)connection.
        dispatcher = getattr(c, "event_dispatcher", None)
        hub = getattr(c, "hub", None)
        if dispatcher is not None and hub is not None and getattr(dispatcher, "on_send_buffered", None) is not None:
            dispatcher.on_send_buffered = DelayedDispatcherFlush(dispatcher, hub.call_later)

    def stop(self, c: Any) -> None:
        for task in list(c.app.tasks.values()):
            observer = getattr(task, "observer", None)
            if isinstance(observer, TaskEvents):
                observer.flush()
        delayed = getattr(getattr(c, "event_dispatcher", None), "on_send_buffered", None)
        if isinstance(delayed, DelayedDispatcherFlush) and delayed.due:  # due: events wait in its buffer
            delayed.flush()

    def shutdown(self, c: Any) -> None:
        self.stop(c)
