"""SPEC §3.3 and §4: the guard on automatic merges, merge requests and unmerges, on plain data."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from customer_updates.models.results import item_status
from customer_updates.rules.codes import Code
from customer_updates.rules.directory import Directory
from customer_updates.rules.merge_request import request_merge
from customer_updates.rules.parse import ItemRejected
from customer_updates.rules.state import FieldValue, SubscriptionState
from customer_updates.rules.state_json import dump_state
from customer_updates.rules.unmerge import MergeRecord, unmerge
from tests.unit.builders import NOW, T0, apply, customer, org

LATER = datetime(2026, 6, 2, 9, 0, 0)


def member(user_id: int, **values):
    return customer(user_id, type="LOYALTY", **values)


def contact(user_id: int, **values):
    return customer(user_id, type="NON_LOYALTY", **values)


def test_a_non_loyalty_holder_of_the_identifier_is_merged_as_before():
    applied = apply({"mobile": "919800000001", "email": "b@example.com"},
                    member(1, mobile="919800000001"), contact(2, email="b@example.com", loyalty_points=5))
    assert [m.victim.user_id for m in applied.merges] == [2]
    assert applied.target.email == "b@example.com"
    assert [w.code for w in applied.warnings] == [Code.CUSTOMER_MERGED]


def test_a_member_holding_the_identifier_is_not_taken_over_and_the_rest_of_the_item_applies():
    applied = apply({"mobile": "919800000001", "email": "b@example.com", "firstname": "Ana"},
                    member(1, mobile="919800000001"), member(2, email="b@example.com", loyalty_points=900))
    assert applied.merges == []
    assert (applied.target.email, applied.target.firstname, applied.target.loyalty_points) == (None, "Ana", 0)
    [warning] = applied.warnings
    assert warning.code == Code.IDENTIFIER_OCCUPIED == 91007
    assert warning.message == "email is already occupied by some other user, ignoring it"


def test_the_item_status_message_names_the_occupied_identifier():
    applied = apply({"mobile": "919800000001", "email": "b@example.com"},
                    member(1, mobile="919800000001"), member(2, email="b@example.com"))
    status = item_status(Code.SUCCESS, warnings=[(w.code, w.message) for w in applied.warnings])
    assert status["message"] == ("Customer successfully updated, "
                                 "email is already occupied by some other user, ignoring it")
    assert status["warnings"]["warning"] == ["91007"]


def test_the_org_config_restores_automatic_merges_of_members():
    applied = apply({"mobile": "919800000001", "email": "b@example.com"},
                    member(1, mobile="919800000001"), member(2, email="b@example.com", loyalty_points=900),
                    config=org(CONF_AUTO_MERGE_LOYALTY_CUSTOMERS=True))
    assert [m.victim.user_id for m in applied.merges] == [2]
    assert applied.target.loyalty_points == 900


def test_a_merge_request_merges_two_members():
    result = request_merge(org(), 1, 2, Directory([member(1, mobile="919800000001", loyalty_points=10),
                                                  member(2, email="b@example.com", loyalty_points=20)]), NOW)
    assert (result.survivor.loyalty_points, result.survivor.email, result.identifier) == (30, "b@example.com",
                                                                                          "request")
    assert (result.victim.active, result.victim.merged_into) == (False, 1)


@pytest.mark.parametrize(("survivor", "victim", "code"), [
    (1, 1, Code.MERGE_SAME_CUSTOMER),
    (1, 9, Code.MERGE_CUSTOMER_NOT_FOUND),
    (9, 1, Code.MERGE_CUSTOMER_NOT_FOUND),
    (1, 3, Code.MERGE_CUSTOMER_INACTIVE),
    (3, 1, Code.MERGE_CUSTOMER_INACTIVE),
])
def test_a_merge_request_is_refused_with_a_code_of_its_own(survivor, victim, code):
    directory = Directory([member(1), member(2), member(3, active=False, merged_into=2)])
    with pytest.raises(ItemRejected) as refused:
        request_merge(org(), survivor, victim, directory, NOW)
    assert refused.value.code == code


def merged_pair(a, b, **configs):
    result = request_merge(org(**configs), a.user_id, b.user_id, Directory([a, b]), NOW)
    record = MergeRecord(7, a.user_id, b.user_id, result.moved)
    return result, record


def rich_pair():
    a = contact(1, mobile="919800000001", firstname=None, loyalty_points=100, lifetime_points=100,
                lifetime_purchases=Decimal("10.50"), registered_on=datetime(2022, 1, 1),
                points_summaries=[{"programId": 101, "loyaltyPoints": 100, "lifetimePoints": 100}],
                custom={"postcode": FieldValue("56001", T0)}, fired={"first_fill:mobile"},
                stamps={"mobile": T0})
    b = member(2, email="b@example.com", external_id="EXT-2", firstname="Bea", loyalty_points=600,
               lifetime_points=600, lifetime_purchases=Decimal("3.25"), registered_on=datetime(2020, 1, 1),
               slab_number=2, tier_expiry_date=datetime(2027, 1, 1), fraud_status="CONFIRMED",
               points_summaries=[{"programId": 101, "loyaltyPoints": 600, "lifetimePoints": 600},
                                 {"programId": 202, "loyaltyPoints": 5}],
               custom={"favourite_drink": FieldValue("tea", T0)},
               subscriptions={("EMAIL", "BULK"): SubscriptionState(1, "ALL", T0)},
               fired={"first_fill:email", "profile_completion"}, stamps={"email": T0, "firstname": T0})
    return a, b


def test_an_unmerge_right_after_a_merge_gives_both_customers_back_exactly():
    a, b = rich_pair()
    merged, record = merged_pair(a, b)
    result = unmerge(org(), 2, record, Directory([merged.survivor, merged.victim]), LATER)
    for before, after in ((a, result.survivor), (b, result.victim)):
        got, want = dump_state(after), dump_state(before)
        got.pop("updated_on"), want.pop("updated_on")
        assert got == want


def test_a_field_a_later_change_set_since_the_merge_stays_on_the_survivor():
    a, b = rich_pair()
    merged, record = merged_pair(a, b)
    survivor = merged.survivor.copy()
    survivor.firstname, survivor.stamps["firstname"] = "Later", LATER
    result = unmerge(org(), 2, record, Directory([survivor, merged.victim]), LATER)
    assert result.survivor.firstname == "Later"
    assert "firstname" in result.kept
    assert result.survivor.email is None and result.victim.email == "b@example.com"


def test_an_unmerge_is_refused_when_the_survivor_spent_the_points_the_victim_brought():
    a, b = rich_pair()
    merged, record = merged_pair(a, b)
    survivor = merged.survivor.copy()
    survivor.loyalty_points = 599
    with pytest.raises(ItemRejected) as refused:
        unmerge(org(), 2, record, Directory([survivor, merged.victim]), LATER)
    assert refused.value.code == Code.UNMERGE_POINTS_REDEEMED


def test_an_unmerge_is_refused_when_the_survivor_was_merged_further():
    a, b = rich_pair()
    merged, record = merged_pair(a, b)
    survivor = merged.survivor.copy()
    survivor.active, survivor.merged_into = False, 5
    with pytest.raises(ItemRejected) as refused:
        unmerge(org(), 2, record, Directory([survivor, merged.victim, member(5)]), LATER)
    assert refused.value.code == Code.UNMERGE_SURVIVOR_MERGED


def test_an_unmerge_of_a_customer_that_is_not_merged_or_undone_already_is_refused():
    a, b = rich_pair()
    merged, record = merged_pair(a, b)
    directory = Directory([merged.survivor, merged.victim])
    for victim_id, given in ((1, record), (2, None), (2, replace(record, undone=True)), (9, record)):
        with pytest.raises(ItemRejected) as refused:
            unmerge(org(), victim_id, given, directory, LATER)
        assert refused.value.code == Code.UNMERGE_NOT_MERGED


def test_an_unmerge_is_refused_when_another_customer_took_an_identifier_of_the_victim():
    a = member(1, mobile="919800000001")
    b = member(2, mobile="919800000002")
    merged, record = merged_pair(a, b)
    taker = member(3, mobile="919800000002")  # the victim's mobile was free while it was merged
    with pytest.raises(ItemRejected) as refused:
        unmerge(org(), 2, record, Directory([merged.survivor, merged.victim, taker]), LATER)
    assert refused.value.code == Code.UNMERGE_IDENTIFIER_TAKEN


def test_an_unmerge_works_the_tiers_out_again_from_the_points():
    a = member(1, mobile="919800000001", lifetime_points=300, loyalty_points=300, slab_number=1)
    b = member(2, email="b@example.com", lifetime_points=300, loyalty_points=300, slab_number=1)
    merged, record = merged_pair(a, b)
    survivor = merged.survivor.copy()
    survivor.slab_number, survivor.tier_expiry_date = 2, datetime(2027, 6, 1)  # an award upgraded it
    result = unmerge(org(), 2, record, Directory([survivor, merged.victim]), LATER)
    assert (result.survivor.slab_number, result.survivor.tier_expiry_date) == (1, None)
    assert result.victim.slab_number == 1


def test_a_merge_undone_at_once_leaves_the_survivors_tier_as_it_was():
    a = member(1, mobile="919800000001", lifetime_points=300, loyalty_points=300, slab_number=1)
    b = member(2, email="b@example.com", lifetime_points=300, loyalty_points=300, slab_number=1)
    first, _ = merged_pair(a, b)  # 600 points between them: Silver
    c = member(3, external_id="EXT-3", lifetime_points=10, loyalty_points=10, slab_number=1)
    second, record = merged_pair(first.survivor, c)
    result = unmerge(org(), 3, MergeRecord(8, 1, 3, record.moved),
                     Directory([second.survivor, second.victim, first.victim]), LATER)
    tier = (result.survivor.slab_number, result.survivor.tier_expiry_date)
    assert tier == (first.survivor.slab_number, first.survivor.tier_expiry_date)
    assert tier[0] == 2
