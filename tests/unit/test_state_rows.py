"""A customer row becomes the same CustomerState the dataclass would make, attribute for attribute."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from decimal import Decimal

from customer_updates import jsontext
from customer_updates.rules.state import CustomerState, FieldValue, SubscriptionState
from customer_updates.store.customers import _LOADED, _state, row_values

WHEN = datetime(2026, 1, 2, 3, 4, 5)


def test_the_loaded_columns_cover_every_attribute_of_a_state():
    columns_of = {"custom_fields": "custom", "extended_fields": "extended"}
    assert {columns_of.get(name, name) for name in _LOADED} == {f.name for f in fields(CustomerState)}


def test_a_row_becomes_a_state_equal_to_one_made_by_the_dataclass():
    expected = CustomerState(user_id=7, org_id=1, mobile="919800000001", email=None, firstname="Asha",
                             lifetime_purchases=Decimal("12.50"), points_summaries=[{"program_id": 1}],
                             stamps={"firstname": WHEN}, fired={"first_fill:email"}, slab_number=2,
                             updated_on=WHEN,
                             custom={"drink": FieldValue("chai", WHEN), "nickname": FieldValue(None)},
                             extended={"city": FieldValue("Pune", WHEN)},
                             subscriptions={("SMS", "TRANS"): SubscriptionState(1, "ALL", WHEN),
                                            ("EMAIL", "BULK"): SubscriptionState(0, "ALL", None)})
    stored = {"user_id": 7, **row_values(expected)}
    for column in ("stamps", "fired", "custom_fields", "extended_fields", "subscriptions"):
        stored[column] = jsontext.loads(jsontext.dumps(stored[column]))  # as the JSON column gives it back

    state = _state(tuple(stored[name] for name in _LOADED))

    assert state == expected


def test_a_row_without_fields_or_subscriptions_becomes_a_state_with_none():
    stored = {"user_id": 7, **row_values(CustomerState(user_id=7, org_id=1))}
    stored["custom_fields"] = stored["extended_fields"] = stored["subscriptions"] = None  # rows before 0003

    state = _state(tuple(stored[name] for name in _LOADED))

    assert (state.custom, state.extended, state.subscriptions) == ({}, {}, {})
