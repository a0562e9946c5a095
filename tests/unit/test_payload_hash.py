"""A worker hashes a decoded payload with orjson where it can (models/commands.py); stored hashes were made by
the json module, so the two must agree on every value JSON text can decode to, or a redelivery would read as
another payload (a 409)."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from customer_updates.models.commands import Command, decoded_payload_hash, payload_hash

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text()
           | st.sampled_from(["1e-05", "v1.2", "null", "\u2028", "\x00\x1f\x7f", "\ud800", "\U0001f600", "\uffff"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | st.sampled_from(["Z", "a", "é", "\uffff", "\U0001f600"]),
                                        inner, max_size=5), max_leaves=25)


@settings(max_examples=500)
@given(values)
@example({"b": [1e-05, 1e16, 5e-324, -0.0, 100.0]})
@example({"n": float("nan"), "i": float("inf")})
@example({"big": 2**64, "small": -(2**63) - 1})
def test_a_decoded_payload_hashes_as_the_json_module_hashes_it(value):
    # Through JSON text and back, as a worker receives it (NaN and infinities survive the json module).
    decoded = json.loads(json.dumps(value))
    assert decoded_payload_hash(decoded) == payload_hash(decoded)


def test_a_command_hashes_its_payload_and_a_merge_its_kind_too():
    update = Command(org_id=1, request_id="r", customer={"mobile": "919800000001", "firstname": "Zoë"})
    merge = Command(org_id=1, request_id="r", kind="merge", customer={"victim_id": 2, "survivor_id": 1})
    assert update.payload_hash() == payload_hash({"mobile": "919800000001", "firstname": "Zoë"})
    assert merge.payload_hash() == payload_hash({"kind": "merge", "customer": {"victim_id": 2, "survivor_id": 1}})


def test_a_value_json_text_cannot_hold_hashes_as_the_json_module_hashes_it():
    class Text(str):
        pass

    assert decoded_payload_hash({"a": Text("x")}) == payload_hash({"a": Text("x")})
    assert decoded_payload_hash({1: "int key"}) == payload_hash({1: "int key"})
