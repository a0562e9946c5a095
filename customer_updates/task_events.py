"""Task events for consumer-side batches, so that Flower shows each message's real state.

celery-batches hands a worker's buffered messages to the pool as one call and sends no task events
for them: Flower would show every apply message as sent and never done. This mixin sends, per message,
what Celery's own request does: `task-received` when the batch is formed, `task-started` when the pool
accepts it and `task-succeeded` (or `task-failed`) when it returns. Events go from the worker's main
process, like Celery's, over its event dispatcher.
"""

from __future__ import annotations

from collections.abc import Collection
from time import monotonic
from typing import Any

from celery_batches import SimpleRequest
from celery_batches.trace import apply_batches_task

from customer_updates.transport import acknowledge_all


class BatchEvents:
    """Mix in before `celery_batches.Batches`; replaces its `flush` with one that also sends events."""

    _pool: Any

    def flush(self, requests: Collection[Any]) -> Any:
        requests = list(requests)
        for req in requests:
            req.send_event("task-received", name=req.name, args=req.argsrepr, kwargs=req.kwargsrepr,
                           root_id=req.root_id, parent_id=req.parent_id,
                           retries=req.request_dict.get("retries", 0), eta=req.eta and req.eta.isoformat(),
                           expires=req.expires and req.expires.isoformat())
        started = monotonic()

        def on_accepted(pid: int, time_accepted: float) -> None:
            for req in requests:
                if not req.task.acks_late:
                    req.acknowledge()
                req.send_event("task-started")

        def on_return(result: Any) -> None:
            runtime = monotonic() - started
            # The pool process is free: give it the next batch before acknowledging this one and sending
            # its events (some 25 ms of the main process for 500 messages, which it idled through).
            returned = getattr(self, "batch_returned", None)  # batching.PacedBatches
            if returned is not None:
                returned()
            acknowledge_all([req for req in requests if req.task.acks_late])
            for req in requests:
                # The batch reports problems per command (results, retries, dead letters), never by raising.
                req.send_event("task-succeeded", result=repr(result), runtime=runtime)

        simple = ([slim(r) for r in requests],)
        return self._pool.apply_async(apply_batches_task, (self, simple, 0, None),
                                      accept_callback=on_accepted, callback=on_return)


def slim(request: Any) -> SimpleRequest:
    """What the pool process needs of a request: id, name, args and kwargs. celery-batches also copies the
    delivery info and every header, among them `kwargsrepr` (the kwargs again, as text): twice or more the
    bytes to pickle and push through the pool's pipe, which the main process writes between deliveries of
    newly fetched messages. (Measured together with the earlier hand-over in on_return; its own share was
    not measured apart.)"""
    args, kwargs, _ = request._payload
    return SimpleRequest(request.id, request.name, args, kwargs, None, request.hostname,
                         getattr(request, "ignore_result", False), None, None, None)
