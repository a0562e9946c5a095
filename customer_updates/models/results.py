"""The v1.1 result shapes of SPEC §6, built from plain states. JSON-ready dicts, as stored and returned."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from customer_updates.rules.codes import Code, message
from customer_updates.rules.state import IDENTIFIERS, CustomerState, OrgConfig

_FMT = "%Y-%m-%d %H:%M:%S"


def _dt(value: datetime | None) -> str | None:
    """`value` as _FMT gives it. A result holds three or four of these: isoformat gives the same text in
    a quarter of strftime's time (0.7 against 3.0 us) for naive datetimes of years 1000 and later
    (strftime writes earlier years without leading zeros)."""
    if not value:
        return None
    if type(value) is datetime and value.tzinfo is None and value.year >= 1000:
        return value.isoformat(" ", "seconds")
    return value.strftime(_FMT)


def item_status(code: Code, text: str | None = None, warnings: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    return {
        "success": "true" if code == Code.SUCCESS else "false",
        "code": int(code),
        "message": text if text is not None else message(code),
        "warnings": {"warning": list(warnings)},
    }


def _points_summaries(org: OrgConfig | None, state: CustomerState) -> list[dict[str, Any]]:
    out = []
    for summary in state.points_summaries or ([{"programId": org.program_id}] if org and org.program_id else []):
        current = org.slab(state.slab_number) if org else None
        nxt = org.slab((state.slab_number or 0) + 1) if org else None
        out.append({
            "programId": summary.get("programId"),
            "redeemed": summary.get("redeemed", 0),
            "expired": summary.get("expired", 0),
            "returned": summary.get("returned", 0),
            "adjusted": summary.get("adjusted", 0),
            "lifetimePoints": summary.get("lifetimePoints", state.lifetime_points),
            "loyaltyPoints": summary.get("loyaltyPoints", state.loyalty_points),
            "cumulativePurchases": summary.get("cumulativePurchases", float(state.lifetime_purchases)),
            "currentSlab": current.name if current else None,
            "nextSlab": nxt.name if nxt else None,
            "nextSlabSerialNumber": nxt.number if nxt else None,
            "nextSlabDescription": (nxt.description or nxt.name) if nxt else None,
            "slabSNo": state.slab_number,
            "slabExpiryDate": _dt(state.tier_expiry_date),
        })
    return out


def customer_item(org: OrgConfig | None, state: CustomerState, status: dict[str, Any],
                  effects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    slab = org.slab(state.slab_number) if org else None
    return {
        "user_id": state.user_id,
        "mobile": state.mobile,
        "email": state.email,
        "external_id": state.external_id,
        "firstname": state.firstname,
        "lastname": state.lastname,
        "lifetime_points": state.lifetime_points,
        "lifetime_purchases": float(state.lifetime_purchases),
        "loyalty_points": state.loyalty_points,
        "current_slab": slab.name if slab else None,
        "tier_expiry_date": _dt(state.tier_expiry_date),
        "points_summaries": {"points_summary": _points_summaries(org, state)},
        "registered_on": _dt(state.registered_on),
        "updated_on": _dt(state.updated_on),
        "type": state.type,
        "fraud_status": state.fraud_status,
        "registered_till": state.registered_till,
        "associated_with": state.associated_with,
        "custom_fields": {"field": [{"name": k, "value": v.value} for k, v in sorted(state.custom.items())]},
        "extended_fields": {"field": [{"name": k, "value": v.value} for k, v in sorted(state.extended.items())]},
        "subscriptions": {"subscription": [
            {"channel": c, "priority": p, "scope": s.scope, "status": str(s.status)}
            for (c, p), s in sorted(state.subscriptions.items())
        ]},
        "side_effects": {"effect": effects or []},
        "item_status": status,
    }


def failed_item(raw: Any, code: Code, text: str) -> dict[str, Any]:
    """A failed item echoes only the identifiers passed, and its status."""
    echo: dict[str, Any] = {}
    if isinstance(raw, dict):
        for name in (*IDENTIFIERS, "id"):
            value = raw.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                echo[name] = str(value)[:254]
    return {**echo, "item_status": item_status(code, text)}


def batch_response(items: list[dict[str, Any]]) -> dict[str, Any]:
    total = len(items)
    ok = sum(1 for i in items if i.get("item_status", {}).get("success") == "true")
    if ok == total:
        code, text = 200, "Success"
    elif ok == 0:
        code, text = 500, "All requests have failed due to errors"
    else:
        code, text = 201, "Some requests have failed due to errors"
    return {"response": {
        "status": {"success": "false" if code == 500 else "true", "code": code, "message": text,
                   "total": total, "success_count": ok},
        "customers": {"customer": items},
    }}
