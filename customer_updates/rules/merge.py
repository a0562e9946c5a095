"""SPEC §4: merging a victim B into a survivor A, as a pure function of their states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from customer_updates.rules.side_effects import add_months, effective_slab, slab_for
from customer_updates.rules.state import IDENTIFIERS, CustomerState, OrgConfig
from customer_updates.rules.state_json import dump_state, field_keys, field_value

SUMMARY_NUMBERS = (
    "redeemed", "expired", "returned", "adjusted", "lifetimePoints", "loyaltyPoints", "cumulativePurchases",
)


@dataclass
class MergeResult:
    survivor: CustomerState
    victim: CustomerState
    identifier: str  # which identifier caused the merge
    snapshot: dict[str, Any]  # the victim before the merge, to explain it
    moved: dict[str, Any]  # what moved from the victim, per field, to undo it (rules.unmerge) and for history


def snapshot(state: CustomerState) -> dict[str, Any]:
    """A JSON-ready picture of a customer, for merge records."""
    return {
        "user_id": state.user_id,
        "mobile": state.mobile, "email": state.email, "external_id": state.external_id,
        "firstname": state.firstname, "lastname": state.lastname,
        "registered_on": state.registered_on.isoformat(sep=" ") if state.registered_on else None,
        "registered_till": state.registered_till, "associated_with": state.associated_with,
        "type": state.type, "fraud_status": state.fraud_status,
        "loyalty_points": state.loyalty_points, "lifetime_points": state.lifetime_points,
        "lifetime_purchases": str(state.lifetime_purchases), "slab_number": state.slab_number,
        "tier_expiry_date": state.tier_expiry_date.isoformat(sep=" ") if state.tier_expiry_date else None,
        "points_summaries": state.points_summaries,
        "custom_fields": {k: v.value for k, v in state.custom.items()},
        "extended_fields": {k: v.value for k, v in state.extended.items()},
        "subscriptions": {f"{c}:{p}": s.status for (c, p), s in state.subscriptions.items()},
        "fired": sorted(state.fired),
    }


def _merge_summaries(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_program: dict[Any, dict[str, Any]] = {s.get("programId"): dict(s) for s in a}
    for summary in b:
        mine = by_program.get(summary.get("programId"))
        if mine is None:
            by_program[summary.get("programId")] = dict(summary)
            continue
        for key in SUMMARY_NUMBERS:
            mine[key] = (mine.get(key) or 0) + (summary.get(key) or 0)
    return list(by_program.values())


def _reach_slab_of_points(org: OrgConfig, state: CustomerState, now: datetime) -> None:
    """The summed points may reach a slab above both customers' (SPEC §1: a member is in the highest slab its
    lifetime points reach): then that slab, with a new expiry as an upgrade has. Without this, a later unmerge,
    which works tiers out from the points, would upgrade a survivor the merge left behind its points."""
    held = effective_slab(org, state)
    reached = slab_for(org, state.lifetime_points) if state.type == "LOYALTY" else None
    if held is not None and reached is not None and reached.number > held.number:
        state.slab_number = reached.number
        state.tier_expiry_date = add_months(now, reached.validity_months) if reached.validity_months else None


def merge(survivor: CustomerState, victim: CustomerState, identifier: str, org: OrgConfig,
          now: datetime) -> MergeResult:
    """Return new states of both; the inputs are not changed."""
    a, b = survivor.copy(), victim.copy()
    picture = snapshot(victim)

    for name in IDENTIFIERS:  # A keeps its own; an empty one is filled from B
        if not a.identifier(name) and b.identifier(name):
            setattr(a, name, b.identifier(name))
            if name in b.stamps:
                a.stamps[name] = b.stamps[name]
    for name in ("firstname", "lastname", "registered_till", "associated_with"):
        if not getattr(a, name) and getattr(b, name):
            setattr(a, name, getattr(b, name))
            if name in b.stamps:
                a.stamps[name] = b.stamps[name]
    if b.registered_on and (a.registered_on is None or b.registered_on < a.registered_on):
        a.registered_on = b.registered_on
    if b.type == "LOYALTY":
        a.type = "LOYALTY"
    if b.fraud_status == "CONFIRMED":
        a.fraud_status = "CONFIRMED"

    a.loyalty_points += b.loyalty_points
    a.lifetime_points += b.lifetime_points
    a.lifetime_purchases += b.lifetime_purchases
    a.points_summaries = _merge_summaries(a.points_summaries, b.points_summaries)
    if (b.slab_number or 0) > (a.slab_number or 0):
        a.slab_number, a.tier_expiry_date = b.slab_number, b.tier_expiry_date
    _reach_slab_of_points(org, a, now)

    for name, value in b.custom.items():
        if a.custom.get(name) is None or not a.custom[name].value:
            a.custom[name] = value
    overwrite = org.flag("CONF_CUSTOMER_MERGE_OVERWRITE_EXTENDED_FIELD_VALUE")
    for name, value in b.extended.items():
        if (overwrite and value.value) or a.extended.get(name) is None or not a.extended[name].value:
            a.extended[name] = value
    for key, sub in b.subscriptions.items():
        a.subscriptions.setdefault(key, sub)
    a.fired |= b.fired
    a.updated_on = now
    moved = moved_record(survivor, victim, a)

    # B keeps its identifiers for history; lookups by them follow merged_into to A.
    b.active = False
    b.merged_into = a.user_id
    b.loyalty_points = 0
    b.lifetime_points = 0
    b.lifetime_purchases = b.lifetime_purchases * 0
    b.points_summaries = []
    b.updated_on = now
    return MergeResult(a, b, identifier, picture, moved)


def moved_record(before: CustomerState, victim: CustomerState, after: CustomerState) -> dict[str, Any]:
    """Per field of the survivor that the merge changed, its value (and stamp) before and after; the points
    and side-effect keys the victim brought; the victim's whole state."""
    fields = {}
    for key in sorted(field_keys(before) | field_keys(after)):
        old, new = field_value(before, key), field_value(after, key)
        if old != new:
            fields[key] = {"before": old, "after": new}
    return {
        "fields": fields,
        "fired": sorted(victim.fired - before.fired),
        "slab": [before.slab_number, before.tier_expiry_date.isoformat() if before.tier_expiry_date else None],
        "survivor_summaries": [dict(s) for s in before.points_summaries],
        "victim": dump_state(victim),
    }
