"""JSON text for what workers write in bulk: results, audit and outbox rows, events, log lines.

orjson, because this text is made for every command a worker applies and the json module's encoder
was a large share of a worker's time (bench/HISTORY.md). The text is
what `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` gives for plain data; datetimes are
ISO 8601, Decimals and other objects their `str()` (what `default=str` gave before), sets sorted lists.
Request payload hashes are of the json module's text (models/commands.py), since stored hashes must not
change; orjson makes that same text there only where it is known to be the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

import orjson


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)  # Decimal among others


def loads(text: str | bytes) -> Any:
    """JSON columns as the database returns them (orjson: every loaded customer's columns pass here)."""
    return orjson.loads(text)


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_fallback, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True, slots=True)
class Dumped:
    """A value with its JSON text, made once where one value is written several times: a result to its
    idempotency row and to Redis, a command's user context to each of its audit rows."""

    value: Any
    text: str


def dumped(value: Any) -> Dumped:
    return Dumped(value, dumps(value))


def _rows_fallback(value: Any) -> Any:
    if isinstance(value, Dumped):
        return orjson.Fragment(value.text)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return _fallback(value)


def dumps_rows(rows: Any) -> str:
    """`dumps`, with each `Dumped` value written as its text, not made again."""
    return orjson.dumps(rows, default=_rows_fallback,
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS).decode()
