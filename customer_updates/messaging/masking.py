"""What Flower and worker logs may show of a message: personal data masked by what the key and the value are.

A key is personal when its letters and digits, lower-cased, contain a part of `PERSONAL` (so `MOBILE`,
`Phone`, `first_name` and `EXTERNAL-ID` all are): its value is masked whatever it is. Any other value is
masked when it looks like an email address (has an `@`) or a phone number (seven digits or more, with only
separators between them), at any depth, keys included. This runs on every send, so the walk is bounded: a
long string is not shown at all, and only the first items of a container are shown (the repr is cut at
1,024 characters anyway).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

PERSONAL = ("mobile", "phone", "msisdn", "mail", "name", "externalid", "contact", "address")

_PHONE = re.compile(r"\d(?:[\s\-.()/]*\d){6}")  # seven digits, separators allowed between them
_TEXT_MAX = 256  # longer strings are replaced by their length, unread
_ITEMS_MAX = 50  # items shown of one dict or list
_DEPTH_MAX = 6
_REPR_LIMIT = 1024


@lru_cache(maxsize=4096)
def is_personal_key(key: str) -> bool:
    compact = "".join(c for c in key.lower() if c.isalnum())
    return any(part in compact for part in PERSONAL)


def looks_personal(text: str) -> bool:
    """An email address or a phone number, alone or inside other text.

    A date such as `2021-03-04` is masked too: told apart from a phone number written with dashes it is not,
    and a date of birth is personal anyway.
    """
    return "@" in text or _PHONE.search(text) is not None


def mask_value(name: str, value: Any) -> str:
    """The masked form of a personal value: the last two characters of a phone number, nothing of the rest."""
    if isinstance(value, dict | list):
        return "***"
    text = str(value)
    if len(text) <= 32 and "@" not in text and _PHONE.search(text):
        return "*" * (len(text) - 2) + text[-2:]
    return "***"


def _masked(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        if len(value) > _TEXT_MAX:
            return f"<{len(value)} characters>"
        return mask_value("", value) if looks_personal(value) else value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return mask_value("", value) if abs(value) >= 1_000_000 else value  # a mobile sent as a number
    if depth >= _DEPTH_MAX:
        return "<nested>"
    if isinstance(value, dict):
        return _masked_dict(value, depth + 1)
    if isinstance(value, list | tuple):
        shown = [_masked(v, depth + 1) for v in value[:_ITEMS_MAX]]
        return [*shown, f"<{len(value) - _ITEMS_MAX} more>"] if len(value) > _ITEMS_MAX else shown
    return f"<{type(value).__name__}>"


@lru_cache(maxsize=4096)
def _key_rule(key: str) -> int:
    """0: an ordinary key; 1: a personal key (its value is masked); 2: a key that itself looks personal."""
    if looks_personal(key):
        return 2
    return 1 if is_personal_key(key) else 0


def _masked_dict(data: dict[Any, Any], depth: int) -> dict[str, Any]:
    masked: dict[str, Any] = {}
    for i, (key, value) in enumerate(data.items()):
        if i == _ITEMS_MAX:
            masked["<more>"] = f"<{len(data) - _ITEMS_MAX} more keys>"
            break
        name = key if type(key) is str else str(key)
        rule = 2 if len(name) > _TEXT_MAX else _key_rule(name)
        if rule == 2:
            name = f"<key {i}>"
        if rule == 1 and value is not None and value != "":
            masked[name] = mask_value(name, value)
        elif type(value) is str and len(value) <= _TEXT_MAX and "@" not in value and not _PHONE.search(value):
            masked[name] = value  # the common case, without a call
        else:
            masked[name] = _masked(value, depth)
    return masked


def mask_customer(customer: Any) -> Any:
    if not isinstance(customer, dict):
        return "<not an object>"
    return _masked_dict(customer, 0)


def _shown_id(value: Any) -> Any:
    # A request id is what an operator looks a message up by: shown unless it holds an email address.
    if isinstance(value, str) and (len(value) > _TEXT_MAX or "@" in value):
        return "***"
    return value if isinstance(value, str | int | None) else f"<{type(value).__name__}>"


def masked_repr(commands: Iterable[Any]) -> str:
    shown: list[Any] = []
    length = 0
    for command in commands:
        if isinstance(command, dict):
            shown.append({"org_id": _shown_id(command.get("org_id")),
                          "request_id": _shown_id(command.get("request_id")),
                          "customer": mask_customer(command.get("customer"))})
        else:
            shown.append("<not an object>")
        # Only the first 1,024 characters are shown: masking the rest of a 100-command message is waste.
        length += len(repr(shown[-1]))
        if length > _REPR_LIMIT:
            break
    return repr({"commands": shown})[:_REPR_LIMIT]
