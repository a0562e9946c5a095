"""Custom and extended field values (SPEC §2): which are accepted, and in what stored form."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import re2

from customer_updates.rules.parse import FIELD_VALUE_MAX, custom_value_text
from customer_updates.rules.state import ExtendedFieldDef, OrgConfig

# A custom field's regex runs on every update that sets the field, so it is matched by RE2: linear in the
# value's length whatever the pattern (no catastrophic backtracking can hang a worker). RE2 has no
# backreferences or lookaround; a pattern that needs them is refused when the org file is loaded.
REGEX_MAX = 500
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the refusal is reported to whoever loads the org file, not to stderr


def compile_field_regex(pattern: str) -> Any:
    """The compiled pattern; ValueError with the reason when RE2 cannot run it."""
    if len(pattern) > REGEX_MAX:
        raise ValueError(f"longer than {REGEX_MAX} characters")
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(f"refused by RE2, the linear-time engine (no backreferences or lookaround): {text}") from None


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    try:
        return compile_field_regex(pattern)
    except ValueError:
        return None  # stored before patterns were checked at load: the value is refused, never matched slowly


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
