"""Publication receipts: the outbox rows a worker published after its commit, kept in a Redis set until they
are marked published in the database, many at a time.

Marking a batch's rows published was a statement and a commit of its own after every batch: on a quiet
system, where a batch holds one command, about a fifth of the worker's CPU and of PostgreSQL's
(bench/HISTORY.md, "Outbox receipts"). The receipt rides on the after-commit script instead
(messaging/after_commit.py), and the rows are marked by whoever drains the set: the relay before it looks
for unconfirmed rows, and a worker whose receipt made the set reach `DRAIN_AT`, so that the set stays small
without beat.

A receipt lost (Redis emptied, a drain that failed to mark) makes the relay publish its rows again:
duplicates, which award handlers and event consumers already dedupe, never a loss.
"""

from __future__ import annotations

from collections.abc import Collection

import redis

RECEIPTS_KEY = "cu:outbox:published"
# Receipts that make a worker mark them. Small: the batch whose after-commit drains them waits for the
# statement, whose time grows with its rows (bench/HISTORY.md, "Outbox receipts").
DRAIN_AT = 100
TAKE_AT_ONCE = 10_000  # the most a drain marks in one statement


def take(client: redis.Redis, count: int = TAKE_AT_ONCE) -> list[int]:
    """Remove and return up to `count` receipts (each drainer gets its own: SPOP is atomic)."""
    taken = client.spop(RECEIPTS_KEY, count)
    return sorted(int(raw) for raw in taken or ())


def add(client: redis.Redis, ids: Collection[int]) -> int:
    """Leave receipts outside the after-commit script (award rows once their tasks are sent, receipts a
    failed drain gives back); returns the receipts now waiting. One round trip."""
    if not ids:
        return 0
    pipe = client.pipeline(transaction=False)
    pipe.sadd(RECEIPTS_KEY, *ids)
    pipe.scard(RECEIPTS_KEY)
    return int(pipe.execute()[1])


def pending(client: redis.Redis) -> set[int]:
    """The receipts not yet drained (at most about `DRAIN_AT` and a batch's rows while workers run)."""
    return {int(raw) for raw in client.smembers(RECEIPTS_KEY)}
