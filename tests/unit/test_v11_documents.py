"""The v1.1 documents have the original API's keys and JSON types (SPEC §6), in JSON and in XML, and the
rules accept the original's documented request (issue: a true drop-in for /v1.1/customer/update)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from customer_updates.http.xml import to_xml
from customer_updates.models import v11
from customer_updates.models.results import batch_response, customer_item, failed_item, item_status, wire_item
from customer_updates.rules.codes import Code
from customer_updates.rules.parse import ItemRejected, parse_item
from customer_updates.rules.side_effects import apply_award
from tests.unit.builders import NOW, apply, customer, org
from tests.v11_shapes import from_xml, nulls, sample, shape_problems, xml_key_problems


def _result(raw: Any, *customers: Any) -> dict[str, Any]:
    """One item's result as the worker makes it (services/apply.py), without a database."""
    config = org()
    try:
        applied = apply(raw, *customers, config=config)
    except ItemRejected as exc:
        return failed_item(raw, exc.code, exc.message)
    projection = applied.target.copy()
    effects = [e for award in applied.awards for e in apply_award(config, projection, award.points, award.rule, NOW)]
    status = item_status(Code.SUCCESS, warnings=[(w.code, w.message) for w in applied.warnings])
    return customer_item(config, applied.target, status, effects)


def _member() -> Any:
    # An imported LOYALTY member with no points and no stored slab, as the sample's customer.
    return customer(173035394, mobile="44700900015", firstname="Ritta", lastname="James", type="LOYALTY")


def _documented_request_response() -> dict[str, Any]:
    items = [_result(item, _member()) for item in sample("update-request.json")["root"]["customer"]]
    return batch_response(items)


def _all_failed_response() -> dict[str, Any]:
    return batch_response([_result({"id": "172157568", "firstname": "X"}, _member()),
                           _result({"email": "", "firstname": "X"}, _member())])


def test_the_documented_request_is_accepted_and_answers_the_documented_shape():
    response = _documented_request_response()

    item = response["response"]["customers"]["customer"][0]
    assert item["item_status"]["code"] == "1000", item["item_status"]
    assert shape_problems(sample("update-response.json"), response) == []
    assert nulls(response) == []
    v11.checked_batch(response)


def test_an_all_failed_batch_answers_the_documented_shape():
    response = _all_failed_response()

    assert response["response"]["status"]["code"] == 500
    assert [i["item_status"]["code"] for i in response["response"]["customers"]["customer"]] == ["1012", "1104"]
    assert shape_problems(sample("all-failed-response.json"), response) == []
    v11.checked_batch(response)


@pytest.mark.parametrize("make, golden", [(_documented_request_response, "update-response.json"),
                                          (_all_failed_response, "all-failed-response.json")])
def test_the_xml_form_has_every_element_of_the_original_s_xml(make, golden):
    ours = from_xml(to_xml(make()))

    assert xml_key_problems(from_xml(to_xml(sample(golden))), ours) == []


def test_the_warnings_are_code_strings_whose_texts_are_appended_to_the_message():
    item = _result({"mobile": "44700900015", "custom_fields": {"field": [{"name": "age", "value": "1"}]},
                    "extended_fields": {"field": [{"name": "Nationality", "value": "Indian"}]}}, _member())

    status = item["item_status"]
    assert status["warnings"]["warning"] == ["1017", "91015"]
    assert status["message"] == ("Customer successfully updated, Provided custom field is invalid, "
                                 "Failed to update extended fields")
    assert [d["code"] for d in status["warning_details"]] == ["1017", "91015"]
    assert "age" in status["warning_details"][0]["message"]


def test_an_imported_member_without_points_is_in_the_lowest_slab():
    item = _result({"mobile": "44700900015"}, _member())

    assert item["current_slab"] == "Bronze"
    summary = item["points_summaries"]["points_summary"][0]
    assert (summary["currentSlab"], summary["slabSNo"], summary["nextSlab"], summary["nextSlabSerialNumber"]) == (
        "Bronze", "1", "Silver", "2")


def test_a_non_loyalty_customer_is_in_no_slab_and_its_empty_values_are_empty_strings():
    item = _result({"mobile": "44700900015"}, customer(5, mobile="44700900015", type="NON_LOYALTY"))

    assert (item["current_slab"], item["email"], item["external_id"], item["tier_expiry_date"]) == ("", "", "", "")
    assert item["source"] == "instore"
    assert item["points_summaries"]["points_summary"][0]["totalPoints"] == ""
    assert nulls(item) == []


def test_a_member_s_first_points_are_no_upgrade_into_the_lowest_slab():
    state = _member()
    effects = apply_award(org(), state, 100, "profile_completion", NOW)

    assert [e["type"] for e in effects] == ["points"]
    assert state.slab_number == 1


def test_an_empty_fraud_status_counts_as_not_passed():
    assert parse_item({"mobile": "44700900015", "fraud_status": {"status": ""}}).fraud_status is None
    assert parse_item({"mobile": "44700900015", "fraud_status": ""}).fraud_status is None
    assert parse_item({"mobile": "44700900015", "fraud_status": {"status": "confirmed"}}).fraud_status == "CONFIRMED"
    with pytest.raises(ItemRejected):
        parse_item({"mobile": "44700900015", "fraud_status": {"status": "MAYBE"}})


def test_an_id_that_belongs_to_nobody_fails_even_beside_a_valid_mobile():
    item = _result({"id": "999", "mobile": "44700900015", "firstname": "Not me"}, _member())

    assert item["item_status"]["code"] == "1012"
    assert "user_id" not in item


def test_a_malformed_external_id_beside_a_valid_email_only_warns():
    member = customer(8, mobile="44700900015", email="ritta@example.com", type="LOYALTY")

    item = _result({"external_id": "x", "email": "ritta@example.com", "firstname": "Ritta"}, member)

    assert item["item_status"]["code"] == "1000"
    assert item["item_status"]["warnings"]["warning"] == [str(int(Code.SECONDARY_IDENTIFIER_IGNORED))]


def test_a_malformed_email_beside_a_valid_mobile_only_warns():
    item = _result({"mobile": "44700900015", "email": "not-an-address", "firstname": "Ritta"}, _member())

    assert item["item_status"]["code"] == "1000"


@pytest.mark.parametrize("raw, code", [({"external_id": "x"}, "1003"), ({"email": "nope"}, "1002"),
                                       ({"mobile": "12", "email": "nope"}, "1001")])
def test_only_malformed_identifiers_fail_with_the_malformed_one_s_code(raw, code):
    assert _result(raw, _member())["item_status"]["code"] == code


def test_a_well_formed_identifier_that_finds_nobody_fails_with_1012_beside_a_malformed_one():
    assert _result({"mobile": "919999999999", "email": "nope"}, _member())["item_status"]["code"] == "1012"


def test_the_model_refuses_the_old_numeric_types_and_nulls():
    good = _documented_request_response()
    for change in (lambda d: d["response"]["status"].update(total=1),
                   lambda d: d["response"]["customers"]["customer"][0]["item_status"].update(code=1000),
                   lambda d: d["response"]["customers"]["customer"][0]["subscriptions"]["subscription"][0]
                   .update(status=1),
                   lambda d: d["response"]["customers"]["customer"][0]["points_summaries"]["points_summary"][0]
                   .update(redeemed=0)):
        bad = copy.deepcopy(good)
        change(bad)
        with pytest.raises(ValidationError):
            v11.checked_batch(bad)
    bad = copy.deepcopy(good)
    bad["response"]["customers"]["customer"][0]["current_slab"] = None
    with pytest.raises(ValidationError):
        v11.checked_batch(bad)


def test_a_result_stored_with_the_former_types_is_read_in_the_original_s():
    legacy = {"user_id": 3, "mobile": "919800000003", "email": None, "current_slab": None,
              "points_summaries": {"points_summary": [{"programId": 101, "redeemed": 0, "currentSlab": None}]},
              "subscriptions": {"subscription": [{"channel": "SMS", "priority": "TRANS", "scope": "ALL",
                                                  "status": "1"}]},
              "custom_fields": {"field": []}, "extended_fields": {"field": []},
              "item_status": {"success": "true", "code": 1000, "message": "Customer successfully updated",
                              "warnings": {"warning": [{"code": 91009, "message": "user_id 3"}]}}}

    item = wire_item(legacy)

    v11.checked_item(item)
    assert item["item_status"]["warnings"]["warning"] == ["91009"]
    assert (item["email"], item["current_slab"], item["source"]) == ("", "", "instore")
    assert wire_item(item) is item  # current results pass untouched
