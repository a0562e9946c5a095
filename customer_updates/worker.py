"""The Celery app and its configuration. Importing this module connects to nothing."""

from __future__ import annotations

import gc
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, setup_logging, worker_init, worker_process_init
from kombu import Queue

from customer_updates import logs, message_json, runtime
from customer_updates.settings import Settings, get_settings

UPDATES_QUEUE = "customer_updates"
SIDE_EFFECTS_QUEUE = "customer_updates.side_effects"
APPLY_TASK = "customer_updates.apply_updates"
AWARD_TASK = "customer_updates.award_points"
RELAY_TASK = "customer_updates.relay_outbox"
PURGE_TASK = "customer_updates.purge_records"


def _transport_for(url: str) -> str | None:
    scheme = url.split("://", 1)[0].lower()
    return "customer_updates.transport:Transport" if scheme in ("redis", "rediss") else None


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # A killed worker's messages come back after this many seconds (DESIGN §2).
        # fetch_batch, dead_letter_key: read by the worker's transport only (customer_updates/transport.py),
        # ignored by kombu's.
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout,
                                     "fetch_batch": settings.worker_fetch_batch,
                                     "dead_letter_key": settings.dead_letter_key},
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Results live in the database and in our own Redis keys, not in Celery's result backend.
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # Undecodable or malformed messages go to the dead-letter list instead of being dropped.
        "worker_consumer": "customer_updates.consumer:DeadLetteringConsumer",
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "task_default_queue": UPDATES_QUEUE,
        "task_queues": [Queue(UPDATES_QUEUE), Queue(SIDE_EFFECTS_QUEUE)],
        "task_routes": {
            APPLY_TASK: {"queue": UPDATES_QUEUE},
            AWARD_TASK: {"queue": SIDE_EFFECTS_QUEUE},
            RELAY_TASK: {"queue": SIDE_EFFECTS_QUEUE},
            PURGE_TASK: {"queue": SIDE_EFFECTS_QUEUE},
        },
        "beat_schedule": {
            "relay-outbox": {"task": RELAY_TASK, "schedule": settings.outbox_relay_interval_seconds},
            "purge-records": {"task": PURGE_TASK, "schedule": 3600.0},
        },
        "timezone": "UTC",
        "enable_utc": True,
    }


def make_app(settings: Settings, include_tasks: bool = False) -> Celery:
    """A Celery app for these settings. Producers make their own (they only send tasks by name)."""
    celery = Celery("customer_updates", include=["customer_updates.tasks"] if include_tasks else [])
    celery.conf.update(celery_config(settings))
    return celery


app = make_app(get_settings(), include_tasks=True)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)


@celeryd_init.connect
def _worker_messaging(conf: Any = None, **_: Any) -> None:
    # Worker processes only (Flower and producers keep kombu's own): kombu's Redis transport with fewer
    # round trips per message (customer_updates/transport.py, for URLs it understands), and a JSON
    # decoder that gives the same values as kombu's in a third of the time (customer_updates/message_json.py).
    if conf is not None and conf.broker_transport is None:
        conf.broker_transport = _transport_for(str(conf.broker_url or ""))
    message_json.install()


@worker_init.connect
def _main_process_gc(**_: Any) -> None:
    # The main process decodes every message (a hundred-update message is some 3,000 objects) and holds
    # the reserved ones: with Python's thresholds it ran full collections over the whole heap Celery and
    # the libraries made at import, 140 ms each (three while starting, one in a bench run's 15 s of
    # applying: a pause in taking and handing out messages), and collections were a seventh of its CPU
    # while applying (bench/README.md).
    tune_gc(get_settings().worker_gc_threshold)


@worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    # Connections inherited over fork would be shared with the parent: make new ones lazily.
    runtime.reset()
    tune_gc(get_settings().worker_gc_threshold)


def tune_gc(threshold: int) -> None:
    """Fewer, larger garbage collections. What was imported before the fork is frozen (never scanned
    again); later generations keep Python's ratios. Reference counting still frees almost everything at
    once: this only delays the search for cycles, so memory grows by little (peak RSS in bench/)."""
    if threshold > 0:
        gc.freeze()
        _, second, third = gc.get_threshold()
        gc.set_threshold(threshold, second, third)


# A batch's reference cycles are young when it ends: a collection of the two young generations (0.1 ms)
# finds them. A full one also walks the objects a pool process made since the fork and keeps (compiled
# statements, adapters, pooled connections: some 7,000): it took 2.6 to 5.5 ms after each batch of 100
# updates, with nothing more to free. It runs every FULL_COLLECTION_EVERY batches instead.
FULL_COLLECTION_EVERY = 100
_batches_since_full = 0


def collect_after_batch() -> None:
    """Free the cycles a batch left (the automatic collections are rare, see `tune_gc`)."""
    global _batches_since_full
    _batches_since_full += 1
    if _batches_since_full >= FULL_COLLECTION_EVERY:
        _batches_since_full = 0
        gc.collect()
    else:
        gc.collect(1)
