"""The Celery configuration that producers and workers share, and the app a producer sends with.

It imports Celery because the wire contract is Celery's protocol 2: a producer sends tasks by name through
a Celery app of its own, which needs the broker, serializer, queues and routes, and nothing of the worker
(no tasks, no signal handlers, no transport of the worker's).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from customer_updates.messaging.names import (
    APPLY_TASK,
    AWARD_TASK,
    PURGE_TASK,
    RELAY_TASK,
    SIDE_EFFECTS_QUEUE,
    UPDATES_QUEUE,
)
from customer_updates.settings import Settings


def shared_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Results live in the database and in our own Redis keys, not in Celery's result backend.
        "task_ignore_result": True,
        "task_send_sent_event": True,
        "task_default_queue": UPDATES_QUEUE,
        "task_queues": [Queue(UPDATES_QUEUE), Queue(SIDE_EFFECTS_QUEUE)],
        "task_routes": {
            APPLY_TASK: {"queue": UPDATES_QUEUE},
            AWARD_TASK: {"queue": SIDE_EFFECTS_QUEUE},
            RELAY_TASK: {"queue": SIDE_EFFECTS_QUEUE},
            PURGE_TASK: {"queue": SIDE_EFFECTS_QUEUE},
        },
        "timezone": "UTC",
        "enable_utc": True,
    }


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name (a producer's, the CLI's, the demo's)."""
    celery = Celery("customer_updates")
    celery.conf.update(shared_config(settings))
    return celery
