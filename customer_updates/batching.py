"""Consumer-side batching that keeps batches full: flush only when a pool process is free.

celery-batches flushes its whole buffer on every timer tick. When every pool process is busy, each
tick queued one more pool job made of the few messages that arrived since the last tick; with
`acks_late` few messages arrive (the prefetch window is full of unacknowledged ones), so batches shrank
to a message or two and a worker applied 40 one-update messages a second. Here a tick while the pool
is busy does nothing (the messages wait in the buffer and the batch grows), and a flush takes at most
`worker_batch_size` commands, so that a batch of large messages is not one long job either.
"""

from __future__ import annotations

from typing import Any

from celery_batches import consume_queue

from customer_updates.settings import get_settings


def _commands_in(request: Any) -> int:
    try:
        commands = request.kwargs.get("commands")
    except Exception:  # an undecodable body is the handler's business, not the batcher's
        return 1
    return len(commands) if isinstance(commands, list) else 1


class PacedBatches:
    """Mix in before `celery_batches.Batches` (it uses its `_buffer`, `_pool` and `_do_flush`)."""

    _buffer: Any
    _pool: Any
    _held: list[tuple[Any, int]] | None = None

    def _pool_busy(self) -> bool:
        pool = getattr(self, "_pool", None)
        jobs = getattr(getattr(pool, "_pool", None), "_cache", None)  # prefork: jobs not yet returned
        limit = getattr(pool, "limit", None)
        return jobs is not None and isinstance(limit, int) and limit > 0 and len(jobs) >= limit

    def _do_flush(self) -> None:
        if self._pool_busy():
            return  # the flush timer calls again; meanwhile the batch grows
        waiting = (self._held or []) + [(r, _commands_in(r)) for r in consume_queue(self._buffer)]
        limit = get_settings().worker_batch_size
        taken, size = 0, 0
        for _, count in waiting:
            if taken and size + count > limit:
                break
            taken, size = taken + 1, size + count
        self._held = waiting[taken:]
        for request, _ in waiting[:taken]:
            self._buffer.put(request)
        super()._do_flush()  # type: ignore[misc]
