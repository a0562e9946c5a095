"""kombu's Redis transport with fewer round trips and less Python work per message.

With one update a message the worker's main process, not the database, limits throughput: for every
message kombu records it as unacked (one pipeline), acknowledges it (another) and sends task events, and
each of those made a new `redis.Redis` client object first (a tenth of the process's time). Here:

- a channel reuses one client for those short commands (same connection pool, as before);
- `acknowledge_all` removes a whole batch's messages from the unacked index in one pipeline.

Delivery semantics are kombu's own: the same keys, written in the same order, only grouped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger("customer_updates.transport")


class Channel(kombu_redis.Channel):
    _short_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        # A client is only a handle on the pool; make a new one when the pool was replaced.
        if self._short_client is None or self._short_client.connection_pool is not self.pool:
            self._short_client = self._create_client()
        yield self._short_client


class Transport(kombu_redis.Transport):
    Channel = Channel


def acknowledge_all(requests: Sequence[Any]) -> None:
    """Acknowledge Celery requests; those of one Redis channel in one pipeline.

    Falls back to one acknowledgement per request (Celery's own path, which logs connection errors)
    for other transports or when the pipeline fails: an unacknowledged message is redelivered after
    the visibility timeout and applies nothing the second time."""
    pending = [r for r in requests if not r.acknowledged]
    by_qos: dict[int, tuple[Any, list[Any]]] = {}
    for request in pending:
        message = request.message
        qos = getattr(getattr(message, "channel", None), "qos", None)
        if isinstance(qos, kombu_redis.QoS) and not message.acknowledged:
            by_qos.setdefault(id(qos), (qos, []))[1].append(request)
    for qos, batch in by_qos.values():
        try:
            with qos.pipe_or_acquire() as pipe:
                for request in batch:
                    qos._remove_from_indices(request.message.delivery_tag, pipe)
                pipe.execute()
        except Exception:
            log.warning("batched acknowledgement failed; acknowledging one by one", exc_info=True)
            continue
        for request in batch:
            virtual.QoS.ack(qos, request.message.delivery_tag)  # kombu's in-memory bookkeeping
            request.message._state = "ACK"
            request.acknowledged = True
    for request in pending:
        request.acknowledge()  # a no-op for those acknowledged above
