"""SPEC §4: what a merge keeps, adds up and moves, as a pure function."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from customer_updates.rules.merge import merge
from customer_updates.rules.state import FieldValue, SubscriptionState
from tests.unit.builders import NOW, customer, org


def merged(a, b, **configs):
    return merge(a, b, "email", org(**configs), NOW)


def test_the_survivor_keeps_its_identifiers_and_fills_empty_ones_from_the_victim():
    a = customer(1, mobile="919800000001")
    b = customer(2, mobile="919800000002", email="b@example.com", external_id="EXT-2")
    result = merged(a, b)
    assert (result.survivor.mobile, result.survivor.email, result.survivor.external_id) == (
        "919800000001", "b@example.com", "EXT-2")


def test_the_victim_keeps_its_identifiers_for_history_and_points_to_the_survivor():
    b = customer(2, mobile="919800000002", email="b@example.com")
    result = merged(customer(1, mobile="919800000001"), b)
    assert (result.victim.active, result.victim.merged_into, result.victim.mobile) == (False, 1, "919800000002")


def test_the_earlier_registration_date_wins():
    early, late = datetime(2018, 1, 1), datetime(2022, 1, 1)
    assert merged(customer(1, registered_on=late), customer(2, registered_on=early)).survivor.registered_on == early
    assert merged(customer(1, registered_on=early), customer(2, registered_on=late)).survivor.registered_on == early


def test_loyalty_wins_over_non_loyalty():
    assert merged(customer(1, type="NON_LOYALTY"), customer(2, type="LOYALTY")).survivor.type == "LOYALTY"


def test_points_and_purchases_are_added_up_and_the_total_is_conserved():
    a = customer(1, loyalty_points=100, lifetime_points=900, lifetime_purchases=Decimal("10.50"),
                 points_summaries=[{"programId": 101, "loyaltyPoints": 100, "lifetimePoints": 900, "redeemed": 5}])
    b = customer(2, loyalty_points=40, lifetime_points=60, lifetime_purchases=Decimal("2.25"),
                 points_summaries=[{"programId": 101, "loyaltyPoints": 40, "lifetimePoints": 60, "redeemed": 1},
                                   {"programId": 202, "loyaltyPoints": 7}])
    result = merged(a, b)
    s = result.survivor
    assert (s.loyalty_points, s.lifetime_points, s.lifetime_purchases) == (140, 960, Decimal("12.75"))
    assert s.loyalty_points + result.victim.loyalty_points == 140
    by_program = {x["programId"]: x for x in s.points_summaries}
    assert (by_program[101]["loyaltyPoints"], by_program[101]["redeemed"]) == (140, 6)
    assert by_program[202]["loyaltyPoints"] == 7


def test_the_higher_slab_wins_with_its_expiry():
    expiry = datetime(2027, 1, 1)
    result = merged(customer(1, slab_number=1), customer(2, slab_number=3, tier_expiry_date=expiry))
    assert (result.survivor.slab_number, result.survivor.tier_expiry_date) == (3, expiry)
    kept = merged(customer(1, slab_number=2, tier_expiry_date=expiry), customer(2, slab_number=1))
    assert (kept.survivor.slab_number, kept.survivor.tier_expiry_date) == (2, expiry)


def test_custom_fields_of_the_survivor_stay_and_the_victims_fill_gaps():
    a = customer(1, custom={"favourite_drink": FieldValue("tea")})
    b = customer(2, custom={"favourite_drink": FieldValue("coffee"), "postcode": FieldValue("560001")})
    assert {k: v.value for k, v in merged(a, b).survivor.custom.items()} == {
        "favourite_drink": "tea", "postcode": "560001"}


def test_extended_fields_follow_the_survivor_unless_the_org_lets_the_victim_win():
    a = customer(1, extended={"city": FieldValue("Pune")})
    b = customer(2, extended={"city": FieldValue("Goa"), "kids": FieldValue("2")})
    assert {k: v.value for k, v in merged(a, b).survivor.extended.items()} == {"city": "Pune", "kids": "2"}
    overwrite = merged(a, b, CONF_CUSTOMER_MERGE_OVERWRITE_EXTENDED_FIELD_VALUE=True).survivor
    assert {k: v.value for k, v in overwrite.extended.items()} == {"city": "Goa", "kids": "2"}


def test_subscriptions_of_the_victim_fill_pairs_the_survivor_has_no_record_of():
    a = customer(1, subscriptions={("SMS", "TRANS"): SubscriptionState(0)})
    b = customer(2, subscriptions={("SMS", "TRANS"): SubscriptionState(1), ("EMAIL", "BULK"): SubscriptionState(1)})
    subs = {k: v.status for k, v in merged(a, b).survivor.subscriptions.items()}
    assert subs == {("SMS", "TRANS"): 0, ("EMAIL", "BULK"): 1}


def test_confirmed_fraud_wins_over_none():
    assert merged(customer(1), customer(2, fraud_status="CONFIRMED")).survivor.fraud_status == "CONFIRMED"


def test_side_effect_history_is_the_union_of_both():
    result = merged(customer(1, fired={"first_fill:email"}), customer(2, fired={"profile_completion"}))
    assert result.survivor.fired == {"first_fill:email", "profile_completion"}


def test_the_snapshot_records_the_victim_before_the_merge():
    b = customer(2, mobile="919800000002", loyalty_points=40, custom={"postcode": FieldValue("560001")})
    snap = merged(customer(1), b).snapshot
    assert (snap["user_id"], snap["mobile"], snap["loyalty_points"], snap["custom_fields"]) == (
        2, "919800000002", 40, {"postcode": "560001"})


def test_merging_does_not_change_its_inputs():
    a, b = customer(1, loyalty_points=1), customer(2, loyalty_points=2)
    merged(a, b)
    assert (a.loyalty_points, b.loyalty_points, b.active) == (1, 2, True)


def test_summed_points_that_reach_a_higher_slab_put_the_survivor_in_it_with_a_new_expiry():
    a = customer(1, type="LOYALTY", lifetime_points=300, slab_number=1)
    b = customer(2, type="LOYALTY", lifetime_points=300, slab_number=1)
    result = merged(a, b)  # 600 points: Silver's threshold is 500
    assert (result.survivor.slab_number, result.survivor.tier_expiry_date) == (2, datetime(2027, 6, 1, 12, 0, 0))
    below = merged(customer(1, type="LOYALTY", lifetime_points=300, slab_number=1),
                   customer(2, type="LOYALTY", lifetime_points=100, slab_number=1))
    assert (below.survivor.slab_number, below.survivor.tier_expiry_date) == (1, None)
    not_member = merged(customer(1, type="NON_LOYALTY", lifetime_points=300),
                        customer(2, type="NON_LOYALTY", lifetime_points=300))
    assert not_member.survivor.slab_number is None
