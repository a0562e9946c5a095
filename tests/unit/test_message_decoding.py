"""What the producer refuses and how the worker cuts large messages (issue: poison messages)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_updates.errors import InvalidBody
from customer_updates.models.commands import find_unusable, json_screen, payload_hash, unusable_value
from customer_updates.producer import Producer
from customer_updates.services.worker_messages import Message, _parts
from customer_updates.settings import Settings


@pytest.mark.parametrize("value", ["\ud800", float("inf"), float("-inf"), float("nan"), 2 ** 64, -(2 ** 63) - 1])
def test_the_producer_refuses_an_item_the_worker_could_not_store(value):
    producer = Producer(Settings(REDIS_URL="redis://127.0.0.1:1/0"))  # never reached: refused before sending
    with pytest.raises(InvalidBody, match=r"customer\.lastname"):
        producer.enqueue_update(1, {"mobile": "919800000001", "lastname": value})
    with pytest.raises(InvalidBody, match=r"customer\.lastname"):
        producer.enqueue_batch(1, {"root": {"customer": [{"mobile": "919800000001", "lastname": value}]}})


def test_a_lone_surrogate_payload_still_has_a_stable_hash():
    assert payload_hash({"lastname": "\ud800"}) == payload_hash({"lastname": "\ud800"})
    assert payload_hash({"lastname": "Zoë"}) != payload_hash({"lastname": "Zoe"})


def test_usable_values_are_not_flagged():
    usable = {"mobile": "919800000001", "points": 2 ** 63 - 1, "ratio": 0.5, "tags": ["Zoë", None]}
    assert unusable_value(usable) is None
    nested = {"custom_fields": {"x": [1, {"y": "\udfff"}]}}
    assert unusable_value(nested) == "customer.custom_fields.x[1].y: lone surrogate in text"


# What a JSON message can carry once decoded, edges included: every code point (lone surrogates too),
# floats with infinities and NaN, integers on both sides of the 64-bit bounds.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
_EDGE_INTS = st.sampled_from([2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63), -(2 ** 63) - 1, 10 ** 18])
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _EDGE_INTS | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=20)


@given(_JSON_VALUES)
def test_the_one_pass_screen_answers_as_the_walk_does(value):
    assert find_unusable(value) == unusable_value(value)
    if json_screen(value):
        assert unusable_value(value) is None


def test_the_screen_clears_a_plain_profile_in_one_pass():
    assert json_screen({"mobile": "919800000001", "firstname": "Zoë", "custom_fields": {"tier": "gold"}})


def test_a_message_of_twenty_thousand_commands_is_applied_in_parts_of_the_batch_size():
    big = Message(list(range(20_000)), attempt=2)
    parts = list(_parts([Message([1]), big, Message([2, 3])], 500))
    assert [len(p.commands) for p in parts] == [1] + [500] * 40 + [2]
    assert [c for p in parts[1:-1] for c in p.commands] == big.commands
    assert all(p.attempt == 2 for p in parts[1:-1])
