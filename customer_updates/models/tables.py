"""The database schema as SQLAlchemy 2.0 typed mappings. Every change here needs an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    configs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    side_effects: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)


class CustomFieldDef(Base):
    __tablename__ = "custom_field_defs"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    regex: Mapped[str | None] = mapped_column(Text)
    multi_select: Mapped[bool] = mapped_column(Boolean, default=False)


class ExtendedFieldDef(Base):
    __tablename__ = "extended_field_defs"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    values: Mapped[list[Any] | None] = mapped_column(JSON)


class Till(Base):
    __tablename__ = "tills"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    store: Mapped[str | None] = mapped_column(String(200))


class Program(Base):
    __tablename__ = "programs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)


class Slab(Base):
    __tablename__ = "slabs"
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    threshold: Mapped[int] = mapped_column(BigInteger, default=0)
    validity_months: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(200))


class Credential(Base):
    """HTTP ingress credentials. `password_hash` is a scrypt hash of the MD5 the client sends."""

    __tablename__ = "credentials"
    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    till_code: Mapped[str | None] = mapped_column(String(100))
    can_write_customers: Mapped[bool] = mapped_column(Boolean, default=True)


class Customer(Base):
    __tablename__ = "customers"
    user_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    mobile: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    external_id: Mapped[str | None] = mapped_column(String(100))
    firstname: Mapped[str | None] = mapped_column(String(100))
    lastname: Mapped[str | None] = mapped_column(String(100))
    registered_on: Mapped[datetime | None] = mapped_column(DateTime)
    registered_till: Mapped[str | None] = mapped_column(String(100))
    associated_with: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20), default="LOYALTY")
    fraud_status: Mapped[str] = mapped_column(String(20), default="NONE")
    loyalty_points: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_points: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_purchases: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    slab_number: Mapped[int | None] = mapped_column(Integer)
    tier_expiry_date: Mapped[datetime | None] = mapped_column(DateTime)
    points_summaries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Field name -> ISO issued_at of the change that last set it (SPEC §3.5, last writer wins).
    stamps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Side-effect keys already fired for this customer (SPEC §5: at most once per customer and key).
    fired: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Custom and extended fields, name -> [value, ISO issued_at of the change that set it], and
    # subscriptions, "CHANNEL:PRIORITY" -> [status, scope, ISO issued_at]. In the customer's row, not rows
    # of their own: a batch reads and writes them with the row it locks anyway (migration 0003).
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    extended_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    subscriptions: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    merged_into: Mapped[int | None] = mapped_column(BigId)
    updated_on: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # Identifiers are unique among an org's *active* customers; merged victims keep theirs for history.
        Index("uq_customers_active_mobile", "org_id", "mobile", unique=True,
              postgresql_where=text("active AND mobile IS NOT NULL"),
              sqlite_where=text("active AND mobile IS NOT NULL")),
        Index("uq_customers_active_email", "org_id", "email", unique=True,
              postgresql_where=text("active AND email IS NOT NULL"),
              sqlite_where=text("active AND email IS NOT NULL")),
        Index("uq_customers_active_external_id", "org_id", "external_id", unique=True,
              postgresql_where=text("active AND external_id IS NOT NULL"),
              sqlite_where=text("active AND external_id IS NOT NULL")),
        # Lookups by a merged victim's identifiers.
        Index("ix_customers_mobile", "org_id", "mobile"),
        Index("ix_customers_email", "org_id", "email"),
        Index("ix_customers_external_id", "org_id", "external_id"),
        # Room on each page for in-place (HOT) updates: see migration 0002.
        {"postgresql_with": {"fillfactor": 80}},
    )


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(30))  # CustomerUpdate | CustomerMerge | CustomerUnmerge | PointsAward
    field: Mapped[str | None] = mapped_column(String(120))
    previous: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(100))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime)
    user_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Merge(Base):
    __tablename__ = "merges"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(Integer, index=True)
    survivor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # Not unique: an unmerged victim may be merged again; its newest record is its merge (migration 0005).
    victim_id: Mapped[int] = mapped_column(BigInteger, index=True)
    identifier: Mapped[str] = mapped_column(String(20))  # the identifier that caused it, or "request"
    request_id: Mapped[str | None] = mapped_column(String(100))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime)
    user_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What moved from the victim, per field, and both states (rules.merge.moved_record): for unmerge and history.
    moved: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)
    undone_request_id: Mapped[str | None] = mapped_column(String(100))
    undone_user_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CommandRecord(Base):
    """The idempotency record: one per accepted (org, request id), written with the changes it made."""

    __tablename__ = "command_records"
    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    payload_hash: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str | None] = mapped_column(String(100), index=True)
    position: Mapped[int | None] = mapped_column(Integer)
    success: Mapped[bool] = mapped_column(Boolean)
    code: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class RejectedCommand(Base):
    """A request id delivered with a payload other than the one first applied (code 409)."""

    __tablename__ = "rejected_commands"
    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    payload_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str | None] = mapped_column(String(100))
    position: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OutboxEntry(Base):
    """Follow-on work decided in an update's transaction; published after commit, relayed if not confirmed."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(BigInteger)  # 0 for "events": the events of many customers
    # award | event | events: one batch's events of one org, {"ids": [...], "events": [...]} (PostgreSQL)
    kind: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # compressed with lz4 on PostgreSQL: migration 0004
    created_at: Mapped[datetime] = mapped_column(DateTime)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    done_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "created_at"),)


class PointsLedger(Base):
    __tablename__ = "points_ledger"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(100))
    # One award per outbox entry: the database itself refuses a second one.
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("outbox_id", name="uq_points_ledger_outbox"),)
