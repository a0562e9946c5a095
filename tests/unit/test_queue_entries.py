"""Which Redis list entries the worker's transport hands to kombu (customer_updates/worker/queue_entries.py); every
other one is dead-lettered before kombu or Celery reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from customer_updates.worker.queue_entries import Unusable, decode_entry

ENVELOPE = {"body": "W10=", "headers": {}, "properties": {"delivery_tag": "t1", "delivery_info": {"exchange": ""}}}
# The repro: a task header that is a list, otherwise what Celery sends.
GOOD = {"body": "W10=", "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"task": "customer_updates.apply_updates", "id": "p1"},
        "properties": {"delivery_tag": "p1", "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": "customer_updates"}}}


def _with(**changes: Any) -> dict[str, Any]:
    entry = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = entry
        for name in parents:
            target = target[name]
        target[last] = value
    return entry


def _refused(entry: Any) -> str:
    with pytest.raises(Unusable) as caught:
        decode_entry(entry if isinstance(entry, str) else json.dumps(entry))
    return str(caught.value)


def test_a_kombu_envelope_is_a_message():
    assert decode_entry(json.dumps(ENVELOPE)) == ENVELOPE
    assert decode_entry(json.dumps(GOOD)) == GOOD


def test_text_that_is_not_json_is_not_a_message():
    assert "not JSON" in _refused("this is not JSON at all")
    assert "not JSON" in _refused("\ufffd\ufffd{not json")


def test_json_without_kombus_envelope_is_not_a_message():
    assert "not a kombu message" in _refused('{"no": "envelope"}')
    assert "not a kombu message" in _refused("[1, 2]")
    assert "not a kombu message" in _refused("12345")
    assert "not a kombu message" in _refused({**ENVELOPE, "properties": {"delivery_tag": 7, "delivery_info": {}}})
    assert "not a kombu message" in _refused({**ENVELOPE, "properties": {"delivery_tag": "t1"}})


def test_json_nested_too_deep_to_decode_is_not_a_message():
    _refused("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(("change", "reason"), [
    ({"headers__task": ["x"]}, "task header is not text"),
    ({"headers__task": {"name": "x"}}, "task header is not text"),
    ({"headers": ["task", "x"]}, "headers is not an object"),
    ({"headers": "task"}, "headers is not an object"),
    ({"headers__id": 5}, "id header is not text"),
    ({"headers__eta": [2024]}, "eta header is not text"),
    ({"headers__retries": "many"}, "retries header is not an integer"),
    ({"headers__timelimit": "soon"}, "timelimit header"),
    ({"body": "not base64!"}, "body is not base64"),
    ({"body": 7}, "body is not text"),
    ({"properties__body_encoding": "rot13"}, "unknown body_encoding"),
    ({"properties__body_encoding": ["base64"]}, "unknown body_encoding"),
    ({"properties__priority": "high"}, "priority"),
    ({"properties__delivery_info__routing_key": 3}, "routing_key is not text"),
    ({"content-type": {"json": True}}, "content-type is not text"),
])
def test_an_envelope_kombu_or_celery_would_choke_on_is_refused_with_a_reason(change, reason):
    assert reason in _refused(_with(**change))


def test_the_reason_never_quotes_the_entry():
    reason = _refused(_with(headers__task=["9197000001"], body="9197000001 not base64"))
    assert "9197000001" not in reason
