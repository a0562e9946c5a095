"""SPEC §5: which configured rules fire for an update, and what their awards will do to points and tier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from customer_updates.rules.state import CustomerState, OrgConfig, SlabDef


@dataclass(frozen=True)
class Award:
    rule: str  # profile_completion | first_fill | loyalty_conversion
    key: str  # the once-per-customer key, e.g. "first_fill:email"
    points: int


def _filled(state: CustomerState, name: str) -> bool:
    value = state.value_of(name)
    return value is not None and value != ""


def decide_awards(org: OrgConfig, before: CustomerState, after: CustomerState, converted: bool) -> list[Award]:
    """Awards that fire now. `before` is the target before the item (merges included in `after`).

    A key already in `after.fired` (this customer's, or a merged victim's) never fires again.
    """
    rules = org.side_effects
    awards: list[Award] = []
    fields = rules.profile_completion_fields
    if (rules.profile_completion_points and fields and "profile_completion" not in after.fired
            and all(_filled(after, f) for f in fields)):
        awards.append(Award("profile_completion", "profile_completion", rules.profile_completion_points))
    for name, points in rules.first_fill:
        key = f"first_fill:{name}"
        if points and key not in after.fired and not _filled(before, name) and _filled(after, name):
            awards.append(Award("first_fill", key, points))
    if rules.loyalty_conversion_points and converted and "loyalty_conversion" not in after.fired:
        awards.append(Award("loyalty_conversion", "loyalty_conversion", rules.loyalty_conversion_points))
    return awards


def slab_for(org: OrgConfig, lifetime_points: int) -> SlabDef | None:
    """The highest slab whose threshold the lifetime points reach."""
    reached = [s for s in org.slabs if lifetime_points >= s.threshold]
    return max(reached, key=lambda s: s.number) if reached else None


def effective_slab(org: OrgConfig, state: CustomerState) -> SlabDef | None:
    """The slab a customer is in (SPEC §1): its stored slab, else, for a LOYALTY member (an import, a
    conversion), the one its lifetime points reach, the lowest from the start. NON_LOYALTY: none."""
    if state.slab_number is not None:
        return org.slab(state.slab_number)
    if state.type != "LOYALTY" or not org.slabs:
        return None
    return slab_for(org, state.lifetime_points) or min(org.slabs, key=lambda s: s.number)


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
                           31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
    return moment.replace(year=year, month=month, day=day)


def apply_award(org: OrgConfig, state: CustomerState, points: int, rule: str,
                now: datetime) -> list[dict[str, Any]]:
    """Raise points (in place) and upgrade the tier if a threshold is crossed. Returns v1.1 effects."""
    # The slab before these points (a member is in the lowest from the start, SPEC §1): a member's first
    # points are then no upgrade into the lowest slab.
    previous = effective_slab(org, state)
    state.loyalty_points += points
    state.lifetime_points += points
    for summary in state.points_summaries:
        if summary.get("programId") == org.program_id:
            summary["loyaltyPoints"] = (summary.get("loyaltyPoints") or 0) + points
            summary["lifetimePoints"] = (summary.get("lifetimePoints") or 0) + points
    effects: list[dict[str, Any]] = [
        {"type": "points", "awarded_points": points, "total_points": state.loyalty_points, "rule": rule}
    ]
    target = slab_for(org, state.lifetime_points)
    if target is not None and target.number > (previous.number if previous else 0):
        effects.append({
            "type": "slab",
            "previous_slab_name": previous.name if previous else "",
            "previous_slab_number": previous.number if previous else 0,
            "upgraded_slab_name": target.name,
            "upgraded_slab_number": target.number,
        })
        state.slab_number = target.number
        state.tier_expiry_date = add_months(now, target.validity_months) if target.validity_months else None
    elif state.slab_number is None and previous is not None:
        state.slab_number = previous.number  # stored from now on, as the SPEC's "always in a slab"
    return effects
