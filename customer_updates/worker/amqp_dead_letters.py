"""RabbitMQ only: what the quorum queues dead-letter reaches the same dead-letter list as everything else.

A quorum queue dead-letters a message that a consumer rejected without requeue, or that came back more than
`amqp_delivery_limit` times (each consumer that died holding it returns it): the dead-letter exchange routes
it to one queue, which every worker also consumes. Each message found there is pushed, raw, to the Redis
dead-letter list with RabbitMQ's reason, and only then acknowledged, so that `customer-updates dead-letters
list|replay` see it like any other. A message of the wire contract is stored as its kwargs (`{"commands":
[...]}`), as a message that exhausted its retries is, so that replay sends it again.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from kombu import Consumer

from customer_updates.messaging.broker import dead_letter_queue
from customer_updates.messaging.dead_letters import push_dead_letter
from customer_updates.services import resources, worker_messages
from customer_updates.worker.consumer import is_task_body, raw_message

log = logging.getLogger("customer_updates.worker.amqp_dead_letters")


def death_of(headers: Any) -> tuple[str, str, int]:
    """RabbitMQ's reason, the queue the message left and its delivery count, from the `x-death` header."""
    deaths = headers.get("x-death") if isinstance(headers, dict) else None
    first = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    reason = headers.get("x-first-death-reason") if isinstance(headers, dict) else None
    delivered = headers.get("x-delivery-count", 0) if isinstance(headers, dict) else 0
    return (str(reason or first.get("reason") or "unknown"), str(first.get("queue") or "unknown"),
            int(delivered) if isinstance(delivered, int) else 0)


def stored_form(message: Any) -> Any:
    """The kwargs of a task message (replayable), else the raw message as the consumer keeps it."""
    try:
        payload = message.decode()
    except Exception:
        return raw_message(message)
    if is_task_body(payload) and isinstance(payload, list | tuple) \
            and worker_messages.as_commands(payload[1]) is not None:
        return {"commands": worker_messages.as_commands(payload[1])}
    return raw_message(message)


def on_dead_lettered(body: Any, message: Any) -> None:
    reason, queue, delivered = death_of(message.headers)
    try:
        rt = resources.current()
        push_dead_letter(rt.redis, rt.settings.dead_letter_key, stored_form(message),
                         f"dead-lettered by RabbitMQ: {reason} on {queue}", max(delivered, 1))
    except Exception:
        # Redis is away: the message stays on the dead-letter queue and comes back to a worker.
        log.warning("RabbitMQ dead letter not stored; left on its queue", exc_info=True)
        message.requeue()
        return
    log.error("dead letter", extra={"error": f"RabbitMQ: {reason}", "attempts": delivered})
    message.ack()


class DeadLetterDrain(bootsteps.ConsumerStep):
    """Consumes the dead-letter queue next to the task queues (added to RabbitMQ workers only)."""

    def get_consumers(self, channel: Any) -> list[Consumer]:
        # Declared here as well: the queue must exist before a quorum queue dead-letters its first message.
        return [Consumer(channel, queues=[dead_letter_queue()], callbacks=[on_dead_lettered],
                         accept=None, prefetch_count=100)]
