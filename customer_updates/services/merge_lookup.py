"""Which customer a merge request's identifiers name (SPEC §4, HTTP `request/add`): a read, no lock.

The merge itself is a command of the queue and checks again under its locks (unknown, inactive, the
same customer); this lookup only turns the original's identifiers into the user_ids a command carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.rules.codes import Code
from customer_updates.rules.directory import Directory
from customer_updates.rules.identifiers import INVALID_CODE, normalise
from customer_updates.store import customers as customer_store
from customer_updates.store.orgs import OrgCache

LOOKUP_KEYS = ("id", "external_id", "mobile", "email")
_USER_ID_DIGITS = 18
# A control character (NUL) is malformed before it reaches SQL: PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Found:
    user_id: int


@dataclass(frozen=True)
class NotResolved:
    code: Code
    detail: str


def given_identifiers(raw: Any) -> dict[str, str]:
    """The identifiers passed in a `customer` object, as text; an empty value counts as not passed."""
    if not isinstance(raw, dict):
        return {}
    return {key: str(raw[key]).strip() for key in LOOKUP_KEYS
            if isinstance(raw.get(key), str | int) and not isinstance(raw.get(key), bool) and str(raw[key]).strip()}


def resolve(session: Session, orgs: OrgCache, org_id: int, identifiers: dict[str, str],
            role: str) -> Found | NotResolved:
    """The user_id the identifiers lead to. An `id` is taken as given (the command refuses an inactive
    one); another identifier of a merged victim leads to its survivor, as `get` does (SPEC §7). When
    several are given they must all lead to the same customer."""
    org = orgs.get(session, org_id)
    if org is None:
        return NotResolved(Code.INVALID_INPUT, f"org_id {org_id} is not a known org")
    if not identifiers:
        return NotResolved(Code.NO_IDENTIFIER, f"{role}: pass id, external_id, mobile or email")
    found: set[int] = set()
    for by, value in identifiers.items():
        if by == "id":
            if not value.isdigit() or len(value) > _USER_ID_DIGITS or int(value) == 0:
                return NotResolved(Code.NO_IDENTIFIER, f"{role}: id must be a positive integer")
            loaded = customer_store.load_customers(session, org_id, {int(value)}, {}, lock=False)
            if not loaded:
                return NotResolved(Code.MERGE_CUSTOMER_NOT_FOUND, f"{role}: no customer with this id")
            found.add(int(value))
            continue
        normal = None if _CONTROL.search(value) else normalise(by, value, org)
        if normal is None:
            return NotResolved(INVALID_CODE[by], f"{role}: {by} is malformed")
        loaded = customer_store.load_customers(session, org_id, set(), {by: {normal}}, lock=False)
        state, _ = Directory(loaded).find(by, normal)
        if state is None:
            return NotResolved(Code.MERGE_CUSTOMER_NOT_FOUND, f"{role}: no customer with this {by}")
        found.add(state.user_id)
    if len(found) > 1:
        return NotResolved(Code.INVALID_INPUT, f"{role}: the identifiers name different customers")
    return Found(found.pop())


def customer_exists(session: Session, org_id: int, user_id: int) -> bool:
    """Whether the org has a customer of this user_id, active or merged."""
    found = session.scalar(select(t.Customer.user_id).where(t.Customer.org_id == org_id,
                                                            t.Customer.user_id == user_id))
    return found is not None
