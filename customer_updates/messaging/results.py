"""Results and batch manifests on Redis.

Producers read results here with nothing but `REDIS_URL` (DESIGN §2: not Celery's result backend).
The database keeps the durable copy; these keys expire after `result_ttl_seconds`.

Keys:
  cu:result:{org}:{request_id}          {"hash": payload hash, "result": v1.1 item}
  cu:rejected:{org}:{request_id}:{hash} v1.1 item with code 409 (a reused request id)
  cu:batch:{org}:{batch_id}             [[request_id, hash], ...] in input order (written by the producer)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis

from customer_updates import jsontext
from customer_updates.models.results import batch_response, conflict_item, wire_item


def result_key(org_id: int, request_id: str) -> str:
    return f"cu:result:{org_id}:{request_id}"


def rejected_key(org_id: int, request_id: str, payload_hash: str) -> str:
    return f"cu:rejected:{org_id}:{request_id}:{payload_hash}"


def batch_key(org_id: int, batch_id: str) -> str:
    return f"cu:batch:{org_id}:{batch_id}"


# One script call per batch instead of a pipeline of a command per result or event: redis-py packs and
# parses each pipelined command in Python, which cost the worker more CPU than one call carrying them all.
_SET_ALL = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ttl) end
return #KEYS
"""

def store_results(client: redis.Redis, results: Iterable[Any], ttl: int) -> None:
    """Publish stored results (services.apply.StoredResult) in one round trip."""
    keys, values = result_entries(results)
    if keys:
        client.register_script(_SET_ALL)(keys=keys, args=[ttl, *values])


def result_entries(results: Iterable[Any]) -> tuple[list[str], list[str]]:
    """The Redis keys and values of stored results (services.apply.StoredResult)."""
    keys: list[str] = []
    values: list[str] = []
    for r in results:
        text = r.text if r.text is not None else jsontext.dumps(r.result)
        if r.rejected:
            keys.append(rejected_key(r.org_id, r.request_id, r.payload_hash))
            values.append(text)
        else:
            keys.append(result_key(r.org_id, r.request_id))
            # {"hash": ..., "result": ...} around the text made for the database (a hash is hex digits)
            values.append(f'{{"hash":"{r.payload_hash}","result":{text}}}')
    return keys, values


def stored_hashes(client: redis.Redis, org_id: int, request_ids: list[str]) -> list[str | None]:
    """The payload hash each request id's stored result was made for (None where none is stored)."""
    if not request_ids:
        return []
    raws = client.mget([result_key(org_id, rid) for rid in request_ids])
    return [str(json.loads(raw)["hash"]) if raw else None for raw in raws]


def read_result(client: redis.Redis, org_id: int, request_id: str, wanted_hash: str | None = None,
                payload: Any = None) -> dict[str, Any] | None:
    """The result of a request id; with `wanted_hash` (the hash of the payload its reader sent), the
    result of that payload: a result stored for another payload means this one is refused with 409."""
    raw = client.get(result_key(org_id, request_id))
    if not raw:
        return None
    stored = json.loads(raw)
    if wanted_hash is None or stored["hash"] == wanted_hash:
        return wire_item(stored["result"])
    # The first payload's result is stored, so this one's outcome is certain even before the worker
    # stores its own 409 copy (or when it was never enqueued).
    rejected = client.get(rejected_key(org_id, request_id, wanted_hash))
    return wire_item(json.loads(rejected)) if rejected else conflict_item(payload)


def read_batch_response(client: redis.Redis, org_id: int, batch_id: str) -> dict[str, Any] | None:
    """The v1.1 batch response, or None while any item is not done (or the batch is unknown)."""
    manifest_raw = client.get(batch_key(org_id, batch_id))
    if not manifest_raw:
        return None
    manifest: list[list[str]] = json.loads(manifest_raw)
    raws = client.mget([result_key(org_id, rid) for rid, _ in manifest]) if manifest else []
    items: list[dict[str, Any] | None] = []
    missing_rejected = []
    for (rid, wanted_hash), raw in zip(manifest, raws, strict=True):
        stored = json.loads(raw) if raw else None
        if stored is None:
            return None
        if stored["hash"] == wanted_hash:
            items.append(wire_item(stored["result"]))
        else:
            items.append(None)
            missing_rejected.append((len(items) - 1, rejected_key(org_id, rid, wanted_hash)))
    if missing_rejected:
        found = client.mget([key for _, key in missing_rejected])
        for (index, _), raw in zip(missing_rejected, found, strict=True):
            if not raw:
                return None
            items[index] = wire_item(json.loads(raw))
    return batch_response([i for i in items if i is not None])


def wait_for(read: Any, timeout: float, interval: float = 0.02) -> Any:
    """Poll `read()` until it returns something or `timeout` seconds pass (0: look once)."""
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        value = read()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.25)
