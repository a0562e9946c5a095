"""SPEC §4 "Unmerge": undo a victim's latest merge from its merge record, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from customer_updates.rules.codes import Code
from customer_updates.rules.directory import Directory
from customer_updates.rules.merge import SUMMARY_NUMBERS
from customer_updates.rules.parse import ItemRejected
from customer_updates.rules.side_effects import add_months, effective_slab, slab_for
from customer_updates.rules.state import IDENTIFIERS, CustomerState, OrgConfig
from customer_updates.rules.state_json import field_value, load_state, set_field_value


@dataclass(frozen=True)
class MergeRecord:
    """What an unmerge needs of a merge record (store: the `merges` row)."""

    id: int | None  # None while the record is not written yet (a merge of the same batch)
    survivor_id: int
    victim_id: int
    moved: dict[str, Any]
    undone: bool = False


@dataclass
class UnmergeResult:
    survivor: CustomerState
    victim: CustomerState
    record: MergeRecord
    restored: list[str] = field(default_factory=list)  # survivor fields back to their values before the merge
    kept: list[str] = field(default_factory=list)  # fields a later change set since: they stay


def unmerge(org: OrgConfig, victim_id: int, record: MergeRecord | None, directory: Directory,
            now: datetime) -> UnmergeResult:
    """New states of both customers; the inputs are not changed. `record` is the victim's latest merge.

    Raises ItemRejected: 91203 when the victim is not merged (or unknown, or its latest merge is undone
    already), 91204 when the survivor was merged further, 91205 when the survivor has fewer points left
    than the victim brought, 91206 when another active customer holds one of the victim's identifiers."""
    victim = directory.by_id.get(victim_id)
    if victim is None or victim.active or record is None or record.undone or record.victim_id != victim_id:
        raise ItemRejected(Code.UNMERGE_NOT_MERGED, f"user_id {victim_id}")
    survivor = directory.by_id.get(record.survivor_id)
    if survivor is None or not survivor.active:
        raise ItemRejected(Code.UNMERGE_SURVIVOR_MERGED, f"user_id {record.survivor_id}")
    brought = load_state(record.moved["victim"])
    if (survivor.loyalty_points < brought.loyalty_points or survivor.lifetime_points < brought.lifetime_points
            or survivor.lifetime_purchases < brought.lifetime_purchases):
        raise ItemRejected(Code.UNMERGE_POINTS_REDEEMED,
                           f"{survivor.loyalty_points} left, {brought.loyalty_points} brought")

    a = survivor.copy()
    result = UnmergeResult(a, brought, record)
    for key, change in record.moved.get("fields", {}).items():
        if field_value(a, key) == change["after"]:
            set_field_value(a, key, change["before"])
            result.restored.append(key)
        else:
            result.kept.append(key)
    for name in IDENTIFIERS:
        value = brought.identifier(name)
        holder = directory.active_holder(name, value) if value else None
        if holder is not None and (holder.user_id != a.user_id or a.identifier(name) == value):
            raise ItemRejected(Code.UNMERGE_IDENTIFIER_TAKEN, f"{name} of user_id {victim_id}")

    a.loyalty_points -= brought.loyalty_points
    a.lifetime_points -= brought.lifetime_points
    a.lifetime_purchases -= brought.lifetime_purchases
    a.points_summaries = _take_summaries(a.points_summaries, brought.points_summaries,
                                         record.moved.get("survivor_summaries", []))
    a.fired -= set(record.moved.get("fired", []))
    slab, expiry = record.moved.get("slab", [None, None])
    _retier(org, a, slab, datetime.fromisoformat(expiry) if expiry else None, now)
    _retier(org, brought, brought.slab_number, brought.tier_expiry_date, now)
    a.updated_on = now
    brought.active, brought.merged_into, brought.updated_on = True, None, now
    return result


def _take_summaries(mine: list[dict[str, Any]], brought: list[dict[str, Any]],
                    before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The survivor's summaries less the victim's; a number (or a program) the survivor had no entry for
    before the merge and that comes back to zero is dropped again."""
    had = {s.get("programId"): set(s) for s in before}
    by_program: dict[Any, dict[str, Any]] = {s.get("programId"): dict(s) for s in mine}
    for summary in brought:
        program = summary.get("programId")
        current = by_program.get(program)
        if current is None:
            continue
        had_keys = had.get(program, set())
        for key in SUMMARY_NUMBERS:
            left = (current.get(key) or 0) - (summary.get(key) or 0)
            if left == 0 and key not in had_keys and key in current:
                del current[key]
            elif key in current or key in summary:
                current[key] = left
        if program not in had and not any(current.get(key) for key in SUMMARY_NUMBERS):
            del by_program[program]  # the survivor had no summary of this program before the merge
    return list(by_program.values())


def _retier(org: OrgConfig, state: CustomerState, slab_before: int | None, expiry_before: datetime | None,
            now: datetime) -> None:
    """Work the slab out again from the points (SPEC §1); a slab equal to the one held before keeps its
    expiry (and its stored form)."""
    before = state.copy()
    before.slab_number, before.tier_expiry_date = slab_before, expiry_before
    held = effective_slab(org, before)
    if state.type != "LOYALTY" or not org.slabs:
        target = None
    else:
        target = slab_for(org, state.lifetime_points) or min(org.slabs, key=lambda s: s.number)
    if (target.number if target else None) == (held.number if held else None):
        state.slab_number, state.tier_expiry_date = slab_before, expiry_before
    elif target is None:
        state.slab_number, state.tier_expiry_date = None, None
    else:
        state.slab_number = target.number
        state.tier_expiry_date = add_months(now, target.validity_months) if target.validity_months else None
