"""The dead-letter list on Redis: what a worker could not use or gave up on, raw, with the error.

Each entry has a stable `id` (a uuid given when it is pushed), so that an operator can show or drop one entry
while workers push others. Entries pushed before ids existed have none: their position in the list stands in
for it, which stays right only while nothing before them is removed.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import redis

from customer_updates.messaging.masking import mask_customer

_SCAN_LIMIT = 100_000  # entries looked through by show, drop and purge (the list is meant to stay short)


def push_dead_letter(client: redis.Redis, key: str, raw: Any, error: str, attempts: int,
                     task_id: str | None = None) -> str:
    """Append an entry; returns its id. `client` may be a pipeline."""
    entry_id = uuid.uuid4().hex
    entry = {"id": entry_id, "message": raw, "error": error[:2000], "attempts": attempts, "at": time.time(),
             "task_id": task_id}
    client.rpush(key, json.dumps(entry, default=str))
    return entry_id


@dataclass(frozen=True)
class DeadLetter:
    """One entry as stored (`raw`, what LREM removes) and as read (`entry`, with its id filled in)."""

    raw: bytes
    entry: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.entry["id"])


def _read(raw: bytes, index: int) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):  # not written by push_dead_letter: shown as it is
        entry = {"message": raw.decode("utf-8", "replace"), "error": "unreadable dead-letter entry"}
    entry.setdefault("id", str(index))
    return entry


def scan_dead_letters(client: redis.Redis, key: str, limit: int = _SCAN_LIMIT) -> list[DeadLetter]:
    return [DeadLetter(raw, _read(raw, index)) for index, raw in enumerate(client.lrange(key, 0, limit - 1))]


def list_dead_letters(client: redis.Redis, key: str, limit: int = 1000) -> list[dict[str, Any]]:
    return [letter.entry for letter in scan_dead_letters(client, key, limit)]


def find_dead_letter(client: redis.Redis, key: str, entry_id: str) -> DeadLetter | None:
    return next((letter for letter in scan_dead_letters(client, key) if letter.id == entry_id), None)


def drop_dead_letter(client: redis.Redis, key: str, entry_id: str) -> bool:
    """Remove one entry; False when there is none with that id (or another operator removed it first)."""
    letter = find_dead_letter(client, key, entry_id)
    return letter is not None and bool(client.lrem(key, 1, letter.raw))


def purge_dead_letters(client: redis.Redis, key: str, older_than_seconds: float, now: float | None = None) -> int:
    """Remove the entries pushed more than `older_than_seconds` ago; returns how many went.

    Each entry is removed by its exact value (LREM), so entries pushed meanwhile are never touched."""
    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed = 0
    for letter in scan_dead_letters(client, key):
        at = letter.entry.get("at")
        if isinstance(at, int | float) and at < cutoff:
            removed += int(client.lrem(key, 1, letter.raw))
    return removed


def masked_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without personal data in clear (messaging/masking.py's rules), for listings and JSON output."""
    message = entry.get("message")
    if isinstance(message, str):
        with suppress(ValueError):  # a raw entry is JSON; anything else is masked as a string
            message = json.loads(message)
    # Whatever the message is (a raw entry's JSON, a list, a string): masked as the value of an ordinary key.
    return {**entry, "error": _masked_value(entry.get("error")), "message": _masked_value(message)}


def _masked_value(value: Any) -> Any:
    return mask_customer({"value": value})["value"]
