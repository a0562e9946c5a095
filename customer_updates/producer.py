"""The producer library (DESIGN §3): enqueue update commands, read their results.

Needs only `REDIS_URL`: results are read from Redis keys the worker writes, not from Celery's result
backend and not from the database.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from pydantic import ValidationError

from customer_updates.errors import InvalidBody, RequestIdConflict
from customer_updates.messaging.results import batch_key, read_batch_response, read_result, stored_hashes, wait_for
from customer_updates.models.commands import (
    Command,
    MergeAsk,
    UserContext,
    command_hash,
    payload_hash,
    unusable_value,
    utcnow,
)
from customer_updates.models.v11 import checked_batch, checked_item
from customer_updates.rules.parse import as_list
from customer_updates.settings import Settings, get_settings


@dataclass
class BatchReceipt:
    batch_id: str
    request_ids: list[str] = field(default_factory=list)


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
    problem = unusable_value(customer)
    if problem is not None:
        raise InvalidBody(problem)


class Producer:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._redis: redis.Redis | None = None
        self._celery: Any = None
        # The payload hash of each request id this producer sent, so that its reads can tell a 409 (the id's
        # stored result belongs to another payload) from its own result. Bounded: oldest forgotten first.
        self._sent: dict[tuple[int, str], str] = {}

    @classmethod
    def from_env(cls) -> Producer:
        return cls(get_settings())

    @property
    def celery(self) -> Any:
        """A Celery app of our own settings, used only to send (connects on first send)."""
        if self._celery is None:
            from customer_updates.messaging.broker import producer_app

            self._celery = producer_app(self.settings)
        return self._celery

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.redis_url)
        return self._redis

    def _command(self, org_id: int, customer: Any, request_id: str | None, issued_at: datetime | None,
                 user_context: dict[str, Any] | UserContext | None, batch_id: str | None = None,
                 position: int | None = None) -> dict[str, Any]:
        if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
            raise InvalidBody("org_id must be a positive integer")
        try:
            context = UserContext.model_validate(user_context) if isinstance(user_context, dict) else user_context
            command = Command(org_id=org_id, request_id=request_id or uuid.uuid4().hex,
                              issued_at=issued_at or utcnow(), user_context=context, batch_id=batch_id,
                              position=position, customer=customer)
        except ValidationError as exc:  # callers catch one error type: InvalidBody names the field
            first = exc.errors()[0]
            raise InvalidBody(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
        wire = command.model_dump(mode="json", exclude_none=True)
        refuse_unusable(customer)
        wire["customer"] = customer  # raw, as given: the worker validates it and answers with a code
        return wire

    def enqueue_update(self, org_id: int, customer: Any, *, request_id: str | None = None,
                       issued_at: datetime | None = None,
                       user_context: dict[str, Any] | UserContext | None = None) -> str:
        from customer_updates.messaging.sending import publish_many

        command = self._command(org_id, customer, request_id, issued_at, user_context)
        json.dumps(command)  # refuse what JSON cannot carry, here rather than in the worker
        # A made-up id can have no result of another payload: neither a round trip nor a memory for it.
        sent = payload_hash(customer) if request_id is not None else None
        if request_id is not None and sent is not None:
            self._refuse_conflicts(org_id, [request_id], [sent])
        publish_many([[command]], celery=self.celery)  # one pipelined round trip (message and event)
        if request_id is not None and sent is not None:
            self._remember(org_id, [(request_id, sent)])
        return str(command["request_id"])

    def enqueue_merge(self, org_id: int, survivor_id: int, victim_id: int, *, request_id: str | None = None,
                      issued_at: datetime | None = None,
                      user_context: dict[str, Any] | UserContext | None = None) -> str:
        """A merge request (SPEC §4): merge `victim_id` into `survivor_id`, members included."""
        return self._enqueue_kind(org_id, "merge", {"survivor_id": survivor_id, "victim_id": victim_id},
                                  request_id, issued_at, user_context)

    def enqueue_unmerge(self, org_id: int, victim_id: int, *, request_id: str | None = None,
                        issued_at: datetime | None = None,
                        user_context: dict[str, Any] | UserContext | None = None) -> str:
        """Undo the latest merge of `victim_id` (SPEC §4)."""
        return self._enqueue_kind(org_id, "unmerge", {"victim_id": victim_id}, request_id, issued_at, user_context)

    def _enqueue_kind(self, org_id: int, kind: str, ask: dict[str, Any], request_id: str | None,
                      issued_at: datetime | None, user_context: dict[str, Any] | UserContext | None) -> str:
        from customer_updates.messaging.sending import publish_many

        try:
            MergeAsk.model_validate(ask)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidBody(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
        command = {**self._command(org_id, ask, request_id, issued_at, user_context), "kind": kind}
        digest = command_hash(kind, ask)
        if request_id is not None:
            self._refuse_conflicts(org_id, [request_id], [digest])
        publish_many([[command]], celery=self.celery)
        if request_id is not None:
            self._remember(org_id, [(request_id, digest)])
        return str(command["request_id"])

    def _refuse_conflicts(self, org_id: int, request_ids: list[str], hashes: list[str]) -> None:
        """SPEC §6 409: refuse request ids whose stored result was made for another payload."""
        stored = stored_hashes(self.redis, org_id, request_ids)
        conflicts = [rid for rid, mine, theirs in zip(request_ids, hashes, stored, strict=True)
                     if theirs is not None and theirs != mine]
        if conflicts:
            raise RequestIdConflict(org_id, conflicts)

    def _remember(self, org_id: int, sent: list[tuple[str, str]]) -> None:
        limit = max(0, self.settings.producer_remembered_hashes)
        for request_id, digest in sent[-limit:] if limit else ():
            self._sent[(org_id, request_id)] = digest
        while len(self._sent) > limit:
            del self._sent[next(iter(self._sent))]

    def enqueue_batch(self, org_id: int, body: Any, *, request_ids: list[str] | None = None,
                      issued_at: datetime | None = None, user_context: dict[str, Any] | UserContext | None = None,
                      batch_id: str | None = None) -> BatchReceipt:
        from customer_updates.messaging.sending import publish_many

        items = items_of(body)
        if request_ids is not None and len(request_ids) != len(items):
            raise InvalidBody("request_ids must have one id per customer item")
        batch_id = batch_id or uuid.uuid4().hex
        moment = issued_at or utcnow()
        # The envelope is validated once; items differ only by request id and position (validating each
        # item's envelope again would cost a producer time per item on large batches).
        template = self._command(org_id, None, request_ids[0] if request_ids else None, moment, user_context,
                                 batch_id, 0)
        for request_id in request_ids or ():
            if not isinstance(request_id, str) or not 1 <= len(request_id) <= 100:
                raise InvalidBody("each request id must be a string of 1 to 100 characters")
        for item in items:
            refuse_unusable(item)
        commands = [{**template, "request_id": request_ids[i] if request_ids else uuid.uuid4().hex,
                     "position": i, "customer": item} for i, item in enumerate(items)]
        manifest = [[c["request_id"], payload_hash(c["customer"])] for c in commands]
        if request_ids is not None:
            self._refuse_conflicts(org_id, [rid for rid, _ in manifest], [digest for _, digest in manifest])
        # The manifest first: a reader that sees results must be able to find the batch.
        self.redis.set(batch_key(org_id, batch_id), json.dumps(manifest),
                       ex=self.settings.result_ttl_seconds)
        size = max(1, self.settings.producer_message_size)
        publish_many([commands[i:i + size] for i in range(0, len(commands), size)], celery=self.celery)
        if request_ids is not None:  # made-up ids cannot be reused by another payload: nothing to remember
            self._remember(org_id, [(rid, digest) for rid, digest in manifest])
        return BatchReceipt(batch_id, [c["request_id"] for c in commands])

    def get_result(self, org_id: int, request_id: str, timeout: float = 0, *,
                   payload: Any = None) -> dict[str, Any] | None:
        """The v1.1 item of a request id. A 409 item when its stored result was made for another payload
        than `payload` (or than the one this producer sent under that id)."""
        wanted = payload_hash(payload) if payload is not None else self._sent.get((org_id, request_id))
        found = wait_for(
            lambda: read_result(self.redis, org_id, request_id, wanted, payload), timeout)
        return checked_item(found) if found is not None else None

    def get_batch_result(self, org_id: int, batch_id: str, timeout: float = 0) -> dict[str, Any] | None:
        # The batch's manifest holds each item's payload hash: a reused request id reads as its 409.
        found = wait_for(lambda: read_batch_response(self.redis, org_id, batch_id), timeout)
        return checked_batch(found) if found is not None else None

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
