"""The worker's decoder of queue messages: orjson wherever it gives what kombu's decoder gives.

kombu decodes JSON with the json module and an object hook, a Python call for every JSON object, twice
per message (the Redis transport's envelope, then the body). In the worker's main process that was a
third of its profile samples at one update a message, where the main process is the busiest part of
the worker (bench/README.md). orjson reads the same text into the same values, except where the text
may hold what the hook turns into other types, or what orjson reads differently; those keep kombu's.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from kombu.serialization import registry
from kombu.utils import json as kombu_json

# A key the hook acts on ("__type__", which kombu turns into a datetime, Decimal, bytes...), maybe with
# escaped letters: \u005f is "_", \u0065 "e", \u0070 "p", \u0074 "t", \u0079 "y".
_TYPE_KEY = b"__type__"
_ESCAPE = b"\\u00"
_ESCAPED_KEY_LETTER = re.compile(rb"\\u00(?:5[fF]|65|70|74|79)")
# Runs of 19 digits or more (an integer beyond 64 bits: orjson reads it as a float), found by turning
# every digit into "0" (bytes.translate is a table lookup in C; a regular expression was slower than
# decoding the whole message).
_ALL_DIGITS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _orjson_reads_as_kombu(text: bytes) -> bool:
    if _TYPE_KEY in text:
        return False
    if _ESCAPE in text and _ESCAPED_KEY_LETTER.search(text):
        return False
    return _LONG_NUMBER not in text.translate(_ALL_DIGITS_ZERO)


def loads(data: Any) -> Any:
    """kombu's `loads`, faster: the same values for every text, and kombu's errors for bad ones."""
    if isinstance(data, str | bytes):
        text = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if _orjson_reads_as_kombu(text):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass  # NaN, lone surrogates, malformed text...: kombu's decoder decides, as before
    return kombu_json.loads(data)


def install() -> None:
    """Decode `application/json` messages with `loads` in this process (encoding stays kombu's)."""
    registry.register("json", kombu_json.dumps, loads, content_type="application/json", content_encoding="utf-8")
