"""SPEC §2 and §3.1: the shape of one item."""

from __future__ import annotations

import pytest

from customer_updates.rules.codes import Code
from customer_updates.rules.parse import ItemRejected, parse_item


def rejected(raw: object) -> Code:
    with pytest.raises(ItemRejected) as caught:
        parse_item(raw)
    return caught.value.code


def test_an_item_needs_at_least_one_identifier():
    assert rejected({"firstname": "A"}) == Code.NO_IDENTIFIER


def test_an_empty_identifier_counts_as_not_passed():
    assert rejected({"mobile": "", "email": "", "firstname": "A"}) == Code.NO_IDENTIFIER


def test_a_non_numeric_id_is_an_invalid_identifier():
    assert rejected({"id": "abc"}) == Code.NO_IDENTIFIER


def test_an_item_that_is_not_an_object_is_invalid_input():
    assert rejected(["mobile"]) == Code.INVALID_INPUT
    assert rejected("mobile") == Code.INVALID_INPUT


def test_names_are_trimmed_and_limited_to_100_characters():
    assert parse_item({"mobile": "919800000001", "firstname": "  Asha "}).firstname == "Asha"
    assert rejected({"mobile": "919800000001", "firstname": "x" * 101}) == Code.INVALID_INPUT


def test_a_megabyte_string_fails_the_item_with_a_clear_message():
    with pytest.raises(ItemRejected) as caught:
        parse_item({"mobile": "919800000001", "lastname": "x" * 1_000_000})
    assert "lastname" in caught.value.message


def test_a_wrong_type_names_the_field():
    with pytest.raises(ItemRejected) as caught:
        parse_item({"mobile": "919800000001", "firstname": {"a": 1}})
    assert caught.value.code == Code.INVALID_INPUT
    assert "firstname" in caught.value.message


def test_registered_on_must_have_the_v11_format():
    assert rejected({"mobile": "919800000001", "registered_on": "2020-01-01"}) == Code.INVALID_INPUT


def test_type_accepts_only_loyalty_or_non_loyalty():
    assert rejected({"mobile": "919800000001", "type": "GOLD"}) == Code.INVALID_INPUT
    assert parse_item({"mobile": "919800000001", "type": "loyalty"}).type == "LOYALTY"


@pytest.mark.parametrize(("entry", "code"), [
    ({"priority": "TRANS", "channel": "fax", "is_subscribed": "1"}, Code.INVALID_CHANNEL),
    ({"priority": "URGENT", "channel": "sms", "is_subscribed": "1"}, Code.INVALID_PRIORITY),
    ({"priority": "TRANS", "channel": "sms", "is_subscribed": "1", "scope": "some"}, Code.INVALID_SCOPE),
    ({"priority": "TRANS", "channel": "sms", "is_subscribed": "yes"}, Code.INVALID_SUBSCRIPTION_STATUS),
])
def test_each_subscription_rule_has_its_code(entry, code):
    assert rejected({"mobile": "919800000001", "subscriptions": {"subscription": [entry]}}) == code


def test_a_single_object_is_accepted_where_a_list_is_expected():
    item = parse_item({
        "mobile": "919800000001",
        "custom_fields": {"field": {"name": "favourite_drink", "value": "mocha"}},
        "extended_fields": {"field": {"name": "city", "value": "Pune"}},
        "subscriptions": {"subscription": {"priority": "bulk", "channel": "SMS", "is_subscribed": 0}},
    })
    assert item.custom_fields == [("favourite_drink", "mocha")]
    assert item.extended_fields == [("city", "Pune")]
    assert [(s.channel, s.priority, s.status) for s in item.subscriptions] == [("SMS", "BULK", 0)]


def test_fraud_status_is_an_object_or_a_plain_string():
    assert parse_item({"mobile": "919800000001", "fraud_status": {"status": "confirmed"}}).fraud_status == "CONFIRMED"
    assert parse_item({"mobile": "919800000001", "fraud_status": "NONE"}).fraud_status == "NONE"
    assert rejected({"mobile": "919800000001", "fraud_status": "MAYBE"}) == Code.INVALID_INPUT


def test_numbers_are_accepted_as_identifier_strings():
    assert parse_item({"mobile": 919800000001}).identifiers == {"mobile": "919800000001"}


def test_a_nul_character_in_a_name_is_refused_before_it_reaches_the_database():
    with pytest.raises(ItemRejected) as caught:
        parse_item({"mobile": "919800000001", "firstname": "A\x00B"})
    assert (caught.value.code, "NUL" in caught.value.message) == (Code.INVALID_INPUT, True)
