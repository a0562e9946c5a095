"""Results and events reach Redis in one script call per batch, in the shapes readers rely on."""

from __future__ import annotations

import json

import redis

from customer_updates import jsontext
from customer_updates.messaging.events import append_to_stream
from customer_updates.messaging.results import read_result, rejected_key, result_key, store_results
from customer_updates.services.apply import StoredResult


def _result(code: int) -> dict[str, object]:
    return {"item_status": {"success": "true" if code == 1000 else "false", "code": str(code), "message": "",
                            "warnings": {"warning": []}}, "customer": {"firstname": "Émile"}}


def test_a_batch_of_results_is_readable_by_request_id_and_expires_after_the_ttl(redis_url):
    client = redis.Redis.from_url(redis_url)
    results = [StoredResult(1, f"r{i}", f"h{i}", _result(1000)) for i in range(300)]
    results.append(StoredResult(1, "r0", "other", _result(409), rejected=True))

    store_results(client, results, ttl=60)

    assert read_result(client, 1, "r7") == _result(1000)
    assert json.loads(client.get(result_key(1, "r7")) or b"")["hash"] == "h7"
    # A reused request id gets its 409 beside the first result, not over it.
    assert read_result(client, 1, "r0") == _result(1000)
    assert json.loads(client.get(rejected_key(1, "r0", "other")) or b"") == _result(409)
    assert 0 < client.ttl(result_key(1, "r299")) <= 60
    assert 0 < client.ttl(rejected_key(1, "r0", "other")) <= 60


def test_a_result_whose_text_was_made_for_the_database_reads_back_the_same(redis_url):
    client = redis.Redis.from_url(redis_url)
    made = jsontext.dumped(_result(1003))
    store_results(client, [StoredResult(1, "made", "h", made.value, text=made.text),
                                   StoredResult(1, "made", "h2", made.value, rejected=True, text=made.text)], ttl=60)

    assert json.loads(client.get(result_key(1, "made")) or b"") == {"hash": "h", "result": _result(1003)}
    assert json.loads(client.get(rejected_key(1, "made", "h2")) or b"") == _result(1003)


class _NoCalls:
    """A Redis client that fails any use: nothing to write must cost no round trip."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"Redis used: {name}")


def test_no_results_and_no_events_cost_no_round_trip():
    store_results(_NoCalls(), [], ttl=60)  # type: ignore[arg-type]
    append_to_stream(_NoCalls(), "cu:events", 1000, [])  # type: ignore[arg-type]


def test_events_are_appended_in_order_with_their_outbox_id_type_and_payload(redis_url):
    client = redis.Redis.from_url(redis_url)
    events = [(10 + i, {"event": "customer.updated", "user_id": i, "note": "ü"}) for i in range(5)]

    append_to_stream(client, "cu:events", 1000, events)

    entries = client.xrange("cu:events")
    assert [fields[b"event_id"] for _, fields in entries] == [str(10 + i).encode() for i in range(5)]
    assert {fields[b"type"] for _, fields in entries} == {b"customer.updated"}
    assert json.loads(entries[3][1][b"data"]) == {"event": "customer.updated", "user_id": 3, "note": "ü"}


def test_the_event_stream_is_trimmed_to_about_its_maximum_length(redis_url):
    client = redis.Redis.from_url(redis_url)
    for start in range(0, 2000, 500):
        append_to_stream(client, "cu:events", 100, [(i, {"event": "e"}) for i in range(start, start + 500)])

    # MAXLEN ~ trims whole nodes only: about the maximum, never the 2,000 appended.
    assert 100 <= client.xlen("cu:events") < 500
