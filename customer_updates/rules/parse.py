"""SPEC §2 / §3.1: turn one raw v1.1 item (whatever JSON a caller sent) into a typed `UpdateItem`.

Shape problems that fail the whole item raise `ItemRejected`; problems the SPEC treats as warnings
(unknown custom fields and the like) are left to the update rules, which know the org.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from customer_updates.rules.codes import Code, message

NAME_MAX = 100
FIELD_VALUE_MAX = 250
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_STRINGY = (str, int, float)


class ItemRejected(Exception):
    """The item fails with `code`; nothing of it is applied."""

    def __init__(self, code: Code, detail: str | None = None, **fmt: str) -> None:
        self.code = code
        self.message = message(code, detail, **fmt)
        super().__init__(self.message)


@dataclass(frozen=True)
class SubscriptionChange:
    channel: str  # SMS | EMAIL
    priority: str  # TRANS | BULK
    status: int  # 1 | 0
    scope: str = "ALL"


@dataclass
class UpdateItem:
    identifiers: dict[str, str] = field(default_factory=dict)  # raw, stripped, non-empty
    id: int | None = None
    firstname: str | None = None
    lastname: str | None = None
    registered_on: datetime | None = None
    registered_till: str | None = None
    associated_with: str | None = None
    type: str | None = None
    fraud_status: str | None = None
    custom_fields: list[tuple[str, Any]] = field(default_factory=list)
    extended_fields: list[tuple[str, Any]] = field(default_factory=list)
    subscriptions: list[SubscriptionChange] = field(default_factory=list)


def as_list(value: Any) -> list[Any]:
    """Accept a single object where a list is expected (older callers, XML-to-JSON converters)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(item: dict[str, Any], key: str, max_len: int | None = None) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _STRINGY):
        raise ItemRejected(Code.INVALID_INPUT, f"{key} must be a string")
    text = str(value).strip()
    if max_len is not None and len(text) > max_len:
        raise ItemRejected(Code.INVALID_INPUT, f"{key} is longer than {max_len} characters")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL: refuse it here, with a code, not in the database
        raise ItemRejected(Code.INVALID_INPUT, f"{key} contains a NUL character")
    return text or None


def _fields(item: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    container = item.get(key)
    if container is None:
        return []
    if isinstance(container, list):  # some callers drop the `field` level
        entries = container
    elif isinstance(container, dict):
        entries = as_list(container.get("field"))
    else:
        raise ItemRejected(Code.INVALID_INPUT, f"{key} must be an object with a field list")
    out: list[tuple[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ItemRejected(Code.INVALID_INPUT, f"{key}.field needs name and value")
        out.append((entry["name"].strip(), entry.get("value")))
    return out


def _subscriptions(item: dict[str, Any]) -> list[SubscriptionChange]:
    container = item.get("subscriptions")
    if container is None:
        return []
    entries = as_list(container.get("subscription")) if isinstance(container, dict) else as_list(container)
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ItemRejected(Code.INVALID_INPUT, "subscriptions.subscription must be objects")
        channel = str(entry.get("channel", "")).strip().upper()
        if channel not in ("SMS", "EMAIL"):
            raise ItemRejected(Code.INVALID_CHANNEL)
        priority = str(entry.get("priority", "")).strip().upper()
        if priority not in ("TRANS", "BULK"):
            raise ItemRejected(Code.INVALID_PRIORITY)
        scope = str(entry.get("scope", "all") or "all").strip().upper()
        if scope != "ALL":
            raise ItemRejected(Code.INVALID_SCOPE)
        status = str(entry.get("is_subscribed", entry.get("status", ""))).strip()
        if status not in ("1", "0"):
            raise ItemRejected(Code.INVALID_SUBSCRIPTION_STATUS)
        out.append(SubscriptionChange(channel, priority, int(status), scope))
    return out


def _fraud_status(item: dict[str, Any]) -> str | None:
    value = item.get("fraud_status")
    if isinstance(value, dict):
        value = value.get("status")
    # Empty counts as not passed (SPEC §2): the original's documented sample sends {"status": ""}.
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or value.strip().upper() not in ("CONFIRMED", "NONE"):
        raise ItemRejected(Code.INVALID_INPUT, "fraud_status must be CONFIRMED or NONE")
    return value.strip().upper()


def parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, DATETIME_FORMAT)
    except ValueError:
        return None


def parse_item(raw: Any) -> UpdateItem:
    """Validate the shape of one item. Raises `ItemRejected` with the SPEC code on the first problem."""
    if not isinstance(raw, dict):
        raise ItemRejected(Code.INVALID_INPUT, "each customer must be an object")
    item = UpdateItem()
    for name in ("mobile", "email", "external_id"):
        value = raw.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, _STRINGY):
            raise ItemRejected(Code.INVALID_INPUT, f"{name} must be a string")
        if str(value).strip():
            item.identifiers[name] = str(value).strip()[:1000]  # longer is malformed anyway
    raw_id = raw.get("id")
    if raw_id not in (None, ""):
        if isinstance(raw_id, bool) or not str(raw_id).strip().isdigit() or len(str(raw_id)) > 18:
            raise ItemRejected(Code.NO_IDENTIFIER, "id must be a positive integer")
        item.id = int(str(raw_id).strip())
    if not item.identifiers and item.id is None:
        raise ItemRejected(Code.NO_IDENTIFIER)

    item.firstname = _text(raw, "firstname", NAME_MAX)
    item.lastname = _text(raw, "lastname", NAME_MAX)
    registered_on = _text(raw, "registered_on", 40)
    if registered_on is not None:
        item.registered_on = parse_datetime(registered_on)
        if item.registered_on is None:
            raise ItemRejected(Code.INVALID_INPUT, "registered_on must be YYYY-MM-DD HH:MM:SS")
    item.registered_till = _text(raw, "registered_till", 100)
    item.associated_with = _text(raw, "associated_with", 100)
    loyalty_type = _text(raw, "type", 20)
    if loyalty_type is not None:
        loyalty_type = loyalty_type.upper()
        if loyalty_type not in ("LOYALTY", "NON_LOYALTY"):
            raise ItemRejected(Code.INVALID_INPUT, "type must be LOYALTY or NON_LOYALTY")
        item.type = loyalty_type
    item.fraud_status = _fraud_status(raw)
    item.custom_fields = _fields(raw, "custom_fields")
    item.extended_fields = _fields(raw, "extended_fields")
    item.subscriptions = _subscriptions(raw)
    return item


def custom_value_text(value: Any) -> str | None:
    """A custom field value as stored: strings as given, lists as a JSON-array string (multi-select)."""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool) or not isinstance(value, _STRINGY):
        return None
    return str(value)
