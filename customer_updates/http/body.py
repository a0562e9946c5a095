"""Reading an update body within the limits: size, time, JSON, nesting, batch size, storable values."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request

from customer_updates.errors import InvalidBody
from customer_updates.http.errors import BATCH_LIMIT_EXCEEDED, ApiError
from customer_updates.models.commands import find_unusable
from customer_updates.producer import items_of

# A v1.1 body nests about seven levels (root, customer, item, custom_fields, field, entry). Far deeper
# input is refused here, before it can cost recursion in the worker.
MAX_DEPTH = 32


def too_large(limit: int) -> ApiError:
    return ApiError(413, 413, f"Request body too large: at most {limit} bytes")


async def read_limited(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (declared or streamed), and with 408 if
    it has not all arrived within `timeout` seconds (a client trickling a body holds a connection)."""
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, limit)
    except TimeoutError:
        raise ApiError(408, 408, f"Request timeout: the body did not arrive within {timeout:g} seconds",
                       headers={"Connection": "close"}) from None


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise ApiError.invalid("Content-Length is not a number")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError.invalid('the body is empty; send {"root": {"customer": [...]}}')
    try:
        # NaN and Infinity are Python's extensions, not JSON: other consumers of the queue would choke.
        return json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError.invalid("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, integers beyond Python's digit limit
        raise ApiError.invalid(f"malformed JSON: {exc}") from None


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep `value` nests, counting at most to `limit + 1` (iterative: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if not isinstance(node, dict | list):
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def update_items(raw: bytes, max_items: int) -> list[Any]:
    """The customer items of a v1.1 body, or the ApiError the client must see."""
    body = parse_json(raw)
    if depth(body) > MAX_DEPTH:
        raise ApiError.invalid(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        items = items_of(body)
    except InvalidBody as exc:
        raise ApiError.invalid(str(exc)) from None
    if len(items) > max_items:
        raise ApiError(400, BATCH_LIMIT_EXCEEDED,
                       f"Batch limit exceeded: at most {max_items} customers per request, got {len(items)}")
    # A lone surrogate (JSON's "\\ud800" is not Unicode text), 1e999 or an integer beyond 64 bits: no store
    # can keep it, so the body is refused like bad UTF-8, naming where, never the value.
    for i, item in enumerate(items):
        problem = find_unusable(item, f"customer[{i}]")
        if problem is not None:
            raise ApiError.invalid(problem)
    return items
