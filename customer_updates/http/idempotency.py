"""An Idempotency-Key bound to the body it first came with.

The key is the batch id and item i's request id is `<key>:<i>`, so a body with other or more items under a
known key would apply the new items and replace the batch's manifest. The first request binds the key to a
fingerprint of its items (Redis, SET NX, as long as results are kept there); a request whose fingerprint
differs is answered 409 before anything is queued. When Redis no longer holds the binding (its results
expired), the items the database recorded for the batch must be exactly these.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis
from sqlalchemy import select

from customer_updates.http.errors import ApiError
from customer_updates.models import tables as t
from customer_updates.models.commands import payload_hash
from customer_updates.store.db import session_scope

CONFLICT = ("Conflict: this Idempotency-Key was first used with another body; send the same body to get its "
            "result, or use a new key")


def binding_key(org_id: int, key: str) -> str:
    return f"customer_updates:http:idempotency:{org_id}:{key}"


def manifest(key: str, items: list[Any]) -> list[tuple[str, str]]:
    """(request id, payload hash) of each item, as the producer derives them from the key."""
    return [(f"{key}:{i}", payload_hash(item)) for i, item in enumerate(items)]


def fingerprint(entries: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def bind(client: redis.Redis, database_url: str, org_id: int, key: str, items: list[Any], ttl: int) -> None:
    """Bind `key` to these items, or raise 409 if it is bound to others. Blocking: run it in a thread."""
    entries = manifest(key, items)
    wanted = fingerprint(entries)
    name = binding_key(org_id, key)
    if not client.set(name, wanted, nx=True, ex=ttl):
        bound = client.get(name)
        if bound is not None and bound.decode() != wanted:
            raise ApiError(409, 409, CONFLICT)
        return
    if not _agrees_with_records(database_url, org_id, key, dict(entries)):
        client.delete(name)
        raise ApiError(409, 409, CONFLICT)


def _agrees_with_records(database_url: str, org_id: int, key: str, entries: dict[str, str]) -> bool:
    """Whether the database recorded nothing under this batch id, or exactly these items (ids and payloads)."""
    with session_scope(database_url) as session:
        applied = session.execute(select(t.CommandRecord.request_id, t.CommandRecord.payload_hash).where(
            t.CommandRecord.org_id == org_id, t.CommandRecord.batch_id == key)).all()
    return not applied or dict(applied) == entries
