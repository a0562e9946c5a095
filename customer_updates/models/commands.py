"""The command envelope as it travels on the queue (SPEC §2, DESIGN §3 wire contract)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    org_id: int = Field(gt=0)
    # No control characters: ids are keys in the database and in Redis, and PostgreSQL refuses NUL.
    request_id: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    # When the producer decided the change. Raw producers may leave it out: then it is when the
    # worker decoded the command, the closest to "enqueue time" it can know.
    issued_at: datetime = Field(default_factory=lambda: utcnow())
    user_context: UserContext | None = None
    batch_id: str | None = Field(None, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    position: int | None = Field(None, ge=0)
    customer: Any = None

    @field_validator("issued_at")
    @classmethod
    def _naive_utc(cls, value: datetime) -> datetime:
        # Stored timestamps are naive UTC: SQLite has no time zones and mixing both breaks comparisons.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    def payload_hash(self) -> str:
        return payload_hash(self.customer)


def payload_hash(customer: Any) -> str:
    """What makes two deliveries of a request id 'the same payload' (Stripe's idempotency rule)."""
    canonical = json.dumps(customer, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
