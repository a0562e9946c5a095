"""Arbitrary JSON and strings thrown at the producer, the decoder and the rules (hypothesis).

Whatever comes in, nothing raises an unhandled exception: the producer refuses with InvalidBody, the
decoder sets an envelope aside for the dead-letter list, and the rules answer with a SPEC §6 code.
"""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from customer_updates.errors import InvalidBody
from customer_updates.producer import Producer, items_of
from customer_updates.rules.codes import Code
from customer_updates.rules.directory import Directory
from customer_updates.rules.parse import ItemRejected, parse_item
from customer_updates.rules.update import apply_item
from customer_updates.services.apply import BatchOutcome, decode
from customer_updates.settings import Settings
from tests.unit.builders import NOW, T0, customer, org

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)

KEYS = ["mobile", "email", "external_id", "id", "firstname", "lastname", "registered_on", "registered_till",
        "associated_with", "type", "custom_fields", "extended_fields", "subscriptions", "fraud_status"]
plausible_values = (json_values | st.sampled_from(["919800000001", "919800000002", "asha@example.com", "EXT-0005",
                                                   "LOYALTY", "NON_LOYALTY", "2024-01-01 10:00:00", "", " ",
                                                   "store.airport", "CONFIRMED"])
                    | st.fixed_dictionaries({"field": st.lists(st.fixed_dictionaries(
                        {"name": st.sampled_from(["postcode", "gender", "dob", "kids", "nope"]),
                         "value": json_values}), max_size=3)})
                    | st.fixed_dictionaries({"subscription": st.lists(st.dictionaries(
                        st.sampled_from(["priority", "channel", "is_subscribed", "scope"]),
                        st.sampled_from(["TRANS", "BULK", "sms", "email", "1", "0", "all", "x"])), max_size=2)}))
items = st.dictionaries(st.sampled_from(KEYS), plausible_values, max_size=6) | json_values

KNOWN_CODES = {int(c) for c in Code}


def _directory() -> Directory:
    return Directory([customer(1, mobile="919800000001", email="asha@example.com", firstname="Asha"),
                      customer(2, mobile="919800000002", type="NON_LOYALTY"),
                      customer(3, mobile="919800000005", external_id="EXT-0005")])


@FUZZ
@given(org_id=json_values, item=items, request_id=st.none() | st.text(max_size=120), context=json_values)
@example(org_id=1, item={"mobile": "919800000001"}, request_id="r" * 101, context=None)
@example(org_id=1, item={"mobile": "919800000001"}, request_id=None, context={"source": "s" * 101})
@example(org_id=1, item={"mobile": "919800000001"}, request_id=None, context={"entity_id": 7})
def test_the_producer_accepts_a_command_or_refuses_it_with_invalid_body(org_id, item, request_id, context):
    producer = Producer(Settings(REDIS_URL="redis://127.0.0.1:1/0"))
    try:
        wire = producer._command(org_id, item, request_id, None, context if isinstance(context, dict) else None)
    except InvalidBody:
        return
    json.dumps(wire)
    assert wire["org_id"] == org_id and wire["customer"] == item


@FUZZ
@given(body=json_values | st.fixed_dictionaries({"root": st.fixed_dictionaries({"customer": json_values})}))
def test_a_body_yields_its_items_or_invalid_body(body):
    try:
        found = items_of(body)
    except InvalidBody:
        return
    assert isinstance(found, list) and found


@FUZZ
@given(raw=st.lists(json_values | st.fixed_dictionaries(
    {"org_id": json_values, "request_id": json_values, "issued_at": json_values, "customer": items}), max_size=5))
def test_the_decoder_keeps_each_envelope_or_sets_it_aside_with_an_error(raw):
    outcome = BatchOutcome()
    commands = decode(raw, outcome)
    assert len(commands) + len(outcome.undecodable) == len(raw)
    assert all(isinstance(error, str) and error for _, error in outcome.undecodable)


@FUZZ
@given(item=items)
def test_parsing_any_item_gives_an_item_or_a_spec_code(item):
    try:
        parse_item(item)
    except ItemRejected as rejected:
        assert int(rejected.code) in KNOWN_CODES and rejected.message


@FUZZ
@given(item=items, hours=st.integers(-10**5, 10**5))
def test_applying_any_item_to_a_small_directory_succeeds_or_fails_with_a_spec_code(item, hours):
    try:
        parsed = parse_item(item)
        applied = apply_item(org(), parsed, _directory(), T0 + timedelta(hours=hours), NOW)
    except ItemRejected as rejected:
        assert int(rejected.code) in KNOWN_CODES
        return
    assert all(int(w.code) in KNOWN_CODES for w in applied.warnings)
    assert isinstance(applied.target.user_id, int)
