"""What a queue entry must be before kombu and Celery see it: kombu's Redis envelope, well typed.

kombu and Celery trust the envelope: a `task` header that is a list (unhashable), headers that are not an
object, a body that is not base64 or an unknown `body_encoding` raised outside any error handling and
stopped the worker; the entry then came back on restart or after the visibility timeout and stopped the
next one. Every entry the worker takes is checked here first, and one that fails goes to the dead-letter
list, raw, with the reason (a fixed text: never a value of the entry, which may be personal data).
"""

from __future__ import annotations

import binascii
from typing import Any

from customer_updates.worker.decoder import loads

# Header fields Celery reads while receiving a message (celery.worker.request, celery_batches), by type.
_TEXT_HEADERS = ("id", "root_id", "parent_id", "group", "argsrepr", "kwargsrepr", "origin", "lang", "shadow",
                 "eta", "expires")
_BODY_ENCODINGS = ("base64", "utf-8", None)


class Unusable(ValueError):
    """A queue entry no consumer can use; the message names what is wrong, never a value."""


def decode_entry(entry: str | bytes) -> dict[str, Any]:
    """The entry as kombu's message dict, checked; raises Unusable."""
    try:
        message = loads(entry)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested beyond the decoder
        raise Unusable("queue entry is not a kombu message: not JSON") from exc
    check(message)
    return message


def check(message: Any) -> None:
    """Raise Unusable unless `message` is a kombu envelope whose every part kombu and Celery read is typed."""
    if not isinstance(message, dict):
        raise Unusable("queue entry is not a kombu message: not a JSON object")
    properties = message.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str) \
            or not isinstance(properties.get("delivery_info"), dict):
        raise Unusable("queue entry is not a kombu message: no properties with delivery_tag and delivery_info")
    info = properties["delivery_info"]
    for name in ("exchange", "routing_key"):
        if not isinstance(info.get(name, ""), str):
            raise Unusable(f"invalid envelope: delivery_info.{name} is not text")
    priority = properties.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                 or not 0 <= priority <= 255):
        raise Unusable("invalid envelope: priority is not an integer of 0 to 255")
    for name in ("correlation_id", "reply_to"):
        if not isinstance(properties.get(name), str | None):
            raise Unusable(f"invalid envelope: properties.{name} is not text")
    for name in ("content-type", "content-encoding"):
        if not isinstance(message.get(name), str | None):
            raise Unusable(f"invalid envelope: {name} is not text")
    _check_headers(message.get("headers"))
    _check_body(message.get("body"), properties.get("body_encoding"))


def _check_headers(headers: Any) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict):
        raise Unusable("invalid envelope: headers is not an object")
    if not isinstance(headers.get("task", ""), str):
        raise Unusable("invalid envelope: task header is not text")
    for name in _TEXT_HEADERS:
        if not isinstance(headers.get(name), str | None):
            raise Unusable(f"invalid envelope: {name} header is not text")
    retries = headers.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
        raise Unusable("invalid envelope: retries header is not an integer")
    limits = headers.get("timelimit")
    if limits is not None and not (isinstance(limits, list) and len(limits) == 2 and all(
            limit is None or (isinstance(limit, int | float) and not isinstance(limit, bool)) for limit in limits)):
        raise Unusable("invalid envelope: timelimit header is not [soft, hard]")


def _check_body(body: Any, encoding: Any) -> None:
    if not isinstance(body, str):
        raise Unusable("invalid envelope: body is not text")
    if encoding not in _BODY_ENCODINGS and not (isinstance(encoding, str) and encoding.lower() == "utf-8"):
        raise Unusable("invalid envelope: unknown body_encoding")
    if encoding == "base64":
        try:
            binascii.a2b_base64(body.encode("ascii"), strict_mode=True)
        except (ValueError, binascii.Error) as exc:  # UnicodeEncodeError is a ValueError
            raise Unusable("invalid envelope: body is not base64") from exc
