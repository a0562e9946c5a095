"""Which Redis list entries the worker's transport treats as kombu messages (others are dead-lettered)."""

from __future__ import annotations

import json

from customer_updates.transport import as_message

ENVELOPE = {"body": "W10=", "headers": {}, "properties": {"delivery_tag": "t1", "delivery_info": {"exchange": ""}}}


def test_a_kombu_envelope_is_a_message():
    assert as_message(json.dumps(ENVELOPE)) == ENVELOPE


def test_text_that_is_not_json_is_not_a_message():
    assert as_message("this is not JSON at all") is None
    assert as_message("\ufffd\ufffd{not json") is None


def test_json_without_kombus_envelope_is_not_a_message():
    assert as_message('{"no": "envelope"}') is None
    assert as_message("[1, 2]") is None
    assert as_message(json.dumps({**ENVELOPE, "properties": {"delivery_tag": 7, "delivery_info": {}}})) is None
    assert as_message(json.dumps({**ENVELOPE, "properties": {"delivery_tag": "t1"}})) is None


def test_json_nested_too_deep_to_decode_is_not_a_message():
    assert as_message("[" * 100_000 + "]" * 100_000) is None
