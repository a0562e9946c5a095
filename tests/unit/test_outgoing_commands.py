"""The producer's fast path builds the same envelope pydantic did, and refuses the same payloads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from customer_updates.errors import InvalidBody
from customer_updates.messaging import outgoing
from customer_updates.models.commands import Command

ITEM = {"mobile": "919800000001", "custom_fields": {"field": [{"name": "a", "value": "b"}]}}


@pytest.mark.parametrize("moment", [datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, 3, 4, 5, 678901)])
@pytest.mark.parametrize("request_id", ["r-1", "x" * 100])
def test_the_fast_envelope_is_what_the_model_dumps(moment, request_id):
    fast = outgoing.command(7, ITEM, request_id, moment, None)
    model = Command(org_id=7, request_id=request_id, issued_at=moment, customer=ITEM)
    assert fast == {**model.model_dump(mode="json", exclude_none=True), "customer": ITEM}


def test_what_the_fast_path_does_not_take_is_still_checked_by_the_model():
    aware = outgoing.command(7, ITEM, "r", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), {"source": "crm"})
    assert aware["issued_at"] == "2026-01-02T03:04:05" and aware["user_context"] == {"source": "crm"}
    with pytest.raises(InvalidBody, match="request_id"):
        outgoing.command(7, ITEM, "r" * 101, None, None)
    with pytest.raises(InvalidBody, match="request_id"):
        outgoing.command(7, ITEM, "bad\x00id", None, None)
    with pytest.raises(InvalidBody, match="org_id"):
        outgoing.command(2 ** 63, ITEM, None, None, None)


@pytest.mark.parametrize(("value", "reason"), [
    (float("nan"), "not finite"), (float("inf"), "not finite"), (2 ** 63, "64 bits"), (-(2 ** 63) - 1, "64 bits"),
    (2 ** 64, "64 bits"), ("\ud800", "lone surrogate"), (datetime(2026, 1, 1), "customer"), ({1, 2}, "customer"),
])
def test_an_update_the_queue_cannot_carry_is_refused_naming_why(value, reason):
    with pytest.raises(InvalidBody, match=reason):
        outgoing.update(1, {"mobile": "919800000001", "lastname": value}, None, None, None)


@pytest.mark.parametrize("value", [None, 2 ** 63 - 1, -(2 ** 63), 1.5, "Zoë", "1234567890123456789012", {"1": [True]}])
def test_what_json_and_the_store_can_carry_passes(value):
    out = outgoing.update(1, {"mobile": "919800000001", "lastname": value}, "rid", None, None)
    assert out.commands[0]["customer"]["lastname"] == value and out.checks[0][:2] == (1, "rid")
