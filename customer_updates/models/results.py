"""The v1.1 result shapes of SPEC §6, built from plain states. JSON-ready dicts, as stored and returned.

These dicts carry the original API's JSON types (models/v11.py is their model): strings where the
original has strings (codes, counts, points summaries, subscription status), `""` for an empty value,
never null. They are built as plain dicts because they are made for every command in the worker's hot
path; the edges and the tests validate them against models/v11.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from customer_updates.rules.codes import MESSAGES, Code, message
from customer_updates.rules.side_effects import effective_slab
from customer_updates.rules.state import IDENTIFIERS, CustomerState, OrgConfig, SlabDef

_FMT = "%Y-%m-%d %H:%M:%S"
DEFAULT_SOURCE = "instore"
SUMMARY_KEYS = ("programId", "redeemed", "expired", "returned", "adjusted", "lifetimePoints", "loyaltyPoints",
                "cumulativePurchases", "currentSlab", "nextSlab", "nextSlabSerialNumber", "nextSlabDescription",
                "slabSNo", "slabExpiryDate", "totalPoints")


def _dt(value: datetime | None) -> str:
    """`value` as _FMT gives it. A result holds three or four of these: isoformat gives the same text
    cheaper than strftime for naive datetimes of years 1000 and later (strftime writes earlier years
    without leading zeros)."""
    if not value:
        return ""
    if type(value) is datetime and value.tzinfo is None and value.year >= 1000:
        return value.isoformat(" ", "seconds")
    return value.strftime(_FMT)


def _s(value: Any) -> str:
    """A value as the original's string: "" for none."""
    return "" if value is None else str(value)


def _number(value: Decimal | float | int) -> int | float:
    """An integral amount as a JSON integer (as the original writes 0, not 0.0), else a float."""
    number = float(value)
    return int(number) if number.is_integer() else number


def item_status(code: Code | int, text: str | None = None,
                warnings: Iterable[tuple[int, str]] = ()) -> dict[str, Any]:
    """`warnings`: (code, detail) pairs. As the original: the codes as strings under warnings.warning,
    each code's text appended to the message as ", <text>"; the details under warning_details (ours)."""
    base = text if text is not None else message(Code(code))
    status: dict[str, Any] = {
        "success": "true" if code == Code.SUCCESS else "false",
        "code": str(int(code)),
        "message": base,
        "warnings": {"warning": []},
    }
    pairs = list(warnings)
    if pairs:
        status["warnings"]["warning"] = [str(int(c)) for c, _ in pairs]
        status["message"] = base + "".join(f", {_warning_text(c, detail)}" for c, detail in pairs)
        status["warning_details"] = [{"code": str(int(c)), "message": detail} for c, detail in pairs]
    return status


def _warning_text(code: int, detail: str) -> str:
    """The code's text. A text naming something ("{identifier} is already occupied ...") is the detail,
    which the rule formatted with the name: the original writes "email is already occupied ..."."""
    try:
        template = MESSAGES[Code(code)]
    except (ValueError, KeyError):
        return str(code)
    return detail if "{" in template and detail else message(Code(code))


def _points_summaries(org: OrgConfig | None, state: CustomerState, current: SlabDef | None) -> list[dict[str, Any]]:
    out = []
    nxt = org.slab((current.number if current else 0) + 1) if org else None
    for summary in state.points_summaries or ([{"programId": org.program_id}] if org and org.program_id else []):
        out.append({
            "programId": _s(summary.get("programId")),
            "redeemed": _s(summary.get("redeemed", 0)),
            "expired": _s(summary.get("expired", 0)),
            "returned": _s(summary.get("returned", 0)),
            "adjusted": _s(summary.get("adjusted", 0)),
            "lifetimePoints": _s(summary.get("lifetimePoints", state.lifetime_points)),
            "loyaltyPoints": _s(summary.get("loyaltyPoints", state.loyalty_points)),
            "cumulativePurchases": _s(summary.get("cumulativePurchases", _number(state.lifetime_purchases))),
            "currentSlab": current.name if current else "",
            "nextSlab": nxt.name if nxt else "",
            "nextSlabSerialNumber": str(nxt.number) if nxt else "",
            "nextSlabDescription": (nxt.description or nxt.name) if nxt else "",
            "slabSNo": str(current.number) if current else "",
            "slabExpiryDate": _dt(state.tier_expiry_date),
            "totalPoints": _s(summary.get("totalPoints", "")),
        })
    return out


def customer_item(org: OrgConfig | None, state: CustomerState, status: dict[str, Any],
                  effects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    slab = effective_slab(org, state) if org else None
    return {
        "user_id": state.user_id,
        "mobile": state.mobile or "",
        "email": state.email or "",
        "external_id": state.external_id or "",
        "firstname": state.firstname or "",
        "lastname": state.lastname or "",
        "lifetime_points": state.lifetime_points,
        "lifetime_purchases": _number(state.lifetime_purchases),
        "loyalty_points": state.loyalty_points,
        "current_slab": slab.name if slab else "",
        "tier_expiry_date": _dt(state.tier_expiry_date),
        "points_summaries": {"points_summary": _points_summaries(org, state, slab)},
        "registered_on": _dt(state.registered_on),
        "updated_on": _dt(state.updated_on),
        "type": state.type,
        "source": str(org.config("CONF_DEFAULT_SOURCE", DEFAULT_SOURCE)) if org else DEFAULT_SOURCE,
        "fraud_status": state.fraud_status or "",
        "registered_till": state.registered_till or "",
        "associated_with": state.associated_with or "",
        "custom_fields": {"field": [{"name": k, "value": _s(v.value)} for k, v in sorted(state.custom.items())]},
        "extended_fields": {"field": [{"name": k, "value": _s(v.value)}
                                      for k, v in sorted(state.extended.items())]},
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


def batch_status(total: int, ok: int, pending: str | None = None) -> dict[str, Any]:
    """The `status` of a v1.1 batch answer: 200 when all `total` succeeded, 201 when `ok` of them did, 500
    when none did; 202 with the message `pending` when some are not done yet."""
    if pending is not None:
        code, text = 202, pending
    elif ok == total:
        code, text = 200, "Success"
    elif ok == 0:
        code, text = 500, "All requests have failed due to errors"
    else:
        code, text = 201, "Some requests have failed due to errors"
    return {"success": "false" if code == 500 else "true", "code": code, "message": text,
            "total": str(total), "success_count": str(ok)}


def batch_response(items: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(1 for i in items if i.get("item_status", {}).get("success") == "true")
    return {"response": {"status": batch_status(len(items), ok), "customers": {"customer": items}}}


def conflict_item(raw: Any) -> dict[str, Any]:
    """The 409 item its sender sees for a payload sent under a request id another payload used first."""
    return failed_item(raw, Code.CONFLICTING_REQUEST_ID, message(Code.CONFLICTING_REQUEST_ID))


def wire_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item in the original's types. Items stored before the types were the original's (a number
    code, warning objects, nulls) are converted; current ones are returned as they are, at no cost."""
    status = item.get("item_status")
    if not isinstance(status, dict) or isinstance(status.get("code"), str):
        return item
    out: dict[str, Any] = {key: ("" if value is None else value) for key, value in item.items()}
    pairs = [(int(w["code"]), str(w.get("message", ""))) for w in status.get("warnings", {}).get("warning", [])
             if isinstance(w, dict) and "code" in w]
    out["item_status"] = item_status(int(status["code"]), str(status.get("message", "")), pairs)
    if "user_id" in out:
        out.setdefault("source", DEFAULT_SOURCE)
        summaries = out.get("points_summaries") or {"points_summary": []}
        out["points_summaries"] = {"points_summary": [
            {**{k: _s(v) for k, v in s.items()}, **{k: _s(s.get(k)) for k in SUMMARY_KEYS}}
            for s in summaries.get("points_summary", [])]}
        subscriptions = out.get("subscriptions") or {"subscription": []}
        out["subscriptions"] = {"subscription": [{**s, "status": _s(s.get("status")), "scope": _s(s.get("scope"))}
                                                 for s in subscriptions.get("subscription", [])]}
        for key in ("custom_fields", "extended_fields"):
            fields = out.get(key) or {"field": []}
            out[key] = {"field": [{"name": _s(f.get("name")), "value": _s(f.get("value"))}
                                  for f in fields.get("field", [])]}
    return out
