"""Events for other services: the Redis stream that `customer.updated`, `customer.merged` and
`customer.unmerged` go to (DESIGN §1)."""

from __future__ import annotations

from typing import Any

import redis

from customer_updates import jsontext

_XADD_ALL = """
local stream, maxlen = KEYS[1], ARGV[1]
for i = 2, #ARGV, 3 do
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event_id', ARGV[i], 'type', ARGV[i + 1], 'data', ARGV[i + 2])
end
return (#ARGV - 1) / 3
"""



def append_to_stream(client: redis.Redis, stream: str, maxlen: int, events: list[tuple[int, dict[str, Any]]]) -> None:
    """Append events to the stream (fields event_id, type, data), in one round trip. `event_id` is the
    event's id from the outbox (services.publish.stream_events): consumers dedupe on it, since the relay may
    publish an event twice (it died between XADD and marking the row published, or a receipt was lost)."""
    if not events:
        return
    client.register_script(_XADD_ALL)(keys=[stream], args=[maxlen, *event_fields(events)])


def event_fields(events: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """event_id, type and data of each event, one after the other (the stream entries' fields)."""
    fields: list[str] = []
    for outbox_id, payload in events:
        fields += [str(outbox_id), payload["event"], jsontext.dumps(payload)]
    return fields
