"""Leases on the messages a live worker holds, so that a short visibility timeout redelivers only a dead
worker's messages.

kombu's Redis transport records each message it hands out in the sorted set `unacked_index`, scored with
the time it was taken, and its restore sweep hands a record older than the visibility timeout back to the
queue, whether or not the worker holding it is alive. With consumer-side batching a worker holds thousands
of reserved messages for a while, so the timeout had to be long (minutes), and a killed worker's messages
stayed invisible that long. Here a live worker re-scores the records of every message it still holds (its
channel's unacknowledged delivery tags) every `renew_every` seconds, with ZADD XX (a record another worker
already restored or acknowledged is not created again), and every worker runs the restore sweep every
`sweep_every` seconds. A record is restored only when its holder has not renewed it for a whole visibility
timeout, so a killed worker's messages are back on the queue at most `visibility_timeout + sweep_every`
seconds after the kill, and a live one loses its messages only if its event loop stalls for longer than
`visibility_timeout - renew_every` seconds (they are then applied by another worker; the stalled worker's
late commit applies nothing twice, the idempotency records see to that).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from time import time
from typing import Any

log = logging.getLogger("customer_updates.worker.leases")

#: Members per ZADD: a worker holds up to tens of thousands of small messages; a few commands of this size
#: in one pipeline keep each reply and each command's time on the server small.
RENEW_CHUNK = 1000
#: Shortest period of the renewal and of the sweep, whatever the visibility timeout.
SHORTEST_STEP = 0.5


@dataclass(frozen=True)
class LeaseTimes:
    renew_every: float  # seconds between two renewals of what a worker holds
    sweep_every: float  # seconds between two restore sweeps of a worker
    sweep_mutex_expire: int  # seconds a sweep's lock lasts if its worker dies during the sweep


def lease_times(visibility_timeout: float) -> LeaseTimes:
    """A quarter of the visibility timeout for both: a lease then survives three missed renewals, and a
    dead worker's messages are back within 1.25 visibility timeouts."""
    step = max(SHORTEST_STEP, visibility_timeout / 4)
    return LeaseTimes(renew_every=step, sweep_every=step, sweep_mutex_expire=max(1, math.ceil(step)))


def held_tags(qos: Any) -> list[str]:
    """Delivery tags a channel holds unacknowledged (kombu drops acknowledged ones from `_delivered` lazily)."""
    dirty = qos._dirty
    return [tag for tag in qos._delivered if tag not in dirty]


def renew(qos: Any, now: float | None = None) -> int:
    """Re-score the unacked records of what this channel holds, in one pipeline. Returns how many tags."""
    tags = held_tags(qos)
    if not tags:
        return 0
    score = time() if now is None else now
    with qos.channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
        for start in range(0, len(tags), RENEW_CHUNK):
            pipe.zadd(qos.unacked_index_key, dict.fromkeys(tags[start:start + RENEW_CHUNK], score), xx=True)
        pipe.execute()
    return len(tags)


def renew_all(channels: Iterable[Any]) -> None:
    """Renew what each consuming channel holds; a broker error waits for the next period (the poller
    reconnects on its own, and a lease survives missed renewals)."""
    for channel in list(channels):
        if not getattr(channel, "active_queues", None) or not channel.ack_emulation:
            continue
        try:
            renew(channel.qos)
        except channel.connection_errors:
            log.warning("leases not renewed: broker unreachable")
