"""What a worker tells Redis after a commit, in one round trip: the batch's results, its events, and the
release of its request-id claims.

The three were a script call each, and a round trip costs the worker more CPU than the keys it carries
when a batch holds a command or two (a quiet system's batches). One script keeps their order: results
first, so that a producer that sees an event finds its result; claims last, so that a second copy of a
request that claims it afterwards is answered from the stored result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from customer_updates.messaging.claims import Key, claim_key
from customer_updates.messaging.events import event_fields
from customer_updates.messaging.results import result_entries

# KEYS: the result keys, the stream (only when there are events), the claim keys.
# ARGV: ttl, number of results, stream length bound, the result values, then event_id/type/data per event.
_AFTER_COMMIT = """
local ttl, results, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
for i = 1, results do redis.call('SET', KEYS[i], ARGV[3 + i], 'EX', ttl) end
local first_event = 4 + results
local claims_from = results + 1
if #ARGV >= first_event then
  local stream = KEYS[results + 1]
  claims_from = results + 2
  for i = first_event, #ARGV, 3 do
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event_id', ARGV[i], 'type', ARGV[i + 1],
               'data', ARGV[i + 2])
  end
end
for i = claims_from, #KEYS do redis.call('DEL', KEYS[i]) end
return #KEYS
"""


def publish_batch(client: redis.Redis, results: Iterable[Any], ttl: int, stream: str, maxlen: int,
                  events: list[tuple[int, dict[str, Any]]], claimed: Iterable[Key]) -> None:
    """Store `results` (services.apply.StoredResult), append `events` ((outbox id, event), as
    services.publish.stream_events gives them) to `stream`, then drop the `claimed` request ids."""
    keys, values = result_entries(results)
    fields = event_fields(events)
    if fields:
        keys.append(stream)
    keys += [claim_key(org_id, request_id) for org_id, request_id in claimed]
    if not keys:
        return
    client.register_script(_AFTER_COMMIT)(keys=keys, args=[ttl, len(values), maxlen, *values, *fields])
