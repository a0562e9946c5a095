"""The worker's decoder of queue messages: plain JSON, orjson where it reads the text exactly.

kombu decodes JSON with an object hook that turns `{"__type__": ..., "__value__": ...}` into datetimes,
Decimals, bytes...; inside client data that changed the payload (its hash then differed from the
producer's) or failed on unknown types. Here no object becomes anything but a dict. orjson reads most
messages; the json module reads what orjson refuses or would change: lone surrogate escapes (the command
then fails alone, see models.commands.unusable_value), integers beyond 64 bits (orjson reads them as
floats), numbers beyond a float (1e999, NaN). The main process decodes every message, and kombu's
decoder calls a Python hook for every object in it, hence orjson first.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from kombu.serialization import registry
from kombu.utils import json as kombu_json

# Runs of 19 digits or more (maybe an integer beyond 64 bits), found by turning every digit into "0"
# (bytes.translate is a table lookup in C; a regular expression was slower than decoding the whole message).
_ALL_DIGITS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def loads(data: Any) -> Any:
    """JSON text (str or bytes) as plain values: dicts, lists, str, int, float, bool, None."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    text = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_NUMBER not in text.translate(_ALL_DIGITS_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # lone surrogates, non-finite numbers, malformed text: the json module decides
    return json.loads(data)


def install() -> None:
    """Decode `application/json` messages with `loads` in this process (encoding stays kombu's)."""
    registry.register("json", kombu_json.dumps, loads, content_type="application/json", content_encoding="utf-8")
