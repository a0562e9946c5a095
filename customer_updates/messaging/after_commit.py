"""What a worker tells Redis after a commit, in one round trip: the batch's results, its events, the
receipts of its published outbox rows (messaging/receipts.py) and the release of its request-id claims.

They were a script call each, and a round trip costs the worker more CPU than the keys it carries when a
batch holds a command or two (a quiet system's batches). One script keeps their order: results first, so
that a producer that sees an event finds its result; receipts after the events they confirm; claims last,
so that a second copy of a request that claims it afterwards is answered from the stored result.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import redis

from customer_updates.messaging.claims import Key, claim_key
from customer_updates.messaging.events import event_fields
from customer_updates.messaging.receipts import RECEIPTS_KEY
from customer_updates.messaging.results import result_entries

# KEYS: the result keys, the stream (only when there are events), the receipts set (only when there are
# receipts), the claim keys.
# ARGV: ttl, number of results, stream length bound, number of receipts, the result values, the receipts,
# then event_id/type/data per event. Returns the receipts waiting in the set (0 when none were given).
_AFTER_COMMIT = """
local ttl, results, maxlen, receipts = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i = 1, results do redis.call('SET', KEYS[i], ARGV[4 + i], 'EX', ttl) end
local key = results + 1
local first_event = 5 + results + receipts
if #ARGV >= first_event then
  local stream = KEYS[key]
  key = key + 1
  for i = first_event, #ARGV, 3 do
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event_id', ARGV[i], 'type', ARGV[i + 1],
               'data', ARGV[i + 2])
  end
end
local waiting = 0
if receipts > 0 then
  redis.call('SADD', KEYS[key], unpack(ARGV, 5 + results, 4 + results + receipts))
  waiting = redis.call('SCARD', KEYS[key])
  key = key + 1
end
for i = key, #KEYS do redis.call('DEL', KEYS[i]) end
return waiting
"""


def publish_batch(client: redis.Redis, results: Iterable[Any], ttl: int, stream: str, maxlen: int,
                  events: list[tuple[int, dict[str, Any]]], claimed: Iterable[Key],
                  published: Collection[int] = ()) -> int:
    """Store `results` (services.apply.StoredResult), append `events` ((outbox id, event), as
    services.publish.stream_events gives them) to `stream`, leave a receipt for each `published` outbox row
    id, then drop the `claimed` request ids. Returns the receipts now waiting to be drained."""
    keys, values = result_entries(results)
    fields = event_fields(events)
    if fields:
        keys.append(stream)
    if published:
        keys.append(RECEIPTS_KEY)
    keys += [claim_key(org_id, request_id) for org_id, request_id in claimed]
    if not keys:
        return 0
    waiting = client.register_script(_AFTER_COMMIT)(
        keys=keys, args=[ttl, len(values), maxlen, len(published), *values, *published, *fields])
    return int(waiting)
