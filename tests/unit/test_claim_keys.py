"""Which raw commands have a request id to claim (customer_updates/messaging/claims.py); no Redis needed."""

from __future__ import annotations

from customer_updates.messaging import claims


def test_a_command_without_an_org_or_request_id_has_no_claim_key():
    assert claims.key_of({"org_id": 1, "request_id": "r"}) == (1, "r")
    assert claims.key_of({"org_id": True, "request_id": "r"}) is None
    assert claims.key_of({"org_id": 1}) is None
    assert claims.key_of("not a command") is None
