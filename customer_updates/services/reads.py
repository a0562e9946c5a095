"""Reading customers, stored results and merges (SPEC §7; CLI and HTTP `get`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.models.results import customer_item, failed_item, item_status
from customer_updates.rules.codes import Code
from customer_updates.rules.directory import Directory
from customer_updates.rules.identifiers import INVALID_CODE, normalise
from customer_updates.store import customers as customer_store
from customer_updates.store.orgs import OrgCache

RETRIEVED = "Customer successfully retrieved"


def get_customer(session: Session, orgs: OrgCache, org_id: int, by: str, value: str) -> dict[str, Any]:
    """The v1.1 item of the customer an identifier leads to (a merged victim's leads to its survivor)."""
    org = orgs.get(session, org_id)
    raw = {by: value}
    if org is None:
        return failed_item(raw, Code.INVALID_INPUT, f"org_id {org_id} is not a known org")
    if by == "id":
        if not str(value).isdigit():
            return failed_item(raw, Code.NO_IDENTIFIER, "id must be a positive integer")
        loaded = customer_store.load_customers(session, org_id, {int(value)}, {}, lock=False)
        key = str(int(value))
    else:
        normal = normalise(by, value, org)
        if normal is None:
            return failed_item(raw, INVALID_CODE[by], f"{by} is malformed")
        loaded = customer_store.load_customers(session, org_id, set(), {by: {normal}}, lock=False)
        key = normal
    found, via_chain = Directory(loaded).find(by, key)
    if found is None:
        return failed_item(raw, Code.CUSTOMER_NOT_FOUND, "Cannot find customer with the provided identifier")
    warnings = [(Code.SURVIVOR_RETRIEVED, f"user_id {found.user_id}")] if via_chain else []
    return customer_item(org, found, item_status(Code.SUCCESS, RETRIEVED, warnings))


def list_merges(session: Session, org_id: int, user_id: int | None = None, limit: int = 200) -> list[t.Merge]:
    query = select(t.Merge).where(t.Merge.org_id == org_id)
    if user_id is not None:
        query = query.where(or_(t.Merge.survivor_id == user_id, t.Merge.victim_id == user_id))
    return list(session.scalars(query.order_by(t.Merge.id.desc()).limit(limit)))
