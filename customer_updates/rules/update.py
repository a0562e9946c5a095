"""SPEC §3: apply one parsed item to the customers of a directory, as a pure function.

`apply_item` never changes its inputs: it returns an `Applied` outcome with new states (target and any
merge victims), the changed fields for the audit, warnings and awards, or raises `ItemRejected`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from customer_updates.rules import fields as field_rules
from customer_updates.rules.codes import Code, message
from customer_updates.rules.directory import Directory
from customer_updates.rules.identifiers import INVALID_CODE, normalise
from customer_updates.rules.merge import MergeResult, merge
from customer_updates.rules.parse import DATETIME_FORMAT, ItemRejected, UpdateItem, parse_datetime
from customer_updates.rules.side_effects import Award, decide_awards
from customer_updates.rules.state import IDENTIFIERS, CustomerState, FieldValue, OrgConfig, SubscriptionState

ALLOW_CONFIG = {
    "mobile": "CONF_ALLOW_MOBILE_UPDATE",
    "email": "CONF_ALLOW_EMAIL_UPDATE",
    "external_id": "CONF_LOYALTY_ALLOW_EXTERNAL_ID_UPDATE",
}
DEFAULT_MIN_REGISTRATION = "1995-01-01 00:00:00"


@dataclass(frozen=True)
class Warning_:
    code: Code
    message: str


@dataclass(frozen=True)
class Change:
    field: str  # firstname, custom:NAME, extended:NAME, subscription:SMS:TRANS, ...
    previous: str | None
    new: str | None


@dataclass
class Applied:
    target: CustomerState
    before: CustomerState
    merges: list[MergeResult] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    awards: list[Award] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime(DATETIME_FORMAT)
    return str(value)


class _Editor:
    """Writes fields on a working copy, honouring per-field issued_at stamps (last writer wins)."""

    def __init__(self, state: CustomerState, issued_at: datetime, outcome: Applied) -> None:
        self.state, self.issued_at, self.outcome = state, issued_at, outcome

    def _fresh(self, name: str, stamp: datetime | None) -> bool:
        if stamp is not None and stamp > self.issued_at:
            self.outcome.stale.append(name)
            return False
        return True

    def scalar(self, name: str, value: Any) -> None:
        if not self._fresh(name, self.state.stamps.get(name)):
            return
        previous = getattr(self.state, name)
        self.state.stamps[name] = self.issued_at
        if previous != value:
            setattr(self.state, name, value)
            self.outcome.changes.append(Change(name, _text(previous), _text(value)))

    def keyed(self, kind: str, name: str, value: str) -> None:
        values: dict[str, FieldValue] = getattr(self.state, kind)
        current = values.get(name)
        if not self._fresh(f"{kind}:{name}", current.issued_at if current else None):
            return
        previous = current.value if current else None
        values[name] = FieldValue(value, self.issued_at)
        if previous != value:
            self.outcome.changes.append(Change(f"{kind}:{name}", previous, value))

    def subscription(self, channel: str, priority: str, status: int, scope: str) -> None:
        key = (channel, priority)
        current = self.state.subscriptions.get(key)
        label = f"subscription:{channel}:{priority}"
        if not self._fresh(label, current.issued_at if current else None):
            return
        self.state.subscriptions[key] = SubscriptionState(status, scope, self.issued_at)
        if current is None or current.status != status:
            self.outcome.changes.append(Change(label, _text(current.status if current else None), str(status)))


def find_target(org: OrgConfig, item: UpdateItem, directory: Directory) -> tuple[CustomerState, str, bool]:
    """SPEC §3.2: the target, the identifier that found it, and whether a merge chain was followed.

    `id` alone decides when passed. Otherwise malformed identifiers take no part in the lookup, so the
    outcome never depends on the lookup order: they fail the item only when no identifier was passed
    well formed (the secondary-identifier step warns about them when the target was found)."""
    if item.id is not None:
        found, via_chain = directory.find("id", str(item.id))
        if found is None:
            raise ItemRejected(Code.CUSTOMER_NOT_FOUND, f"no customer with id {item.id}")
        return found, "id", via_chain
    malformed: list[str] = []
    well_formed = False
    for name in dict.fromkeys((org.primary_identifier, "mobile", "external_id", "email")):
        raw = item.identifiers.get(name)
        if raw is None:
            continue
        value = normalise(name, raw, org)
        if value is None:
            malformed.append(name)
            continue
        well_formed = True
        found, via_chain = directory.find(name, value)
        if found is not None:
            return found, name, via_chain
    if malformed and not well_formed:
        raise ItemRejected(INVALID_CODE[malformed[0]])
    raise ItemRejected(Code.CUSTOMER_NOT_FOUND)


def _secondary_identifiers(org: OrgConfig, item: UpdateItem, lookup: str, work: CustomerState,
                           directory: Directory, editor: _Editor, outcome: Applied, now: datetime) -> CustomerState:
    for name in IDENTIFIERS:
        raw = item.identifiers.get(name)
        if raw is None or name == lookup:
            continue
        value = normalise(name, raw, org)
        if value is None:
            outcome.warnings.append(Warning_(Code.SECONDARY_IDENTIFIER_IGNORED, f"{name} is malformed; ignored"))
            continue
        current = work.identifier(name)
        if current == value:
            continue
        if current:
            code = Code.PRIMARY_IDENTIFIER_UPDATE if name == org.primary_identifier \
                else Code.IDENTIFIER_UPDATE_NOT_ALLOWED
            raise ItemRejected(code, identifier=name)
        if not org.flag(ALLOW_CONFIG[name]):
            raise ItemRejected(Code.IDENTIFIER_UPDATE_NOT_ALLOWED, identifier=name)
        holder = directory.active_holder(name, value)
        if holder is not None and holder.user_id != work.user_id and holder.type == "LOYALTY" \
                and not org.flag("CONF_AUTO_MERGE_LOYALTY_CUSTOMERS"):
            # Knowing a member's email must never be enough to take over their points (SPEC §3.3).
            outcome.warnings.append(Warning_(Code.IDENTIFIER_OCCUPIED,
                                             message(Code.IDENTIFIER_OCCUPIED, identifier=name)))
            continue
        if holder is not None and holder.user_id != work.user_id:
            # Merge the holder into the target, then the target holds the value (SPEC §3.3, §4).
            result = merge(work, holder, name, org, now)
            outcome.merges.append(result)
            outcome.warnings.append(Warning_(Code.CUSTOMER_MERGED, f"user_id {holder.user_id} merged ({name})"))
            outcome.changes.append(Change("merged_user_id", None, str(holder.user_id)))
            work = result.survivor
            editor.state = work
            if work.identifier(name) == value:
                continue
            if work.identifier(name):  # the merge filled it with the victim's other value
                raise ItemRejected(Code.IDENTIFIER_UPDATE_NOT_ALLOWED, identifier=name)
        editor.scalar(name, value)
    return work


def _registration(org: OrgConfig, registered_on: datetime, now: datetime) -> None:
    low = parse_datetime(str(org.config("CONF_MIN_REGISTRATION_DATE", DEFAULT_MIN_REGISTRATION)))
    if (low is not None and registered_on < low) or registered_on > now + timedelta(hours=24):
        raise ItemRejected(Code.REGISTRATION_DATE_OUT_OF_RANGE)


def _loyalty_type(org: OrgConfig, item: UpdateItem, work: CustomerState, editor: _Editor) -> bool:
    """Returns whether the customer was converted to loyalty by this item."""
    if item.type is None or item.type == work.type:
        return False
    if item.type == "NON_LOYALTY":
        raise ItemRejected(Code.LOYALTY_TO_NON_LOYALTY)
    primary = org.primary_identifier
    if primary == "email" and not work.email:
        raise ItemRejected(Code.EMAIL_REQUIRED_FOR_LOYALTY)
    if primary == "external_id" and not work.external_id:
        raise ItemRejected(Code.EXTERNAL_ID_REQUIRED_FOR_LOYALTY)
    if primary == "mobile" and not work.mobile:
        raise ItemRejected(Code.INVALID_INPUT, "mobile is required to convert to loyalty customer")
    before = work.type
    editor.scalar("type", "LOYALTY")
    return before != work.type


def apply_item(org: OrgConfig, item: UpdateItem, directory: Directory, issued_at: datetime,
               now: datetime) -> Applied:
    target, lookup, via_chain = find_target(org, item, directory)
    outcome = Applied(target=target, before=target)
    if via_chain:
        outcome.warnings.append(Warning_(Code.SURVIVOR_RETRIEVED, f"user_id {target.user_id}"))
    work = target.copy()
    editor = _Editor(work, issued_at, outcome)
    work = _secondary_identifiers(org, item, lookup, work, directory, editor, outcome, now)

    if item.firstname is not None:
        editor.scalar("firstname", item.firstname)
    if item.lastname is not None:
        editor.scalar("lastname", item.lastname)
    if item.registered_on is not None:
        _registration(org, item.registered_on, now)
        editor.scalar("registered_on", item.registered_on)
    for name, code in (("registered_till", Code.INVALID_REGISTERED_TILL),
                       ("associated_with", Code.INVALID_ASSOCIATED_TILL)):
        till = getattr(item, name)
        if till is not None:
            if till in org.tills:
                editor.scalar(name, till)
            else:
                outcome.warnings.append(Warning_(code, f"{name} {till!r} is not a till of the org"))
    type_before = work.type  # merges included: a merge making A LOYALTY is not a conversion
    converted = _loyalty_type(org, item, work, editor)
    if item.fraud_status is not None:
        editor.scalar("fraud_status", item.fraud_status)
    for name, raw in item.custom_fields:
        custom = field_rules.custom_field_value(org, name, raw)
        if custom is None:
            outcome.warnings.append(Warning_(Code.INVALID_CUSTOM_FIELD, f"custom field {name[:100]!r} skipped"))
        else:
            editor.keyed("custom", name, custom)
    for name, raw in item.extended_fields:
        extended = field_rules.extended_field_value(org.extended_fields.get(name), raw)
        if extended is None:
            outcome.warnings.append(Warning_(Code.EXTENDED_FIELD_FAILED, f"extended field {name[:100]!r} skipped"))
        else:
            editor.keyed("extended", name, extended)
    for sub in item.subscriptions:
        editor.subscription(sub.channel, sub.priority, sub.status, sub.scope)
    if outcome.stale:
        outcome.warnings.append(Warning_(Code.STALE_FIELDS_SKIPPED, ", ".join(outcome.stale)))

    outcome.awards = decide_awards(org, target, work, converted and type_before == "NON_LOYALTY")
    work.fired |= {award.key for award in outcome.awards}
    if outcome.changes or outcome.awards:
        work.updated_on = now
    outcome.target = work
    return outcome
