"""Custom and extended field values (SPEC §2): which are accepted, and in what stored form."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from customer_updates.rules.parse import FIELD_VALUE_MAX, custom_value_text
from customer_updates.rules.state import ExtendedFieldDef, OrgConfig


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def custom_field_value(org: OrgConfig, name: str, raw: Any) -> str | None:
    """The value to store, or None when the field is unknown or the value breaks its rule (warning 1017)."""
    if name not in org.custom_fields:
        return None
    value = custom_value_text(raw)
    if value is None or len(value) > FIELD_VALUE_MAX or "\x00" in value or "\x00" in name:
        return None
    if value.startswith("["):  # multi-select: must be a JSON array of strings
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            return None
    pattern = org.custom_fields[name]
    if pattern:
        compiled = _compiled(pattern)
        if compiled is None or not compiled.fullmatch(value):
            return None
    return value


_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d-%m-%Y", "%Y/%m/%d")


def _as_date(value: str) -> str | None:
    text = value.strip()
    if len(text) == 10 and text[4] == text[7] == "-":  # the usual YYYY-MM-DD, without strptime's cost
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            parsed = None  # the formats below say what else is accepted
        if parsed is not None and parsed.year >= 1000:  # strftime writes year 999 as "999"
            return parsed.isoformat()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text[:19] if "T" in fmt else text, fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


def extended_field_value(definition: ExtendedFieldDef | None, raw: Any) -> str | None:
    """The normalised value to store, or None when unknown or of the wrong type (warning 91015)."""
    if definition is None or raw is None or isinstance(raw, bool | list | dict):
        return None
    text = str(raw).strip()
    if not text or len(text) > FIELD_VALUE_MAX or "\x00" in text:
        return None
    kind = definition.type
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return str(int(text, 10))
        except ValueError:
            return None
    if kind == "double":
        try:
            number = float(text)
        except ValueError:
            return None
        return repr(number) if number == number and abs(number) != float("inf") else None
    if kind == "date":
        return _as_date(text)
    if kind == "enum":
        matches = [v for v in definition.values if v.lower() == text.lower()]
        return matches[0] if matches else None
    return None
