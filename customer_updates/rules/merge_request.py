"""SPEC §4 "Merge requests": merge two given active customers, members included, as a pure function."""

from __future__ import annotations

from datetime import datetime

from customer_updates.rules.codes import Code
from customer_updates.rules.directory import Directory
from customer_updates.rules.merge import MergeResult, merge
from customer_updates.rules.parse import ItemRejected
from customer_updates.rules.state import OrgConfig

REQUESTED = "request"  # the merge record's `identifier` for a merge asked for, not caused by an identifier


def request_merge(org: OrgConfig, survivor_id: int, victim_id: int, directory: Directory,
                  now: datetime) -> MergeResult:
    """Merge `victim_id` into `survivor_id`; raises ItemRejected with a code of its own when either is
    unknown (91200) or inactive (91201), or both are the same customer (91202)."""
    if survivor_id == victim_id:
        raise ItemRejected(Code.MERGE_SAME_CUSTOMER, f"user_id {survivor_id}")
    parties = []
    for role, user_id in (("survivor", survivor_id), ("victim", victim_id)):
        state = directory.by_id.get(user_id)
        if state is None:
            raise ItemRejected(Code.MERGE_CUSTOMER_NOT_FOUND, f"{role} user_id {user_id}")
        if not state.active:
            raise ItemRejected(Code.MERGE_CUSTOMER_INACTIVE,
                               f"{role} user_id {user_id} was merged into {state.merged_into}")
        parties.append(state)
    return merge(parties[0], parties[1], REQUESTED, org, now)
