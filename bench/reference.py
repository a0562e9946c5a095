"""The reference: a plain Celery worker as the Celery and SQLAlchemy tutorials write it.

One task per update, a session per task, `acks_late`, JSON serializer; the task finds the customer by
mobile (or email) in its own table, applies names, custom and extended fields and subscriptions,
writes a log row and commits. No batching, no idempotency record, no audit trail, no rules beyond
"set what was sent": it does less work per update than customer-updates, on purpose.

Run by the benchmark as `celery -A bench.reference worker -Q bench_reference`; it reads
`BENCH_DATABASE_URL` and `BENCH_REDIS_URL`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import JSON, DateTime, Engine, Integer, String, create_engine, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

QUEUE = "bench_reference"
TASK = "bench.reference.update_customer"

app = Celery("bench_reference", broker=os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/0"))
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                task_acks_late=True, task_default_queue=QUEUE, broker_connection_retry_on_startup=True)


class Base(DeclarativeBase):
    pass


class RefCustomer(Base):
    __tablename__ = "ref_customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mobile: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    firstname: Mapped[str | None] = mapped_column(String(100))
    lastname: Mapped[str | None] = mapped_column(String(100))
    registered_till: Mapped[str | None] = mapped_column(String(100))
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    extended_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    subscriptions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class RefUpdateLog(Base):
    __tablename__ = "ref_update_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(100), index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(DateTime)


def use_broker(url: str) -> None:
    """Send the reference's tasks to this broker from now on. The app caches the connection and producer pools
    of its first broker URL (kombu keeps one pool per URL, shared with the producer's app: left open)."""
    if app.conf.broker_url == url:
        return
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def create_tables(url: str) -> None:
    engine = create_engine(_url(url))
    Base.metadata.create_all(engine)
    engine.dispose()


def _url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        url = _url(os.environ["BENCH_DATABASE_URL"])
        _engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    return _engine


@worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    global _engine
    _engine = None  # the SQLAlchemy docs: never share a pool across fork


def _fields(container: Any, inner: str) -> list[dict[str, Any]]:
    entries = (container or {}).get(inner) if isinstance(container, dict) else container
    if isinstance(entries, dict):
        entries = [entries]
    return [e for e in entries or [] if isinstance(e, dict)]


@app.task(name=TASK, acks_late=True)
def update_customer(request_id: str, item: dict[str, Any]) -> None:
    with Session(engine()) as session:
        conditions = []
        if item.get("mobile"):
            conditions.append(RefCustomer.mobile == item["mobile"])
        if item.get("email"):
            conditions.append(RefCustomer.email == item["email"])
        customer = session.scalars(select(RefCustomer).where(or_(*conditions)).limit(1)).first() \
            if conditions else None
        if customer is not None:
            for name in ("firstname", "lastname", "registered_till"):
                if item.get(name):
                    setattr(customer, name, item[name])
            if item.get("email") and not customer.email:
                customer.email = item["email"]
            custom = dict(customer.custom_fields or {})
            custom.update({f["name"]: f.get("value") for f in _fields(item.get("custom_fields"), "field")})
            customer.custom_fields = custom
            extended = dict(customer.extended_fields or {})
            extended.update({f["name"]: f.get("value") for f in _fields(item.get("extended_fields"), "field")})
            customer.extended_fields = extended
            subs = dict(customer.subscriptions or {})
            subs.update({f"{s.get('channel')}:{s.get('priority')}": s.get("is_subscribed")
                         for s in _fields(item.get("subscriptions"), "subscription")})
            customer.subscriptions = subs
            customer.updated_at = datetime.now(UTC).replace(tzinfo=None)
        session.add(RefUpdateLog(request_id=request_id, customer_id=customer.id if customer else None,
                                 applied_at=datetime.now(UTC).replace(tzinfo=None)))
        session.commit()
