"""Identifier formats (SPEC §3.2): what a well-formed mobile, email and external id look like."""

from __future__ import annotations

import re

from customer_updates.rules.codes import Code
from customer_updates.rules.state import OrgConfig

_MOBILE = re.compile(r"^\+?(\d{8,15})$")
# Deliberately simple: one @, no spaces, a dot in the domain. Full RFC 5322 is not what CRMs accept.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]{2,}$")

INVALID_CODE = {"mobile": Code.INVALID_MOBILE, "email": Code.INVALID_EMAIL, "external_id": Code.INVALID_EXTERNAL_ID}


def normalise(name: str, value: str, org: OrgConfig) -> str | None:
    """The stored form of an identifier, or None when it is malformed.

    Mobiles are kept as digits without `+` (so `+9198...` and `9198...` are one customer);
    emails are compared case-insensitively, so they are stored lower-cased.
    """
    value = value.strip()
    if name == "mobile":
        compact = value.replace(" ", "").replace("-", "")
        match = _MOBILE.match(compact)
        return match.group(1) if match else None
    if name == "email":
        return value.lower() if len(value) <= 254 and _EMAIL.match(value) else None
    if name == "external_id":
        low = int(org.config("CONF_CLIENT_EXTERNAL_ID_MIN_LENGTH", 1))
        high = int(org.config("CONF_CLIENT_EXTERNAL_ID_MAX_LENGTH", 100))
        return value if low <= len(value) <= high and value.isprintable() else None
    raise ValueError(f"not an identifier: {name}")
