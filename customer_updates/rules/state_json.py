"""A customer's whole state as JSON-ready data and back, stamps included.

Merge records keep both customers' states this way (SPEC §4), so that an unmerge can give each back
exactly what it had, and history can say per field what moved from the victim.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from customer_updates.rules.state import SCALAR_FIELDS, CustomerState, FieldValue, SubscriptionState


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _moment(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def dump_state(state: CustomerState) -> dict[str, Any]:
    return {
        "user_id": state.user_id, "org_id": state.org_id,
        **{name: getattr(state, name) for name in SCALAR_FIELDS if name != "registered_on"},
        "registered_on": _when(state.registered_on),
        "loyalty_points": state.loyalty_points, "lifetime_points": state.lifetime_points,
        "lifetime_purchases": str(state.lifetime_purchases), "slab_number": state.slab_number,
        "tier_expiry_date": _when(state.tier_expiry_date),
        "points_summaries": [dict(s) for s in state.points_summaries],
        "stamps": {name: at.isoformat() for name, at in state.stamps.items()},
        "fired": sorted(state.fired),
        "custom": {name: [fv.value, _when(fv.issued_at)] for name, fv in state.custom.items()},
        "extended": {name: [fv.value, _when(fv.issued_at)] for name, fv in state.extended.items()},
        "subscriptions": {f"{c}:{p}": [s.status, s.scope, _when(s.issued_at)]
                          for (c, p), s in state.subscriptions.items()},
        "active": state.active, "merged_into": state.merged_into, "updated_on": _when(state.updated_on),
    }


def load_state(data: dict[str, Any]) -> CustomerState:
    state = CustomerState(user_id=int(data["user_id"]), org_id=int(data["org_id"]))
    for name in SCALAR_FIELDS:
        setattr(state, name, data.get(name))
    state.registered_on = _moment(data.get("registered_on"))
    state.type = data.get("type") or "LOYALTY"
    state.fraud_status = data.get("fraud_status") or "NONE"
    state.loyalty_points = int(data.get("loyalty_points") or 0)
    state.lifetime_points = int(data.get("lifetime_points") or 0)
    state.lifetime_purchases = Decimal(str(data.get("lifetime_purchases") or 0))
    state.slab_number = data.get("slab_number")
    state.tier_expiry_date = _moment(data.get("tier_expiry_date"))
    state.points_summaries = [dict(s) for s in data.get("points_summaries") or []]
    state.stamps = {name: datetime.fromisoformat(at) for name, at in (data.get("stamps") or {}).items()}
    state.fired = set(data.get("fired") or [])
    state.custom = {n: FieldValue(v, _moment(at)) for n, (v, at) in (data.get("custom") or {}).items()}
    state.extended = {n: FieldValue(v, _moment(at)) for n, (v, at) in (data.get("extended") or {}).items()}
    subscriptions = {}
    for key, (status, scope, at) in (data.get("subscriptions") or {}).items():
        channel, _, priority = key.partition(":")
        subscriptions[(channel, priority)] = SubscriptionState(status, scope, _moment(at))
    state.subscriptions = subscriptions
    state.active = bool(data.get("active", True))
    state.merged_into = data.get("merged_into")
    state.updated_on = _moment(data.get("updated_on"))
    return state


def field_value(state: CustomerState, key: str) -> Any:
    """One field of a state with its stamp, JSON-ready, by its audit name (`firstname`, `custom:NAME`,
    `extended:NAME`, `subscription:CHANNEL:PRIORITY`); None when the customer has none."""
    if key.startswith(("custom:", "extended:")):
        kind, _, name = key.partition(":")
        fv: FieldValue | None = getattr(state, kind).get(name)
        return [fv.value, _when(fv.issued_at)] if fv is not None else None
    if key.startswith("subscription:"):
        _, channel, priority = key.split(":", 2)
        sub = state.subscriptions.get((channel, priority))
        return [sub.status, sub.scope, _when(sub.issued_at)] if sub is not None else None
    value = getattr(state, key)
    if isinstance(value, datetime):
        value = value.isoformat()
    return [value, _when(state.stamps.get(key))]


def set_field_value(state: CustomerState, key: str, stored: Any) -> None:
    """Put back what `field_value` returned (in place)."""
    if key.startswith(("custom:", "extended:")):
        kind, _, name = key.partition(":")
        values: dict[str, FieldValue] = getattr(state, kind)
        if stored is None:
            values.pop(name, None)
        else:
            values[name] = FieldValue(stored[0], _moment(stored[1]))
        return
    if key.startswith("subscription:"):
        _, channel, priority = key.split(":", 2)
        if stored is None:
            state.subscriptions.pop((channel, priority), None)
        else:
            state.subscriptions[(channel, priority)] = SubscriptionState(stored[0], stored[1], _moment(stored[2]))
        return
    value, at = stored if stored is not None else (None, None)
    setattr(state, key, _moment(value) if key == "registered_on" else value)
    if at is None:
        state.stamps.pop(key, None)
    else:
        state.stamps[key] = datetime.fromisoformat(at)


def field_keys(state: CustomerState) -> set[str]:
    """Every field key a state has a value for (see `field_value`)."""
    return ({*SCALAR_FIELDS} | {f"custom:{n}" for n in state.custom} | {f"extended:{n}" for n in state.extended}
            | {f"subscription:{c}:{p}" for c, p in state.subscriptions})
