"""The same identifiers in two orgs: a command of one org never reads or changes the other (SPEC §1)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from customer_updates.models import tables as t
from customer_updates.services.apply import BatchApplier
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import OrgCache

SHARED_MOBILE = "919800000001"  # in examples: Asha in org 1 and "Asha (org 2)" in org 2
SHARED_EMAIL = "asha@example.com"


def _apply(url: str, *commands: dict[str, Any]) -> dict[str, dict[str, Any]]:
    with session_scope(url) as session:
        outcome = BatchApplier(session, OrgCache(0)).run(list(commands))
    return {f"{r.org_id}:{r.request_id}": r.result for r in outcome.results}


def _command(org_id: int, request_id: str, customer: dict[str, Any], at: str = "2026-01-01T10:00:00") -> dict:
    return {"org_id": org_id, "request_id": request_id, "issued_at": at, "customer": customer}


def _org_rows(url: str, org_id: int) -> list[tuple]:
    with session_scope(url) as session:
        rows = session.scalars(select(t.Customer).where(t.Customer.org_id == org_id).order_by(t.Customer.user_id))
        return [(r.user_id, r.mobile, r.email, r.firstname, r.lastname, r.active, r.merged_into, r.loyalty_points)
                for r in rows]


def _user_id(url: str, org_id: int, mobile: str) -> int:
    with session_scope(url) as session:
        user_id = session.scalar(select(t.Customer.user_id).where(t.Customer.org_id == org_id,
                                                                  t.Customer.mobile == mobile))
        assert user_id is not None, f"no customer {mobile} in org {org_id}"
        return int(user_id)


def test_an_update_by_a_shared_mobile_changes_only_its_own_org(loaded_db):
    org2_before = _org_rows(loaded_db, 2)

    results = _apply(loaded_db, _command(1, "r1", {"mobile": SHARED_MOBILE, "lastname": "Org-One"}))

    assert results["1:r1"]["item_status"]["code"] == "1000"
    assert results["1:r1"]["user_id"] == _user_id(loaded_db, 1, SHARED_MOBILE)
    assert _org_rows(loaded_db, 2) == org2_before


def test_a_merge_in_one_org_never_takes_the_other_orgs_holder_of_the_identifier(loaded_db):
    # In org 1 the email belongs to Asha, made a contact here (an update merges only a NON_LOYALTY holder):
    # giving it to Eli merges Asha into Eli, in org 1 only.
    with session_scope(loaded_db) as session:
        session.execute(update(t.Customer).where(t.Customer.org_id == 1, t.Customer.email == SHARED_EMAIL)
                        .values(type="NON_LOYALTY"))
    org2_before = _org_rows(loaded_db, 2)

    results = _apply(loaded_db, _command(1, "merge", {"mobile": "919800000005", "email": SHARED_EMAIL}))

    assert results["1:merge"]["item_status"]["code"] == "1000"
    with session_scope(loaded_db) as session:
        merges = list(session.scalars(select(t.Merge)))
    assert [m.org_id for m in merges] == [1]
    assert _org_rows(loaded_db, 2) == org2_before


def test_a_lookup_by_an_identifier_or_id_of_another_org_finds_nothing(loaded_db):
    org1_before = _org_rows(loaded_db, 1)
    org1_user = _user_id(loaded_db, 1, "919800000005")

    results = _apply(loaded_db,
                     _command(2, "by-mobile", {"mobile": "919800000005", "firstname": "Intruder"}),
                     _command(2, "by-id", {"id": org1_user, "firstname": "Intruder"}),
                     _command(2, "by-email", {"email": "chen@example.com", "firstname": "Intruder"}))

    assert {k: r["item_status"]["code"] for k, r in results.items()} == {
        "2:by-mobile": "1012", "2:by-id": "1012", "2:by-email": "1012"}
    assert _org_rows(loaded_db, 1) == org1_before


def test_the_same_request_id_in_two_orgs_is_two_commands(loaded_db):
    results = _apply(loaded_db,
                     _command(1, "same", {"mobile": SHARED_MOBILE, "firstname": "One"}),
                     _command(2, "same", {"email": SHARED_EMAIL, "firstname": "Two"}))

    assert results["1:same"]["firstname"] == "One"
    assert results["2:same"]["firstname"] == "Two"
    assert [r[3] for r in _org_rows(loaded_db, 2)] == ["Two"]
    again = _apply(loaded_db, _command(2, "same", {"email": SHARED_EMAIL, "firstname": "Two"}))
    assert again["2:same"] == results["2:same"]
    with session_scope(loaded_db) as session:
        audit = list(session.execute(select(t.AuditEntry.org_id, t.AuditEntry.new)
                                     .where(t.AuditEntry.request_id == "same")))
    assert sorted(audit) == [(1, "One"), (2, "Two")]
