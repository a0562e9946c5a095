"""After a commit a worker stores the batch's results, appends its events and drops its request-id claims
in one Redis call; each part reads back as when it was a call of its own."""

from __future__ import annotations

import json

import pytest
import redis

from customer_updates.messaging import claims
from customer_updates.messaging.after_commit import publish_batch
from customer_updates.messaging.results import read_result, rejected_key
from customer_updates.services.apply import StoredResult
from tests.integration.test_stored_results import _NoCalls

STREAM = "cu:events"


def _result(code: int) -> dict[str, object]:
    return {"item_status": {"success": "true" if code == 1000 else "false", "code": str(code), "message": "",
                            "warnings": {"warning": []}}, "customer": {"firstname": "Émile"}}


def _events(count: int) -> list[tuple[int, dict[str, object]]]:
    return [(100 + i, {"event": "customer.updated", "user_id": i, "note": "ü"}) for i in range(count)]


@pytest.mark.parametrize("events", [0, 1, 3])
def test_results_events_and_claims_go_in_one_call_and_only_the_claims_named_are_dropped(redis_url, events):
    client = redis.Redis.from_url(redis_url)
    mine = {(1, "a"), (1, "b")}
    claims.take(client, [*mine, (1, "other")], seconds=10)
    results = [StoredResult(1, "a", "ha", _result(1000)), StoredResult(1, "b", "hb", _result(1000)),
               StoredResult(1, "a", "h2", _result(409), rejected=True)]

    publish_batch(client, results, 60, STREAM, 1000, _events(events), mine)

    assert read_result(client, 1, "a") == _result(1000) and read_result(client, 1, "b") == _result(1000)
    assert json.loads(client.get(rejected_key(1, "a", "h2")) or b"") == _result(409)
    assert 0 < client.ttl(rejected_key(1, "a", "h2")) <= 60
    entries = client.xrange(STREAM)
    assert [int(fields[b"event_id"]) for _, fields in entries] == [100 + i for i in range(events)]
    assert [json.loads(fields[b"data"])["user_id"] for _, fields in entries] == list(range(events))
    assert not any(client.exists(claims.claim_key(*key)) for key in mine)
    assert client.exists(claims.claim_key(1, "other"))  # another worker's claim stays


def test_claims_alone_are_dropped_and_nothing_at_all_costs_no_round_trip(redis_url):
    client = redis.Redis.from_url(redis_url)
    claims.take(client, [(1, "a")], seconds=10)

    publish_batch(client, [], 60, STREAM, 1000, [], {(1, "a")})

    assert not client.exists(claims.claim_key(1, "a")) and not client.exists(STREAM)

    publish_batch(_NoCalls(), [], 60, STREAM, 1000, [], set())  # type: ignore[arg-type]
