"""Is the service healthy? Broker, workers, database, queues, outbox and dead letters in one snapshot.

`customer-updates health` prints it (exit code 0 ok, 1 degraded, 2 down) and `customer-updates metrics`
exports the same numbers to Prometheus. Reading the snapshot changes nothing.

Queue messages are kept by kombu's Redis transport in one list per queue and priority step (LPUSH on
send, BRPOP from the other end), so the oldest waiting message is the last element. Celery puts no send
time into a message; the producer adds a `sent_at` header (see `messaging/sending.py`), and a message without it
(sent by another producer) counts in the depth but not in the age.

On RabbitMQ (an amqp:// broker) the depth of each queue is what a passive `queue.declare` answers: the
messages ready for delivery, read over AMQP itself (no management plugin). RabbitMQ tells an AMQP client
nothing more: how many messages consumers hold unacknowledged, and how long the oldest has waited (reading
it would mean taking and returning it, which counts towards the quorum queue's delivery limit), stay
unknown. Dead letters are those of the Redis list, where workers move what the quorum queues dead-letter,
plus those still on RabbitMQ's dead-letter queue (no worker has moved them yet).

Workers are asked through Celery's remote control (a broadcast on the broker, answered by each worker's
main process): which queues they consume, and how long they have been up. A queue no answering worker
consumes, or only workers that started moments ago (restarting in a loop), makes the service degraded.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis
from celery import Celery
from sqlalchemy import ColumnElement, Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from customer_updates.messaging import receipts
from customer_updates.messaging.broker import is_amqp
from customer_updates.messaging.names import DEAD_LETTER_QUEUE, QUEUES
from customer_updates.models import tables as t
from customer_updates.settings import Settings
from customer_updates.store.db import normalise_url

# kombu's Redis transport: one list per priority step, named queue + sep + step (step 0: the bare name).
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)
_UNACKED_KEY = "unacked"
_AMQP_NOT_FOUND = 404  # the reply code of a passive queue.declare for a queue that does not exist

OK, DEGRADED, DOWN = "ok", "degraded", "down"


@dataclass
class QueueStats:
    name: str
    messages: int = 0
    oldest_age_seconds: float | None = None


@dataclass
class WorkerStats:
    name: str
    queues: list[str] = field(default_factory=list)
    uptime_seconds: float | None = None  # None: it did not say in time


@dataclass
class Health:
    broker: bool = False
    database: bool = False
    database_checked: bool = True
    workers: list[WorkerStats] | None = None  # None: not asked (broker down)
    queues: list[QueueStats] = field(default_factory=list)
    reserved: int | None = None  # taken by workers, not yet acknowledged (prefetched or running); RabbitMQ: unknown
    outbox_unpublished: int | None = None
    outbox_awards_pending: int | None = None
    outbox_oldest_pending_age_seconds: float | None = None
    dead_letters: int | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.problems:
            return DOWN
        return DEGRADED if self.warnings else OK

    @property
    def exit_code(self) -> int:
        return {OK: 0, DEGRADED: 1, DOWN: 2}[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, **asdict(self)}


def _redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)


_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    """An engine of its own with a short connect timeout: a health check must answer, not hang."""
    url = normalise_url(url)
    if url not in _engines:
        if make_url(url).get_backend_name() == "sqlite":
            _engines[url] = create_engine(url, poolclass=NullPool, connect_args={"timeout": 5})
        else:
            _engines[url] = create_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=0,
                                          connect_args={"connect_timeout": 3})
    return _engines[url]


def queue_stats(client: redis.Redis, name: str, now: float) -> QueueStats:
    stats = QueueStats(name)
    oldest: float | None = None
    for step in _PRIORITY_STEPS:
        key = name if step == 0 else f"{name}{_PRIORITY_SEP}{step}"
        stats.messages += int(client.llen(key))
        raw = client.lindex(key, -1)
        sent_at = _sent_at(raw) if raw else None
        if sent_at is not None and (oldest is None or sent_at < oldest):
            oldest = sent_at
    stats.oldest_age_seconds = None if oldest is None else round(max(0.0, now - oldest), 3)
    return stats


def _sent_at(raw: Any) -> float | None:
    try:
        headers = json.loads(raw).get("headers") or {}
        value = headers.get("sent_at")
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def amqp_ready_messages(url: str, names: Sequence[str]) -> dict[str, int]:
    """The messages ready for delivery in each queue, from RabbitMQ's answer to a passive `queue.declare`
    (which creates nothing); 0 for a queue nobody has declared yet. Raises when the broker does not answer."""
    from kombu import Connection

    ready: dict[str, int] = {}
    # Timeouts on every socket operation, so that a broker that accepts but does not answer cannot hang us.
    with Connection(url, connect_timeout=3, transport_options={"read_timeout": 5, "write_timeout": 5}) as conn:
        conn.connect()
        for name in names:
            channel = conn.channel()
            try:
                ready[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except conn.channel_errors as exc:
                if getattr(exc, "code", None) != _AMQP_NOT_FOUND:
                    raise
                ready[name] = 0  # the 404 closed this channel only
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return ready


def _check_broker(settings: Settings, health: Health, now: float, workers_only: bool = False) -> None:
    if is_amqp(settings.celery_broker_url):
        _check_amqp_broker(settings, health, workers_only)
        return
    client = _redis_client(settings)
    try:
        client.ping()
        health.broker = True
        health.queues = [queue_stats(client, name, now) for name in QUEUES]
        health.reserved = int(client.hlen(_UNACKED_KEY))
        health.dead_letters = int(client.llen(settings.dead_letter_key))
    except redis.RedisError as exc:
        health.problems.append(f"broker unreachable: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def _check_amqp_broker(settings: Settings, health: Health, workers_only: bool) -> None:
    try:
        ready = amqp_ready_messages(settings.celery_broker_url, (*QUEUES, DEAD_LETTER_QUEUE))
    except Exception as exc:  # socket, AMQP and kombu errors all mean the same to an operator: not usable
        health.problems.append(f"broker unreachable: {type(exc).__name__}: {exc}")
        return
    health.broker = True
    health.queues = [QueueStats(name, ready[name]) for name in QUEUES]
    if workers_only:  # a worker's liveness probe: the broker and the worker, as with a Redis broker
        return
    # Results and dead letters stay on Redis with either broker: without it no result reaches a producer.
    client = _redis_client(settings)
    try:
        health.dead_letters = int(client.llen(settings.dead_letter_key)) + ready[DEAD_LETTER_QUEUE]
    except redis.RedisError as exc:
        health.problems.append(f"Redis unreachable (results, dead letters): {type(exc).__name__}: {exc}")
    finally:
        client.close()


def _receipts(settings: Settings) -> set[int]:
    """The outbox rows workers published whose receipts are not drained yet (none when Redis cannot say: the
    Redis check reports that)."""
    client = _redis_client(settings)
    try:
        return receipts.pending(client)
    except redis.RedisError:
        return set()
    finally:
        client.close()


def _check_database(settings: Settings, health: Health, now: datetime) -> None:
    try:
        with _engine(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
            health.database = True
            unpublished: ColumnElement[bool] = t.OutboxEntry.published_at.is_(None)
            confirmed = _receipts(settings)
            if confirmed:  # published by a worker, to be marked so when its receipt is drained
                unpublished = unpublished & t.OutboxEntry.id.not_in(confirmed)
            health.outbox_unpublished = conn.scalar(select(func.count()).select_from(t.OutboxEntry).where(unpublished))
            pending = (t.OutboxEntry.kind == "award") & t.OutboxEntry.done_at.is_(None)
            health.outbox_awards_pending = conn.scalar(
                select(func.count()).select_from(t.OutboxEntry).where(pending))
            oldest = conn.scalar(select(func.min(t.OutboxEntry.created_at)).where(unpublished | pending))
            if oldest is not None:
                health.outbox_oldest_pending_age_seconds = round(max(0.0, (now - oldest).total_seconds()), 3)
    except Exception as exc:  # any driver error means the same to an operator: not usable
        first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
        health.problems.append(f"database unreachable: {type(exc).__name__}: {first_line}")


def _control_app(settings: Settings) -> Celery:
    """A Celery app of its own that only broadcasts (connects on first use; never the worker's app)."""
    app = Celery("customer_updates.ops.health", set_as_current=False)
    app.conf.update(broker_url=settings.celery_broker_url, broker_connection_timeout=3, broker_connection_retry=False,
                    broker_connection_max_retries=1, broker_transport_options={"socket_timeout": 5})
    return app


def live_workers(settings: Settings, node: str | None = None) -> list[WorkerStats]:
    """The workers that answer within `health_worker_timeout_seconds` (only `node` when given)."""
    app = _control_app(settings)
    timeout = settings.health_worker_timeout_seconds
    try:
        with app.connection_for_write() as conn:
            queues: dict[str, Any] = app.control.inspect(
                destination=[node] if node else None, timeout=timeout, connection=conn).active_queues() or {}
            stats: dict[str, Any] = {}
            if queues:  # addressed to those that answered: returns as soon as each has answered again
                stats = app.control.inspect(destination=list(queues), timeout=timeout, connection=conn).stats() or {}
    finally:
        app.close()
    return [WorkerStats(name, sorted(str(q.get("name")) for q in consumed if isinstance(q, dict)),
                        (stats.get(name) or {}).get("uptime"))
            for name, consumed in sorted(queues.items())]


def _check_workers(settings: Settings, health: Health, node: str | None) -> None:
    try:
        health.workers = live_workers(settings, node)
    except Exception as exc:  # the broker answered a moment ago: say so, but the workers are unknown
        health.warnings.append(f"workers not asked: {type(exc).__name__}")
        return
    settled = settings.health_worker_min_uptime_seconds
    who = f"worker {node}" if node else "worker"
    for queue in QUEUES:
        consumers = [w for w in health.workers if queue in w.queues]
        if not consumers:
            health.warnings.append(f"queue {queue}: no {who} answering consumes it: are workers running?")
        elif all(w.uptime_seconds is None or w.uptime_seconds < settled for w in consumers):
            health.warnings.append(f"queue {queue}: every {who} consuming it started less than {settled:.0f}s "
                                   "ago: restarting in a loop?")


def check(settings: Settings, workers_only: bool = False, node: str | None = None) -> Health:
    """One snapshot. Broker or database unreachable: down. No settled worker consuming a queue, work waiting
    too long, dead letters: degraded. `workers_only`: the broker and the workers only (a liveness probe);
    `node`: only that worker counts."""
    from customer_updates.models.commands import utcnow

    health = Health(database_checked=not workers_only)
    _check_broker(settings, health, time.time(), workers_only)
    if health.broker:
        _check_workers(settings, health, node)
    if workers_only:
        return health
    _check_database(settings, health, utcnow())
    limit = settings.health_max_wait_seconds
    for queue in health.queues:
        if queue.oldest_age_seconds is not None and queue.oldest_age_seconds > limit:
            health.warnings.append(f"queue {queue.name}: oldest waited {queue.oldest_age_seconds:.0f}s "
                                   f"(limit {limit:.0f}s): add workers?")
    age = health.outbox_oldest_pending_age_seconds
    if age is not None and age > settings.health_max_outbox_age_seconds:
        health.warnings.append(f"outbox: follow-on work pending for {age:.0f}s "
                               f"(more than {settings.health_max_outbox_age_seconds:.0f}s): is beat running?")
    if health.dead_letters:
        health.warnings.append(f"{health.dead_letters} dead letters: `customer-updates dead-letters list`")
    return health
