"""A customer row becomes the same CustomerState the dataclass would make, attribute for attribute."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from decimal import Decimal

from customer_updates.rules.state import CustomerState
from customer_updates.store.customers import _LOADED, _state, row_values

WHEN = datetime(2026, 1, 2, 3, 4, 5)


def test_the_loaded_columns_and_the_field_tables_cover_every_attribute_of_a_state():
    assert set(_LOADED) | {"custom", "extended", "subscriptions"} == {f.name for f in fields(CustomerState)}


def test_a_row_becomes_a_state_equal_to_one_made_by_the_dataclass():
    expected = CustomerState(user_id=7, org_id=1, mobile="919800000001", email=None, firstname="Asha",
                             lifetime_purchases=Decimal("12.50"), points_summaries=[{"program_id": 1}],
                             stamps={"firstname": WHEN}, fired={"first_fill:email"}, slab_number=2,
                             updated_on=WHEN)
    stored = {"user_id": 7, **row_values(expected)}
    stored["stamps"] = {"firstname": WHEN.isoformat()}
    stored["fired"] = ["first_fill:email"]

    state = _state(tuple(stored[name] for name in _LOADED))

    assert state == expected
    assert state.custom == {} and state.subscriptions == {}
