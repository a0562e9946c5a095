"""SPEC §3: finding the target, identifiers, profile fields and order, on plain data."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_updates.rules import fields
from customer_updates.rules.codes import Code
from customer_updates.rules.parse import ItemRejected
from customer_updates.rules.state import FieldValue
from tests.unit.builders import NOW, T0, apply, codes, customer, org


def failure(raw, *customers, config=None) -> Code:
    with pytest.raises(ItemRejected) as caught:
        apply(raw, *customers, config=config)
    return caught.value.code


ASHA = dict(mobile="919800000001", email="asha@example.com", firstname="Asha")


# -- finding the target -----------------------------------------------------------------------------------

def test_the_target_is_found_by_id_first():
    a, b = customer(1, **ASHA), customer(2, mobile="919800000002")
    assert apply({"id": 2, "firstname": "X"}, a, b).target.user_id == 2
    # Found by id, the mobile is a secondary identifier that differs from the target's: refused.
    assert failure({"id": 1, "mobile": "919800000002"}, a, b) == Code.PRIMARY_IDENTIFIER_UPDATE


def test_the_primary_identifier_is_tried_before_the_others():
    a = customer(1, mobile="919800000001")
    b = customer(2, mobile="919800000002", email="b@example.com", type="NON_LOYALTY")
    item = {"mobile": "919800000001", "email": "b@example.com"}
    # Mobile primary: a is the target and takes b's email by merging b (not a member).
    merged = apply(item, a, b)
    assert (merged.target.user_id, [m.victim.user_id for m in merged.merges]) == (1, [2])
    # Email primary: b is the target, and its mobile cannot change.
    assert failure(item, a, b, config=org(CONF_REGISTRATION_PRIMARY_KEY="EMAIL")) \
        == Code.IDENTIFIER_UPDATE_NOT_ALLOWED


def test_with_email_as_primary_the_email_holder_is_the_target():
    a = customer(1, mobile="919800000001", email="a@example.com")
    b = customer(2, mobile="919800000002", email="b@example.com")
    applied = apply({"email": "b@example.com", "firstname": "Bea"}, a, b,
                    config=org(CONF_REGISTRATION_PRIMARY_KEY="EMAIL"))
    assert applied.target.user_id == 2


def test_mobile_comes_before_external_id_and_email():
    a = customer(1, mobile="919800000001", external_id="EXT-1")
    b = customer(2, external_id="EXT-2")
    applied = apply({"external_id": "EXT-1", "mobile": "919800000001", "lastname": "R"}, a, b)
    assert applied.target.user_id == 1


def test_no_customer_found_fails_with_1012():
    assert failure({"mobile": "919800000009"}, customer(1, **ASHA)) == Code.CUSTOMER_NOT_FOUND


@pytest.mark.parametrize(("raw", "code"), [
    ({"mobile": "12ab"}, Code.INVALID_MOBILE),
    ({"mobile": "1234567"}, Code.INVALID_MOBILE),
    ({"email": "not-an-email"}, Code.INVALID_EMAIL),
    ({"external_id": "ab"}, Code.INVALID_EXTERNAL_ID),
])
def test_a_malformed_lookup_identifier_fails_with_its_code(raw, code):
    assert failure(raw, customer(1, **ASHA)) == code


def test_a_mobile_with_plus_finds_the_same_customer():
    assert apply({"mobile": "+919800000001", "lastname": "R"}, customer(1, **ASHA)).target.user_id == 1


def test_emails_are_matched_without_regard_to_case():
    assert apply({"email": "ASHA@Example.com", "lastname": "R"}, customer(1, **ASHA)).target.user_id == 1


def test_a_merged_victims_identifier_leads_to_the_survivor_with_91009():
    survivor = customer(1, **ASHA)
    victim = customer(2, mobile="919800000002", active=False, merged_into=1)
    applied = apply({"mobile": "919800000002", "lastname": "R"}, survivor, victim)
    assert applied.target.user_id == 1
    assert Code.SURVIVOR_RETRIEVED in codes(applied)


def test_a_merge_chain_is_followed_to_its_end():
    c = customer(3, mobile="919800000003")
    a = customer(1, mobile="919800000001", active=False, merged_into=3)
    b = customer(2, mobile="919800000002", active=False, merged_into=1)
    assert apply({"mobile": "919800000002", "lastname": "R"}, a, b, c).target.user_id == 3


# -- secondary identifiers ---------------------------------------------------------------------------------

def test_an_equal_secondary_identifier_changes_nothing():
    applied = apply({"mobile": "919800000001", "email": "asha@example.com"}, customer(1, **ASHA))
    assert applied.changes == []


def test_an_existing_primary_identifier_cannot_be_changed_91005():
    a = customer(1, **ASHA)
    assert failure({"email": "asha@example.com", "mobile": "919800000099"}, a) == Code.PRIMARY_IDENTIFIER_UPDATE


def test_an_existing_secondary_identifier_cannot_be_changed_91006():
    assert failure({"mobile": "919800000001", "email": "new@example.com"}, customer(1, **ASHA)) \
        == Code.IDENTIFIER_UPDATE_NOT_ALLOWED


def test_the_failure_message_names_the_identifier():
    with pytest.raises(ItemRejected) as caught:
        apply({"mobile": "919800000001", "email": "new@example.com"}, customer(1, **ASHA))
    assert caught.value.message == "email update is not allowed"


@pytest.mark.parametrize(("name", "value", "config"), [
    ("email", "ben@example.com", "CONF_ALLOW_EMAIL_UPDATE"),
    ("external_id", "EXT-77", "CONF_LOYALTY_ALLOW_EXTERNAL_ID_UPDATE"),
])
def test_an_empty_identifier_is_filled_only_when_the_org_allows_it(name, value, config):
    ben = customer(2, mobile="919800000002")
    assert failure({"mobile": "919800000002", name: value}, ben, config=org(**{config: False})) \
        == Code.IDENTIFIER_UPDATE_NOT_ALLOWED
    applied = apply({"mobile": "919800000002", name: value}, ben)
    assert getattr(applied.target, name) == value


def test_an_empty_mobile_is_filled_when_allowed():
    dana = customer(4, email="dana@example.com")
    assert apply({"email": "dana@example.com", "mobile": "919800000004"}, dana).target.mobile == "919800000004"
    assert failure({"email": "dana@example.com", "mobile": "919800000004"}, dana,
                   config=org(CONF_ALLOW_MOBILE_UPDATE="false")) == Code.IDENTIFIER_UPDATE_NOT_ALLOWED


def test_a_malformed_secondary_identifier_is_ignored_with_a_warning():
    applied = apply({"mobile": "919800000001", "email": "broken", "lastname": "R"}, customer(1, **ASHA))
    assert applied.target.lastname == "R"
    assert Code.SECONDARY_IDENTIFIER_IGNORED in codes(applied)


def test_an_identifier_held_by_another_customer_merges_it_into_the_target():
    ben = customer(2, mobile="919800000002")
    dana = customer(4, email="dana@example.com", loyalty_points=300, type="NON_LOYALTY")
    applied = apply({"mobile": "919800000002", "email": "dana@example.com"}, ben, dana)
    assert applied.target.email == "dana@example.com"
    assert applied.target.loyalty_points == 300
    assert [m.victim.user_id for m in applied.merges] == [4]
    assert applied.merges[0].victim.merged_into == 2
    assert Code.CUSTOMER_MERGED in codes(applied)


def test_applying_an_item_leaves_the_loaded_states_untouched():
    # The worker keeps the loaded states as "before" without copying them: rules must copy on write.
    ben = customer(2, mobile="919800000002", custom={"postcode": FieldValue("56001", T0)}, fired={"x"})
    dana = customer(4, email="dana@example.com", loyalty_points=300, extended={"city": FieldValue("Pune", T0)})
    pictures = [(vars(c).copy(), dict(c.custom), dict(c.extended), dict(c.subscriptions), set(c.fired))
                for c in (ben, dana)]
    apply({"mobile": "919800000002", "email": "dana@example.com", "firstname": "Ben", "type": "LOYALTY",
           "custom_fields": {"field": {"name": "postcode", "value": "560002"}},
           "extended_fields": {"field": {"name": "city", "value": "Kochi"}},
           "subscriptions": {"subscription": {"channel": "SMS", "priority": "TRANS", "is_subscribed": "1"}}},
          ben, dana)
    assert [(vars(c), c.custom, c.extended, c.subscriptions, c.fired) for c in (ben, dana)] == pictures


# -- profile fields ----------------------------------------------------------------------------------------

def test_names_change_and_are_audited_with_previous_and_new_values():
    applied = apply({"mobile": "919800000001", "firstname": "Ash", "lastname": "Rao"}, customer(1, **ASHA))
    assert {(c.field, c.previous, c.new) for c in applied.changes} == {
        ("firstname", "Asha", "Ash"), ("lastname", None, "Rao")}


def test_registered_on_before_the_minimum_fails_with_1034():
    assert failure({"mobile": "919800000001", "registered_on": "1990-01-01 00:00:00"}, customer(1, **ASHA)) \
        == Code.REGISTRATION_DATE_OUT_OF_RANGE


def test_registered_on_more_than_a_day_ahead_fails_with_1034():
    later = (NOW + timedelta(hours=25)).strftime("%Y-%m-%d %H:%M:%S")
    assert failure({"mobile": "919800000001", "registered_on": later}, customer(1, **ASHA)) \
        == Code.REGISTRATION_DATE_OUT_OF_RANGE
    soon = (NOW + timedelta(hours=23)).strftime("%Y-%m-%d %H:%M:%S")
    assert apply({"mobile": "919800000001", "registered_on": soon}, customer(1, **ASHA)).target.registered_on


def test_the_org_minimum_registration_date_is_configurable():
    config = org(CONF_MIN_REGISTRATION_DATE="2000-01-01 00:00:00")
    assert failure({"mobile": "919800000001", "registered_on": "1999-01-01 00:00:00"}, customer(1, **ASHA),
                   config=config) == Code.REGISTRATION_DATE_OUT_OF_RANGE


def test_known_tills_are_set_and_unknown_ones_warn():
    applied = apply({"mobile": "919800000001", "registered_till": "store.airport", "associated_with": "nowhere"},
                    customer(1, **ASHA))
    assert applied.target.registered_till == "store.airport"
    assert applied.target.associated_with is None
    assert Code.INVALID_ASSOCIATED_TILL in codes(applied)
    unknown = apply({"mobile": "919800000001", "registered_till": "nowhere"}, customer(1, **ASHA))
    assert Code.INVALID_REGISTERED_TILL in codes(unknown)


def test_a_non_loyalty_customer_is_converted_to_loyalty():
    applied = apply({"mobile": "919800000002", "type": "LOYALTY"}, customer(2, mobile="919800000002",
                                                                          type="NON_LOYALTY"))
    assert applied.target.type == "LOYALTY"


def test_a_loyalty_customer_cannot_become_non_loyalty_1046():
    assert failure({"mobile": "919800000001", "type": "NON_LOYALTY"}, customer(1, **ASHA)) \
        == Code.LOYALTY_TO_NON_LOYALTY


def test_conversion_needs_the_email_when_email_is_primary_1048():
    nl = customer(2, mobile="919800000002", type="NON_LOYALTY")
    assert failure({"mobile": "919800000002", "type": "LOYALTY"}, nl,
                   config=org(CONF_REGISTRATION_PRIMARY_KEY="EMAIL")) == Code.EMAIL_REQUIRED_FOR_LOYALTY


def test_conversion_needs_the_external_id_when_it_is_primary_1049():
    nl = customer(2, mobile="919800000002", type="NON_LOYALTY")
    assert failure({"mobile": "919800000002", "type": "LOYALTY"}, nl,
                   config=org(CONF_REGISTRATION_PRIMARY_KEY="EXTERNAL_ID")) == Code.EXTERNAL_ID_REQUIRED_FOR_LOYALTY


def test_custom_fields_are_set_and_unknown_or_invalid_ones_warn_1017():
    applied = apply({"mobile": "919800000001", "custom_fields": {"field": [
        {"name": "favourite_drink", "value": "mocha"},
        {"name": "shoe_size", "value": "7"},
        {"name": "postcode", "value": "12a"},
        {"name": "interests", "value": "x" * 251},
    ]}}, customer(1, **ASHA))
    assert {k: v.value for k, v in applied.target.custom.items()} == {"favourite_drink": "mocha"}
    assert sum(1 for w in applied.warnings if w.code == Code.INVALID_CUSTOM_FIELD) == 3


def test_a_custom_field_matching_its_regex_is_kept():
    applied = apply({"mobile": "919800000001", "custom_fields": {"field": [{"name": "postcode", "value": "560001"}]}},
                    customer(1, **ASHA))
    assert applied.target.custom["postcode"].value == "560001"


def test_a_multi_select_value_is_a_json_array_string():
    applied = apply({"mobile": "919800000001", "custom_fields": {"field": [
        {"name": "interests", "value": '["coffee", "jazz"]'}]}}, customer(1, **ASHA))
    assert applied.target.custom["interests"].value == '["coffee", "jazz"]'
    broken = apply({"mobile": "919800000001", "custom_fields": {"field": [
        {"name": "interests", "value": '["coffee", 3'}]}}, customer(1, **ASHA))
    assert Code.INVALID_CUSTOM_FIELD in codes(broken)


@pytest.mark.parametrize(("name", "value", "stored"), [
    ("dob", "1990-04-12 00:00:00", "1990-04-12"),
    ("dob", "1990-04-12", "1990-04-12"),
    ("kids", "2", "2"),
    ("height", "1.72", "1.72"),
    ("gender", "female", "Female"),
    ("city", "Pune", "Pune"),
])
def test_extended_fields_are_checked_against_their_type_and_normalised(name, value, stored):
    applied = apply({"mobile": "919800000001", "extended_fields": {"field": [{"name": name, "value": value}]}},
                    customer(1, **ASHA))
    assert applied.target.extended[name].value == stored


@pytest.mark.parametrize(("name", "value"), [
    ("dob", "yesterday"), ("kids", "two"), ("height", "tall"), ("gender", "cat"), ("unknown", "x"),
])
def test_an_invalid_or_unknown_extended_field_is_skipped_with_91015(name, value):
    applied = apply({"mobile": "919800000001", "extended_fields": {"field": [{"name": name, "value": value}]}},
                    customer(1, **ASHA))
    assert name not in applied.target.extended
    assert Code.EXTENDED_FIELD_FAILED in codes(applied)


def test_subscriptions_are_stored_per_channel_and_priority():
    applied = apply({"mobile": "919800000001", "subscriptions": {"subscription": [
        {"priority": "TRANS", "channel": "sms", "is_subscribed": "1", "scope": "all"},
        {"priority": "BULK", "channel": "email", "is_subscribed": "0"}]}}, customer(1, **ASHA))
    subs = {key: s.status for key, s in applied.target.subscriptions.items()}
    assert subs == {("SMS", "TRANS"): 1, ("EMAIL", "BULK"): 0}


def test_fraud_status_is_set():
    assert apply({"mobile": "919800000001", "fraud_status": "CONFIRMED"},
                 customer(1, **ASHA)).target.fraud_status == "CONFIRMED"


# -- order (SPEC §3.5) -------------------------------------------------------------------------------------

def test_a_change_older_than_the_stored_one_is_skipped_as_stale():
    stored = customer(1, **ASHA, stamps={"firstname": T0 + timedelta(minutes=5)})
    applied = apply({"mobile": "919800000001", "firstname": "Old", "lastname": "New"}, stored, issued_at=T0)
    assert applied.target.firstname == "Asha"
    assert applied.target.lastname == "New"
    assert applied.stale == ["firstname"]
    assert Code.STALE_FIELDS_SKIPPED in codes(applied)


def test_stale_custom_fields_are_skipped_too():
    stored = customer(1, **ASHA, custom={"favourite_drink": FieldValue("tea", T0 + timedelta(seconds=1))})
    applied = apply({"mobile": "919800000001", "custom_fields": {"field": [
        {"name": "favourite_drink", "value": "coffee"}]}}, stored, issued_at=T0)
    assert applied.target.custom["favourite_drink"].value == "tea"


def test_the_final_state_does_not_depend_on_delivery_order():
    first = {"mobile": "919800000001", "firstname": "One", "lastname": "L1"}
    second = {"mobile": "919800000001", "firstname": "Two"}
    t1, t2 = T0, T0 + timedelta(seconds=1)

    in_order = apply(second, apply(first, customer(1, **ASHA), issued_at=t1).target, issued_at=t2).target
    reversed_ = apply(first, apply(second, customer(1, **ASHA), issued_at=t2).target, issued_at=t1).target
    assert (in_order.firstname, in_order.lastname) == (reversed_.firstname, reversed_.lastname) == ("Two", "L1")


def test_rules_never_change_the_states_they_are_given():
    asha = customer(1, **ASHA)
    apply({"mobile": "919800000001", "firstname": "Changed"}, asha)
    assert asha.firstname == "Asha"


def test_a_failed_item_changes_nothing_even_after_a_merge_was_planned():
    ben = customer(2, mobile="919800000002", external_id="EXT-2")
    dana = customer(4, email="dana@example.com")
    with pytest.raises(ItemRejected):
        apply({"mobile": "919800000002", "email": "dana@example.com", "external_id": "EXT-9"}, ben, dana)
    assert dana.active and ben.email is None


def test_updated_on_moves_only_when_something_changed():
    assert apply({"mobile": "919800000001", "firstname": "Asha"}, customer(1, **ASHA)).target.updated_on is None
    assert apply({"mobile": "919800000001", "firstname": "A"}, customer(1, **ASHA)).target.updated_on == NOW


def test_control_characters_make_an_email_malformed_and_a_field_value_invalid():
    assert failure({"email": "a\x00b@example.com"}, customer(1, **ASHA)) == Code.INVALID_EMAIL
    applied = apply({"mobile": "919800000001", "custom_fields": {"field": [{"name": "favourite_drink",
                                                                            "value": "te\x00a"}]},
                     "extended_fields": {"field": [{"name": "city", "value": "Pu\x00ne"}]}}, customer(1, **ASHA))
    assert applied.target.custom == {} and applied.target.extended == {}
    assert {Code.INVALID_CUSTOM_FIELD, Code.EXTENDED_FIELD_FAILED} <= codes(applied)


def _date_by_formats_only(text: str) -> str | None:
    text = text.strip()
    for fmt in fields._DATE_FORMATS:
        try:
            return datetime.strptime(text[:19] if "T" in fmt else text, fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


@given(st.from_regex(r"\A[0-9+\- W]{4}-[0-9 W+]{2}-[0-9 ]{2}\Z") | st.dates().map(str))
def test_a_date_read_the_quick_way_is_what_the_accepted_formats_make_of_it(text):
    assert fields._as_date(text) == _date_by_formats_only(text)
