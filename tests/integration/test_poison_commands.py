"""A command no store can keep fails alone with code 400 naming its field; the good commands of the same
message get their own results (issue: a lone surrogate poisoned its whole message)."""

from __future__ import annotations

from typing import Any

import pytest

from customer_updates.models.commands import payload_hash
from customer_updates.services.apply import BatchApplier
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import OrgCache


def _command(request_id: str, customer: dict[str, Any]) -> dict[str, Any]:
    return {"org_id": 1, "request_id": request_id, "issued_at": "2030-01-01T00:00:00", "customer": customer}


@pytest.mark.parametrize(("value", "reason"), [
    ("\ud800", "lone surrogate"), (float("inf"), "not finite"), (float("nan"), "not finite"),
    (2 ** 70, "beyond 64 bits")])
def test_a_command_with_a_value_no_store_keeps_fails_alone_and_its_neighbours_apply(loaded_db, value, reason):
    commands = [_command("good-1", {"mobile": "919800000001", "firstname": "Asha2"}),
                _command("bad", {"mobile": "919800000002", "lastname": value}),
                _command("good-2", {"mobile": "919800000003", "lastname": "Li2"})]
    with session_scope(loaded_db) as session:
        outcome = BatchApplier(session, OrgCache(60.0)).run(commands)
    results = {r.request_id: r.result["item_status"] for r in outcome.results}
    assert int(results["good-1"]["code"]) == 1000 and int(results["good-2"]["code"]) == 1000
    assert int(results["bad"]["code"]) == 400
    assert "customer.lastname" in results["bad"]["message"] and reason in results["bad"]["message"]
    assert not outcome.undecodable


def test_a_kombu_type_tag_in_client_data_hashes_as_the_producer_hashed_it(loaded_db):
    customer = {"mobile": "919800000001", "firstname": {"__type__": "datetime", "__value__": "2024-01-01"}}
    with session_scope(loaded_db) as session:
        outcome = BatchApplier(session, OrgCache(60.0)).run([_command("tagged", customer)])
    assert outcome.results[0].payload_hash == payload_hash(customer)
