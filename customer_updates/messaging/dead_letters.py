"""The dead-letter list on Redis: what a worker could not use or gave up on, raw, with the error."""

from __future__ import annotations

import json
import time
from typing import Any

import redis


def push_dead_letter(client: redis.Redis, key: str, raw: Any, error: str, attempts: int) -> None:
    entry = {"message": raw, "error": error[:2000], "attempts": attempts, "at": time.time()}
    client.rpush(key, json.dumps(entry, default=str))


def list_dead_letters(client: redis.Redis, key: str, limit: int = 1000) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(key, 0, limit - 1)]
