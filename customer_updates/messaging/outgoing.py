"""Commands as a producer builds them, checked before anything is sent (shared by the sync and async producers).

Everything here is CPU only: no connection. A command that passes is one the queue can carry; what the rules
say about it is the worker's answer.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from customer_updates.errors import InvalidBody
from customer_updates.messaging.results import batch_key
from customer_updates.models.commands import (
    INT64_MAX,
    STRICT_JSON,
    Command,
    MergeAsk,
    UserContext,
    command_hash,
    find_unusable,
    json_screen,
    payload_hash,
    unusable_value,
    utcnow,
)
from customer_updates.rules.parse import as_list

# What Command's request_id accepts; an id matching it skips pydantic (its cost was a fifth of a send).
_PLAIN_ID = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


@dataclass
class Outgoing:
    """What one producer call sends: its commands, the caller-given ids to check for a 409 first
    ((org_id, request_id, payload hash) each), and a batch manifest to write before the messages."""

    commands: list[dict[str, Any]]
    checks: list[tuple[int, str, str]] = field(default_factory=list)
    manifest: tuple[str, str] | None = None  # (key, JSON) of cu:batch:{org}:{batch_id}


def items_of(body: Any) -> list[Any]:
    """The customer items of a v1.1 body `{"root": {"customer": [...]}}` (a single object is accepted)."""
    if not isinstance(body, dict):
        raise InvalidBody("the body must be a JSON object like {\"root\": {\"customer\": [...]}}")
    root = body.get("root", body)
    if not isinstance(root, dict) or "customer" not in root:
        raise InvalidBody("the body has no root.customer")
    items = as_list(root["customer"])
    if not items:
        raise InvalidBody("root.customer is empty")
    return items


def refuse_unusable(customer: Any) -> None:
    """Refuse what the worker would fail with code 400 whatever the rules say: text that is not Unicode
    (a lone surrogate), numbers that are not finite, integers beyond 64 bits."""
    problem = find_unusable(customer)
    if problem is not None:
        raise InvalidBody(problem)


# Made-up ids need to be unique, not secret: a generator seeded from the OS (again in a forked child) and no
# system call per id. uuid4 (os.urandom) released the GIL on every call, and the flusher thread took it.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def new_id() -> str:
    """A made-up request or batch id: 128 random bits in hex."""
    return f"{_ids.getrandbits(128):032x}"


def refuse_unjson(customer: Any) -> None:
    """Refuse what JSON cannot carry and what `refuse_unusable` refuses, here rather than in the worker,
    naming the field; in the common case one orjson pass clears it (`json_screen`)."""
    if json_screen(customer):
        return
    problem = unusable_value(customer)  # the screen could not clear it: the walk names the field
    if problem is not None:
        raise InvalidBody(problem)
    try:
        orjson.dumps(customer, option=STRICT_JSON)
    except TypeError as exc:  # orjson.JSONEncodeError included: a value JSON has no form for
        raise InvalidBody(f"customer: {exc}") from exc


def command(org_id: int, customer: Any, request_id: str | None, issued_at: datetime | None,
            user_context: dict[str, Any] | UserContext | None, batch_id: str | None = None,
            position: int | None = None) -> dict[str, Any]:
    """The wire envelope of one command (DESIGN §3), or InvalidBody naming the field."""
    if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
        raise InvalidBody("org_id must be a positive integer")
    if user_context is None and batch_id is None and position is None and org_id <= INT64_MAX \
            and (request_id is None or (type(request_id) is str and _PLAIN_ID.fullmatch(request_id))) \
            and (issued_at is None or (type(issued_at) is datetime and issued_at.tzinfo is None)):
        # The common call, built as Command.model_dump(mode="json", exclude_none=True) would build it.
        wire: dict[str, Any] = {"org_id": org_id, "request_id": request_id or new_id(),
                                "issued_at": (issued_at or utcnow()).isoformat(), "kind": "update"}
    else:
        try:
            context = UserContext.model_validate(user_context) if isinstance(user_context, dict) else user_context
            model = Command(org_id=org_id, request_id=request_id or new_id(),
                            issued_at=issued_at or utcnow(), user_context=context, batch_id=batch_id,
                            position=position, customer=customer)
        except ValidationError as exc:  # callers catch one error type: InvalidBody names the field
            first = exc.errors()[0]
            raise InvalidBody(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
        wire = model.model_dump(mode="json", exclude_none=True)
    wire["customer"] = customer  # raw, as given: the worker validates it and answers with a code
    return wire


def update(org_id: int, customer: Any, request_id: str | None, issued_at: datetime | None,
           user_context: dict[str, Any] | UserContext | None) -> Outgoing:
    wire = command(org_id, customer, request_id, issued_at, user_context)
    refuse_unjson(customer)
    # A made-up id can have no result of another payload: nothing to check.
    checks = [(org_id, request_id, payload_hash(customer))] if request_id is not None else []
    return Outgoing([wire], checks)


def merge_kind(org_id: int, kind: str, ask: dict[str, Any], request_id: str | None, issued_at: datetime | None,
               user_context: dict[str, Any] | UserContext | None) -> Outgoing:
    """A merge request or an unmerge (SPEC §4)."""
    try:
        MergeAsk.model_validate(ask)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidBody(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    refuse_unusable(ask)
    wire = {**command(org_id, ask, request_id, issued_at, user_context), "kind": kind}
    checks = [(org_id, request_id, command_hash(kind, ask))] if request_id is not None else []
    return Outgoing([wire], checks)


def batch(org_id: int, body: Any, request_ids: list[str] | None, issued_at: datetime | None,
          user_context: dict[str, Any] | UserContext | None, batch_id: str | None) -> tuple[str, Outgoing]:
    """The batch id and what a v1.1 body sends: a command per item and the batch's manifest."""
    items = items_of(body)
    if request_ids is not None and len(request_ids) != len(items):
        raise InvalidBody("request_ids must have one id per customer item")
    batch_id = batch_id or new_id()
    moment = issued_at or utcnow()
    # The envelope is validated once; items differ only by request id and position (per-item
    # pydantic validation was a third of a producer's time on large batches).
    template = command(org_id, None, request_ids[0] if request_ids else None, moment, user_context, batch_id, 0)
    for request_id in request_ids or ():
        if not isinstance(request_id, str) or not 1 <= len(request_id) <= 100:
            raise InvalidBody("each request id must be a string of 1 to 100 characters")
    for item in items:
        refuse_unusable(item)
    commands = [{**template, "request_id": request_ids[i] if request_ids else new_id(),
                 "position": i, "customer": item} for i, item in enumerate(items)]
    manifest = [[c["request_id"], payload_hash(c["customer"])] for c in commands]
    checks = [(org_id, rid, digest) for rid, digest in manifest] if request_ids is not None else []
    # The manifest goes first: a reader that sees results must be able to find the batch.
    return batch_id, Outgoing(commands, checks, (batch_key(org_id, batch_id), json.dumps(manifest)))
