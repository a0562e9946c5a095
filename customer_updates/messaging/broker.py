"""The Celery configuration that producers and workers share, and the app a producer sends with.

It imports Celery because the wire contract is Celery's protocol 2: a producer sends tasks by name through
a Celery app of its own, which needs the broker, serializer, queues and routes, and nothing of the worker
(no tasks, no signal handlers, no transport of the worker's).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from customer_updates.messaging.names import (
    APPLY_TASK,
    AWARD_TASK,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    PURGE_TASK,
    RELAY_TASK,
    SIDE_EFFECTS_QUEUE,
    UPDATES_QUEUE,
)
from customer_updates.settings import Settings

# One direct exchange; each queue is bound with its own name as routing key, so a message sent to the exchange
# with one queue's key reaches that queue alone. (Queues declared without an exchange are bound by Celery to
# the default exchange with the default routing key, `customer_updates` for both: each message went to both.)
EXCHANGE = Exchange(UPDATES_QUEUE, type="direct")
QUEUE_DECLARATIONS = (Queue(UPDATES_QUEUE, EXCHANGE, routing_key=UPDATES_QUEUE),
                      Queue(SIDE_EFFECTS_QUEUE, EXCHANGE, routing_key=SIDE_EFFECTS_QUEUE))

# RabbitMQ: a fanout exchange, so that whatever a quorum queue dead-letters reaches the one dead-letter queue.
DEAD_LETTER_EXCHANGE_DECLARATION = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)


def is_amqp(url: str) -> bool:
    """Whether a broker URL names RabbitMQ (AMQP 0-9-1, kombu's py-amqp transport)."""
    return url.split("://", 1)[0].lower() in ("amqp", "amqps", "pyamqp")


def quorum_arguments(settings: Settings) -> dict[str, Any]:
    """Replicated, durable queues; a message dead-lettered (rejected, or returned by dying consumers more
    than amqp_delivery_limit times) goes to the dead-letter exchange, at least once."""
    return {"x-queue-type": "quorum", "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
            "x-delivery-limit": settings.amqp_delivery_limit}


class DeadLetteredQueue(Queue):
    """A quorum queue that declares its dead-letter exchange and queue first: RabbitMQ drops what a queue
    dead-letters while the exchange is missing, and a producer or any consumer may declare the queue first."""

    def declare(self, nowait: bool = False, channel: Any = None) -> str:
        dead_letter_queue().declare(nowait=nowait, channel=channel or self.channel)
        return str(super().declare(nowait=nowait, channel=channel))


def queue_declarations(settings: Settings) -> list[Queue]:
    """Our queues as declared on this broker: quorum queues on RabbitMQ, lists on Redis."""
    if not is_amqp(settings.celery_broker_url):
        return list(QUEUE_DECLARATIONS)
    # With x-queue-type in the queue arguments Celery sees quorum queues (worker_detect_quorum_queues) and
    # uses a per-consumer prefetch: quorum queues refuse global QoS.
    return [DeadLetteredQueue(queue.name, EXCHANGE, routing_key=queue.routing_key, durable=True,
                              queue_arguments=quorum_arguments(settings)) for queue in QUEUE_DECLARATIONS]


def dead_letter_queue() -> Queue:
    """RabbitMQ only: the queue the dead-letter exchange fills (a quorum queue, not itself dead-lettered)."""
    return Queue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE_DECLARATION, routing_key=DEAD_LETTER_QUEUE,
                 durable=True, queue_arguments={"x-queue-type": "quorum"})


def transport_options(settings: Settings) -> dict[str, Any]:
    """Broker transport options of every sender: on RabbitMQ each publish waits for the broker's confirm,
    so a message counted as sent is on the queue (kombu's py-amqp transport, `confirm_publish`)."""
    return {"confirm_publish": True} if is_amqp(settings.celery_broker_url) else {}


def shared_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.celery_broker_url,
        "broker_transport_options": transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Results live in the database and in our own Redis keys, not in Celery's result backend.
        "task_ignore_result": True,
        "task_send_sent_event": True,
        "task_default_queue": UPDATES_QUEUE,
        "task_default_exchange": EXCHANGE.name,
        "task_default_exchange_type": EXCHANGE.type,
        "task_default_routing_key": UPDATES_QUEUE,
        "task_queues": queue_declarations(settings),
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


def drop_stale_bindings(client: Any) -> int:
    """Remove the bindings of our queues under a routing key that is not the queue's own name.

    kombu's Redis transport keeps bindings (`_kombu.binding.<exchange>`) for good and never removes one, so
    the binding of the side-effects queue under `customer_updates`, made by releases before each queue had
    its own key, would keep copying every update into it. Returns how many were removed.
    """
    from kombu.transport.redis import Channel

    sep = Channel.sep
    removed = 0
    for key in (f"_kombu.binding.{EXCHANGE.name}", f"_kombu.binding_permanent.{EXCHANGE.name}"):
        stale = []
        for member in client.smembers(key):
            text = member.decode() if isinstance(member, bytes) else str(member)
            routing_key, _, queue = text.split(sep)
            if queue in (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE) and routing_key != queue:
                stale.append(member)
        if stale:
            removed += int(client.srem(key, *stale))
    return removed
