"""The command envelope as it travels on the queue (SPEC §2, DESIGN §3 wire contract)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

# The database's BIGINT, and what the result and outbox encoder (orjson) can write.
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class UserContext(BaseModel):
    """Who made a change, for the audit trail (the USER-CONTEXT-* HTTP headers)."""

    model_config = ConfigDict(extra="ignore")
    entity_type: str | None = Field(None, max_length=100)
    entity_id: str | None = Field(None, max_length=100)
    source: str | None = Field(None, max_length=100)
    source_id: str | None = Field(None, max_length=100)


class Command(BaseModel):
    """One update of one customer. `customer` stays raw JSON: the worker validates it so that a bad item
    becomes a stored failed result with a SPEC code instead of an exception at the producer."""

    model_config = ConfigDict(extra="ignore")
    org_id: int = Field(gt=0, le=INT64_MAX)
    # No control characters: ids are keys in the database and in Redis, and PostgreSQL refuses NUL.
    request_id: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    # When the producer decided the change. Raw producers may leave it out: then it is when the
    # worker decoded the command, the closest to "enqueue time" it can know.
    issued_at: datetime = Field(default_factory=lambda: utcnow())
    user_context: UserContext | None = None
    batch_id: str | None = Field(None, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    position: int | None = Field(None, ge=0, le=INT64_MAX)
    # What the command asks (SPEC §4): an update (the default; update envelopes carry no kind), a merge
    # request (`customer` is {"survivor_id", "victim_id"}) or an unmerge (`customer` is {"victim_id"}).
    kind: Literal["update", "merge", "unmerge"] = "update"
    customer: Any = None

    @field_validator("issued_at", mode="before")
    @classmethod
    def _kombu_datetime(cls, value: Any) -> Any:
        # A command sent with a datetime through Celery's own JSON encoder arrives as kombu's marker; the
        # worker decodes messages without kombu's type hooks (client data stays plain JSON), so unwrap it here.
        if isinstance(value, dict) and value.get("__type__") == "datetime" and set(value) == {"__type__", "__value__"}:
            return value["__value__"]
        return value

    @field_validator("issued_at")
    @classmethod
    def _naive_utc(cls, value: datetime) -> datetime:
        # Stored timestamps are naive UTC: SQLite has no time zones and mixing both breaks comparisons.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    def payload_hash(self) -> str:
        """The hash of what arrived: `customer` was decoded from the message's JSON text."""
        return command_hash(self.kind, self.customer, decoded_payload_hash)


def command_hash(kind: str, customer: Any, hashed: Callable[[Any], str] | None = None) -> str:
    """An update's hash is its payload's; a merge or an unmerge names its kind as well, so that a request
    id reused for another kind of command is a 409 like any other payload."""
    hashed = hashed or payload_hash
    return hashed(customer) if kind == "update" else hashed({"kind": kind, "customer": customer})


class MergeAsk(BaseModel):
    """The `customer` of a merge request or an unmerge: who, by user_id (survivor_id for a merge only)."""

    model_config = ConfigDict(extra="forbid")
    victim_id: int = Field(gt=0, le=INT64_MAX, strict=True)
    survivor_id: int | None = Field(None, gt=0, le=INT64_MAX, strict=True)


def payload_hash(customer: Any) -> str:
    """What makes two deliveries of a request id 'the same payload' (Stripe's idempotency rule).

    Never raises: a payload that cannot be UTF-8 (a lone surrogate) is hashed in its ASCII-escaped form.
    Such a command is refused anyway (`unusable_value`); its hash only has to be stable."""
    canonical = json.dumps(customer, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        data = canonical.encode()
    except UnicodeEncodeError:
        data = json.dumps(customer, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


# orjson's text is the json module's (sorted keys, no spaces, UTF-8) for strings, integers, booleans, lists and
# dicts with string keys; it differs for some floats (1e-05 against 0.00001) and NaN (null). Subclasses, dates and
# dataclasses pass through to the TypeError; an Enum (which orjson writes as its value) cannot come from JSON text.
_SAME_AS_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | \
    orjson.OPT_PASSTHROUGH_DATACLASS
_MAYBE_FLOAT = re.compile(rb"\d[.eE]")  # also in strings ("v1.2"): those take the slower way, with the same hash


def decoded_payload_hash(customer: Any) -> str:
    """`payload_hash` of a value decoded from JSON text (a worker's command), in about half the time: the text to
    hash made by orjson, unless it may hold a float or a NaN, where the json module makes it as before."""
    try:
        data = orjson.dumps(customer, option=_SAME_AS_JSON)
    except TypeError:  # a lone surrogate, an integer beyond 64 bits, a key that is not a string
        return payload_hash(customer)
    if b"null" in data or _MAYBE_FLOAT.search(data):
        return payload_hash(customer)
    return hashlib.sha256(data).hexdigest()


# orjson refuses lone surrogates and integers beyond 64 bits unsigned, and writes non-finite numbers as null;
# integers between the signed and the unsigned bound have 19 or 20 digits.
# What the json module encodes and nothing more: datetimes and dataclasses are refused, not converted.
STRICT_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LONG_DIGITS = re.compile(rb"\d{19}")


def json_screen(value: Any) -> bool:
    """Whether one orjson pass shows that `unusable_value` would find nothing in `value`.

    One pass in C instead of a walk in Python: the walk runs only for what this cannot clear (a payload
    orjson refuses, one with a null or a run of 19 digits)."""
    try:
        text = orjson.dumps(value, option=STRICT_JSON)
    except TypeError:  # orjson.JSONEncodeError included
        return False
    return b"null" not in text and _LONG_DIGITS.search(text) is None


def find_unusable(value: Any, path: str = "customer") -> str | None:
    """`unusable_value`'s answer, in the common case from `json_screen`'s one pass."""
    return None if json_screen(value) else unusable_value(value, path)


def unusable_value(value: Any, path: str = "customer") -> str | None:
    """Where a payload holds what no store can keep, e.g. "customer.lastname: lone surrogate", or None.

    JSON lets a message carry lone surrogates (text that is not Unicode), numbers beyond any float (1e999
    read as infinity, NaN) and integers beyond 64 bits; PostgreSQL, the result encoder and the payload hash
    refuse them, so the command fails alone with code 400 instead of failing its whole transaction."""
    if isinstance(value, str):
        return None if value.isascii() or not _has_surrogate(value) else f"{path}: lone surrogate in text"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else f"{path}: integer beyond 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: number is not finite"
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            if _has_surrogate(name):
                return f"{path}: lone surrogate in a key"
            found = unusable_value(item, f"{path}.{name[:60]}")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unusable_value(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
