"""The set-based writes of store/customers.py: what is written reads back the same, on both databases."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from customer_updates.models import tables as t
from customer_updates.rules.state import FieldValue, SubscriptionState
from customer_updates.store import customers as store
from customer_updates.store.db import session_scope

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123)


def _first_two(url: str) -> list[int]:
    with session_scope(url) as session:
        return list(session.scalars(select(t.Customer.user_id).where(t.Customer.org_id == 1)
                                    .order_by(t.Customer.user_id).limit(2)))


def _load(url: str, ids: list[int]) -> dict[int, store.CustomerState]:
    with session_scope(url) as session:
        return {s.user_id: s for s in store.load_customers(session, 1, ids, {}, lock=False)}


def test_written_changes_of_every_column_kind_read_back_unchanged(loaded_db):
    first, second = _first_two(loaded_db)
    with session_scope(loaded_db) as session:
        loaded = store.load_customers(session, 1, [first, second], {}, lock=True)
        before = {s.user_id: s for s in loaded}
        after = {s.user_id: s.copy() for s in loaded}
        a = after[first]
        a.firstname, a.lastname = "Zoë", None  # text with a non-ASCII letter, and a cleared value
        a.lifetime_purchases = Decimal("1234.50")
        a.loyalty_points, a.tier_expiry_date, a.updated_on = 4321, WHEN, WHEN
        a.stamps = {**a.stamps, "firstname": WHEN}
        a.fired = a.fired | {"first_fill:email"}
        a.points_summaries = [{"program_id": 101, "loyalty_points": 4321, "current_slab": "Gold"}]
        a.custom = {**a.custom, "favourite_drink": FieldValue('say "chai"', WHEN)}
        a.extended = {**a.extended, "city": FieldValue(None, WHEN)}
        a.subscriptions = {**a.subscriptions, ("EMAIL", "BULK"): SubscriptionState(0, "ALL", WHEN)}
        store.write_changes(session, before, after)

    again = _load(loaded_db, [first, second])
    assert store.row_values(again[first]) == store.row_values(a)
    assert again[first].custom == a.custom
    assert again[first].extended == a.extended
    assert again[first].subscriptions == a.subscriptions
    assert store.row_values(again[second]) == store.row_values(before[second])


def test_a_change_of_names_alone_keeps_every_json_column_the_row_had(loaded_db):
    first, _ = _first_two(loaded_db)
    with session_scope(loaded_db) as session:
        loaded = store.load_customers(session, 1, [first], {}, lock=True)
        seeded = loaded[0].copy()
        seeded.custom = {**seeded.custom, "favourite_drink": FieldValue("chai", WHEN)}
        seeded.subscriptions = {**seeded.subscriptions, ("SMS", "TRANS"): SubscriptionState(1, "ALL", WHEN)}
        seeded.fired = seeded.fired | {"first_fill:email"}
        store.write_changes(session, {first: loaded[0]}, {first: seeded})
    with session_scope(loaded_db) as session:
        loaded = store.load_customers(session, 1, [first], {}, lock=True)
        renamed = loaded[0].copy()
        renamed.firstname = "Renamed"
        # On PostgreSQL the unchanged JSON columns go as null and the UPDATE keeps what is stored.
        [[row]] = store.changed_rows({first: loaded[0]}, {first: renamed}, keep_as_null=True)
        assert row["custom_fields"] is None and row["firstname"] == "Renamed"
        store.write_changes(session, {first: loaded[0]}, {first: renamed})

    again = _load(loaded_db, [first])[first]
    assert store.row_values(again) == store.row_values(renamed)
    assert again.custom["favourite_drink"] == FieldValue("chai", WHEN)
    assert again.subscriptions[("SMS", "TRANS")] == SubscriptionState(1, "ALL", WHEN)


def test_an_unchanged_customer_has_no_row_to_write(loaded_db):
    first, _ = _first_two(loaded_db)
    loaded = _load(loaded_db, [first])[first]
    assert store.changed_rows({first: loaded}, {first: loaded.copy()}, keep_as_null=True) == []


def test_a_second_write_of_the_same_field_replaces_its_value_and_stamp_in_the_customer_row(loaded_db):
    first, _ = _first_two(loaded_db)
    for value, when in (("espresso", datetime(2026, 1, 1)), ("mocha", WHEN)):
        with session_scope(loaded_db) as session:
            loaded = store.load_customers(session, 1, [first], {}, lock=True)
            changed = loaded[0].copy()
            changed.custom = {**changed.custom, "favourite_drink": FieldValue(value, when)}
            store.write_changes(session, {first: loaded[0]}, {first: changed})
    with session_scope(loaded_db) as session:
        stored = session.scalar(select(t.Customer.custom_fields).where(t.Customer.user_id == first))
    assert stored is not None
    assert stored["favourite_drink"] == ["mocha", WHEN.isoformat()]


def test_loading_by_ids_alone_follows_merge_chains_and_leaves_out_unknown_ids_and_other_orgs(loaded_db):
    victim, survivor = _first_two(loaded_db)
    with session_scope(loaded_db) as session:
        loaded = {s.user_id: s for s in store.load_customers(session, 1, [victim], {}, lock=True)}
        merged = loaded[victim].copy()
        merged.active, merged.merged_into = False, survivor
        store.write_changes(session, loaded, {victim: merged})
        other_org = session.scalar(select(t.Customer.user_id).where(t.Customer.org_id != 1).limit(1))
    assert other_org is not None  # the example customers include one of org 2

    asked = [victim, 10**12, other_org]
    for lock in (True, False):
        with session_scope(loaded_db) as session:
            found = {s.user_id for s in store.load_customers(session, 1, asked, {}, lock=lock)}
        assert found == {victim, survivor}


def test_imported_customers_keep_their_custom_fields_and_subscriptions(loaded_db):
    with session_scope(loaded_db) as session:
        chen = store.load_customers(session, 1, [], {"mobile": {"919800000003"}}, lock=False)
        dana = store.load_customers(session, 1, [], {"email": {"dana@example.com"}}, lock=False)
    assert [s.custom for s in chen] == [{"favourite_drink": FieldValue("flat white")}]
    assert [s.subscriptions for s in dana] == [{("EMAIL", "BULK"): SubscriptionState(1, "ALL", None)}]
