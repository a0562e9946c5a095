"""Replaying dead letters: each raw message is sent to the apply queue again, as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from customer_updates.services.worker_messages import as_commands


def replay(client: redis.Redis, key: str, send_apply: Callable[[list[Any]], None]) -> tuple[int, int]:
    """Send every dead letter whose body has commands again; keep the others. Returns (sent, kept).

    Replay is idempotent like any delivery: commands already applied return their stored result.
    Entries are taken off the list one at a time (LPOP), so two operators replaying at once never send
    one entry twice, and a crash loses at most the entry being sent (it is pushed back on error).
    """
    sent = kept = 0
    keep: list[bytes] = []
    for _ in range(client.llen(key)):
        raw = client.lpop(key)
        if raw is None:
            break
        entry = json.loads(raw)
        commands = as_commands(entry.get("message"))
        if not commands:
            keep.append(raw)
            kept += 1
            continue
        try:
            send_apply(commands)
        except Exception:
            client.rpush(key, raw)
            raise
        sent += 1
    if keep:
        client.rpush(key, *keep)
    return sent, kept
