"""Short-lived claims on request ids, so that two workers do not apply the same request at once.

A retrying producer sends a request again while the first copy may still be in another worker's open
transaction. Both would apply it; the unique idempotency key lets only one commit, and the other's whole
batch (hundreds of updates) rolls back and is tried again. With a few retried requests in the
workload that happened often enough that a second worker process added nothing (bench/HISTORY.md).

So before a transaction a worker claims its request ids on Redis (`SET NX` with an expiry, one script call)
and leaves the ones another worker holds for a little later; by then that worker has committed and the
request is answered as a duplicate. The claims are only a hint: correctness still rests on the database's
unique key (a claim that expired during a very slow transaction costs a retried batch, nothing more),
and a worker that dies leaves claims that expire after `worker_claim_seconds`.

Key: cu:claim:{org}:{request_id} -> an arbitrary token (never read).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

Key = tuple[int, str]


def claim_key(org_id: int, request_id: str) -> str:
    return f"cu:claim:{org_id}:{request_id}"


def key_of(raw: Any) -> Key | None:
    """(org_id, request_id) of a raw command, or None when it has none (it fails validation later)."""
    if not isinstance(raw, dict):
        return None
    org_id, request_id = raw.get("org_id"), raw.get("request_id")
    if isinstance(org_id, int) and not isinstance(org_id, bool) and isinstance(request_id, str):
        return org_id, request_id
    return None


# One script call for a whole batch: a pipeline of hundreds of SETs cost more to pack and parse in the
# worker than the claims were worth. Returns the 1-based positions of the keys another worker holds.
_TAKE = """
local busy = {}
for i, key in ipairs(KEYS) do
  if not redis.call('SET', key, '1', 'NX', 'PX', ARGV[1]) then busy[#busy + 1] = i end
end
return busy
"""


def take(client: redis.Redis, keys: Iterable[Key], seconds: float) -> tuple[set[Key], set[Key]]:
    """Claim `keys`; returns (taken now, held by another worker)."""
    wanted = list(dict.fromkeys(keys))  # a request twice in one batch is claimed once (the batch dedupes it)
    if not wanted:
        return set(), set()
    script = client.register_script(_TAKE)
    positions = script(keys=[claim_key(org_id, request_id) for org_id, request_id in wanted],
                       args=[max(1, int(seconds * 1000))])
    busy = {wanted[int(i) - 1] for i in positions}
    return set(wanted) - busy, busy


def release(client: redis.Redis, keys: Iterable[Key]) -> None:
    """Drop claims (after commit, or when the transaction failed). A claim that expired and was taken by
    another worker may be dropped too: that only weakens the hint, the unique key still holds."""
    names = [claim_key(org_id, request_id) for org_id, request_id in keys]
    if names:
        client.delete(*names)
