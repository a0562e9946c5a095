"""SPEC §5: which rules fire, once per customer and key, and what an award does to points and tier."""

from __future__ import annotations

from customer_updates.rules.side_effects import add_months, apply_award, decide_awards, slab_for
from customer_updates.rules.state import FieldValue
from tests.unit.builders import NOW, apply, customer, org

COMPLETE_BUT_DOB = dict(mobile="919800000001", email="a@example.com", firstname="Asha", lastname="Rao")


def rules_fired(raw, *customers):
    return [(a.rule, a.points) for a in apply(raw, *customers).awards]


def test_profile_completion_fires_when_the_last_listed_field_is_filled():
    fired = rules_fired({"mobile": "919800000001", "extended_fields": {"field": [
        {"name": "dob", "value": "1990-01-01"}]}}, customer(1, **COMPLETE_BUT_DOB))
    assert fired == [("profile_completion", 100)]


def test_a_profile_completed_across_two_updates_is_rewarded_by_the_second():
    first = apply({"mobile": "919800000002", "firstname": "Ben", "lastname": "Ok"},
                  customer(2, mobile="919800000002", extended={"dob": FieldValue("1990-01-01")}))
    assert first.awards == []
    second = apply({"mobile": "919800000002", "email": "ben@example.com"}, first.target)
    assert sorted(a.rule for a in second.awards) == ["first_fill", "profile_completion"]


def test_profile_completion_never_fires_twice():
    done = customer(1, **COMPLETE_BUT_DOB, fired={"profile_completion"})
    assert rules_fired({"mobile": "919800000001", "extended_fields": {"field": [
        {"name": "dob", "value": "1990-01-01"}]}}, done) == []


def test_first_fill_fires_when_a_listed_field_goes_from_empty_to_set():
    assert rules_fired({"mobile": "919800000002", "email": "b@example.com"},
                       customer(2, mobile="919800000002")) == [("first_fill", 25)]


def test_first_fill_does_not_fire_for_a_field_already_rewarded():
    assert rules_fired({"mobile": "919800000002", "email": "b@example.com"},
                       customer(2, mobile="919800000002", fired={"first_fill:email"})) == []


def test_loyalty_conversion_fires_once():
    nl = customer(2, mobile="919800000002", type="NON_LOYALTY")
    applied = apply({"mobile": "919800000002", "type": "LOYALTY"}, nl)
    assert [(a.rule, a.points) for a in applied.awards] == [("loyalty_conversion", 50)]
    assert "loyalty_conversion" in applied.target.fired


def test_a_survivor_never_gets_a_bonus_the_victim_already_had():
    survivor = customer(2, mobile="919800000002", firstname="Ben", lastname="Ok",
                        extended={"dob": FieldValue("1990-01-01")})
    victim = customer(4, email="dana@example.com", type="NON_LOYALTY",
                      fired={"profile_completion", "first_fill:email"})
    applied = apply({"mobile": "919800000002", "email": "dana@example.com"}, survivor, victim)
    assert applied.merges and applied.awards == []


def test_a_merge_that_makes_the_survivor_loyalty_is_not_a_conversion():
    survivor = customer(2, mobile="919800000002", type="NON_LOYALTY")
    victim = customer(4, email="dana@example.com", type="LOYALTY", fired={"first_fill:email"})
    applied = apply({"mobile": "919800000002", "email": "dana@example.com", "type": "LOYALTY"}, survivor, victim,
                    config=org(CONF_AUTO_MERGE_LOYALTY_CUSTOMERS=True))  # a member is merged only then
    assert applied.target.type == "LOYALTY"
    assert [a.rule for a in applied.awards] == []


def test_an_award_raises_points_and_upgrades_the_tier_across_a_threshold():
    state = customer(1, loyalty_points=480, lifetime_points=480, slab_number=1,
                     points_summaries=[{"programId": 101, "loyaltyPoints": 480, "lifetimePoints": 480}])
    effects = apply_award(org(), state, 100, "profile_completion", NOW)
    assert effects == [
        {"type": "points", "awarded_points": 100, "total_points": 580, "rule": "profile_completion"},
        {"type": "slab", "previous_slab_name": "Bronze", "previous_slab_number": 1,
         "upgraded_slab_name": "Silver", "upgraded_slab_number": 2},
    ]
    assert (state.slab_number, state.tier_expiry_date) == (2, add_months(NOW, 12))
    assert state.points_summaries[0]["loyaltyPoints"] == 580


def test_an_award_below_the_next_threshold_keeps_the_tier():
    state = customer(1, loyalty_points=10, lifetime_points=10, slab_number=1)
    assert [e["type"] for e in apply_award(org(), state, 25, "first_fill", NOW)] == ["points"]


def test_the_slab_for_lifetime_points_is_the_highest_reached():
    slabs = [slab_for(org(), p) for p in (0, 499, 500, 2500)]
    assert [slab.number if slab else None for slab in slabs] == [1, 1, 2, 3]


def test_adding_months_keeps_the_day_within_the_month():
    from datetime import datetime

    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)
    assert add_months(datetime(2024, 1, 31), 1) == datetime(2024, 2, 29)
    assert add_months(datetime(2026, 11, 15), 14) == datetime(2028, 1, 15)


def test_decisions_read_the_state_after_the_update():
    before = customer(1, **COMPLETE_BUT_DOB)
    after = customer(1, **COMPLETE_BUT_DOB, extended={"dob": FieldValue("1990-01-01")})
    assert [a.key for a in decide_awards(org(), before, after, converted=False)] == ["profile_completion"]
