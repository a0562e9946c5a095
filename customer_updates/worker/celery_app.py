"""The Celery app and its configuration. Importing this module connects to nothing."""

from __future__ import annotations

import gc
from time import monotonic
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, setup_logging, worker_init, worker_process_init

from customer_updates.messaging.broker import is_amqp, shared_config, transport_options
from customer_updates.messaging.names import PURGE_TASK, RELAY_TASK
from customer_updates.ops import logs
from customer_updates.services import resources
from customer_updates.settings import Settings, get_settings
from customer_updates.worker import decoder
from customer_updates.worker.task_events import FlushTaskEvents


def _transport_for(url: str) -> str | None:
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        return "customer_updates.worker.transport:Transport"
    return "customer_updates.worker.amqp_transport:Transport" if is_amqp(url) else None


def celery_config(settings: Settings) -> dict[str, Any]:
    """The producers' configuration (messaging/broker.py) and what only a worker needs."""
    return {
        **shared_config(settings),
        # A killed worker's messages come back after this many seconds (DESIGN §2).
        # fetch_batch, dead_letter_key: read by the worker's transport only (worker/transport.py),
        # ignored by kombu's.
        "broker_transport_options": {**transport_options(settings),
                                     "visibility_timeout": settings.visibility_timeout,
                                     "fetch_batch": settings.worker_fetch_batch,
                                     "dead_letter_key": settings.dead_letter_key},
        # RabbitMQ returns a worker's unacknowledged messages only when its connection closes, and notices a
        # host the network cut off only through missed heartbeats (Celery asks for 120 s, RabbitMQ for 60).
        "broker_heartbeat": settings.amqp_heartbeat_seconds,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # Undecodable or malformed messages go to the dead-letter list instead of being dropped.
        "worker_consumer": "customer_updates.worker.consumer:DeadLetteringConsumer",
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "worker_send_task_events": True,
        "beat_schedule": {
            "relay-outbox": {"task": RELAY_TASK, "schedule": settings.outbox_relay_interval_seconds},
            "purge-records": {"task": PURGE_TASK, "schedule": 3600.0},
        },
    }


def make_app(settings: Settings, include_tasks: bool = False) -> Celery:
    """The worker's Celery app for these settings (producers use messaging.broker.producer_app)."""
    celery = Celery("customer_updates", include=["customer_updates.worker.tasks"] if include_tasks else [])
    celery.conf.update(celery_config(settings))
    celery.steps["consumer"].add(FlushTaskEvents)
    if is_amqp(settings.celery_broker_url):
        from customer_updates.worker.amqp_dead_letters import DeadLetterDrain

        celery.steps["consumer"].add(DeadLetterDrain)
    return celery


app = make_app(get_settings(), include_tasks=True)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)


@celeryd_init.connect
def _worker_messaging(conf: Any = None, **_: Any) -> None:
    # Worker processes only (Flower and producers keep kombu's own): kombu's Redis transport with fewer
    # round trips per message (worker/transport.py), py-amqp's with fewer system calls per message
    # (worker/amqp_transport.py), and a JSON decoder that gives the same values as kombu's without a
    # Python hook per object (worker/decoder.py).
    if conf is not None and conf.broker_transport is None:
        conf.broker_transport = _transport_for(str(conf.broker_url or ""))
    decoder.install()


@worker_init.connect
def _main_process_gc(**_: Any) -> None:
    # The main process decodes every message (thousands of objects for a large one) and holds the reserved
    # ones: with Python's thresholds it runs full collections over the whole heap Celery and the libraries
    # made at import, each a pause in taking and handing out messages, and collections cost it CPU that
    # finds nothing to free.
    tune_gc(get_settings().worker_gc_threshold)


@worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    # Connections inherited over fork would be shared with the parent: make new ones lazily.
    resources.reset()
    tune_gc(get_settings().worker_gc_threshold)


def tune_gc(threshold: int) -> None:
    """Fewer, larger garbage collections. What was imported before the fork is frozen (never scanned
    again); later generations keep Python's ratios. Reference counting still frees almost everything at
    once: this only delays the search for cycles, so memory grows by little."""
    if threshold > 0:
        gc.freeze()
        _, second, third = gc.get_threshold()
        gc.set_threshold(threshold, second, third)


# A batch's reference cycles are young when it ends: a cheap collection of the two young generations
# finds them. A full one also walks the objects a pool process made since the fork and keeps (compiled
# statements, adapters, pooled connections), with nothing more to free, and takes milliseconds: it runs
# after FULL_COLLECTION_EVERY batches and FULL_COLLECTION_SECONDS at the least, so that a quiet system's
# batches of a command or two (hundreds a second) do not pay it every half second.
FULL_COLLECTION_EVERY = 100
FULL_COLLECTION_SECONDS = 10.0
_batches_since_full = 0
_last_full = monotonic()


def collect_after_batch() -> None:
    """Free the cycles a batch left (the automatic collections are rare, see `tune_gc`)."""
    global _batches_since_full, _last_full
    _batches_since_full += 1
    if _batches_since_full >= FULL_COLLECTION_EVERY and monotonic() - _last_full >= FULL_COLLECTION_SECONDS:
        _batches_since_full, _last_full = 0, monotonic()
        gc.collect()
    else:
        gc.collect(1)
