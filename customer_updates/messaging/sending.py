"""Messages on the queue (the wire contract of DESIGN §3): protocol 2, JSON, kwargs {"commands": [...]}.

`kwargsrepr` is what Flower and worker logs show of a message: it is masked (customer_updates.messaging.masking), so
no mobile, email or name leaves the payload itself.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

from celery import Celery
from celery.utils.nodenames import anon_nodename

# The masking functions are part of this module's interface: re-exported.
from customer_updates.messaging.masking import PERSONAL as PERSONAL
from customer_updates.messaging.masking import mask_customer as mask_customer
from customer_updates.messaging.masking import mask_value as mask_value
from customer_updates.messaging.masking import masked_repr
from customer_updates.messaging.names import APPLY_TASK, AWARD_TASK, SIDE_EFFECTS_QUEUE, UPDATES_QUEUE


def sent_header() -> dict[str, float]:
    """When the message was sent: Celery records no such time; `health` reads it for the queue's age."""
    return {"sent_at": round(time.time(), 3)}


def send_apply(commands: list[Any], *, celery: Celery, attempt: int = 0, countdown: float | None = None,
               producer: Any = None) -> None:
    kwargs: dict[str, Any] = {"commands": commands}
    if attempt:
        kwargs["attempt"] = attempt
    celery.send_task(APPLY_TASK, kwargs=kwargs, queue=UPDATES_QUEUE, countdown=countdown,
                     kwargsrepr=masked_repr(commands), argsrepr="()", producer=producer,
                     headers=sent_header())


# Awards per follow-on task: one transaction applies them all (see services/awards.py).
AWARDS_PER_TASK = 100


def send_awards(outbox_ids: list[int], *, celery: Celery) -> None:
    # kombu's publish batch pipelines the messages: one round trip for a chunk's awards, not one each.
    with celery.producer_or_acquire() as producer, producer.batch():
        for start in range(0, len(outbox_ids), AWARDS_PER_TASK):
            celery.send_task(AWARD_TASK, kwargs={"outbox_ids": outbox_ids[start:start + AWARDS_PER_TASK]},
                             queue=SIDE_EFFECTS_QUEUE, producer=producer, headers=sent_header())


def publish_many(messages: list[list[Any]], *, celery: Celery) -> None:
    """Publish several apply messages over one broker connection.

    On a Redis broker the messages are pushed with one pipelined LPUSH (plus the task-sent events),
    in the exact envelope kombu's Redis transport writes: `send_task` costs a round trip per message and
    per event, which bounds a producer by its round trips. Other brokers take the ordinary path.
    """
    # A pooled connection: a new one per call would cost a Redis connect for every enqueue_update.
    with celery.pool.acquire(block=True) as connection:
        if connection.transport.driver_type == "redis" and _redis_publish(celery, connection, messages):
            return
    with celery.producer_or_acquire() as producer:
        for commands in messages:
            send_apply(commands, producer=producer, celery=celery)


# Messages per LPUSH: large enough to amortise the round trip, small enough to keep Redis responsive.
_PUSH_CHUNK = 500


def _redis_publish(celery: Celery, connection: Any, messages: list[list[Any]]) -> bool:
    """Push protocol-2 messages straight onto the queue's Redis list; False when not possible here."""
    channel = connection.default_channel
    topics = getattr(channel, "_get_publish_topics", None)
    if topics is None or not hasattr(channel, "conn_or_acquire"):
        return False
    send_event = bool(celery.conf.task_send_sent_event)
    origin = anon_nodename()
    encoded: list[bytes] = []
    events: list[bytes] = []
    for commands in messages:
        task_id = str(uuid.uuid4())
        message = celery.amqp.as_task_v2(task_id, APPLY_TASK, args=(), kwargs={"commands": commands},
                                         argsrepr="()", kwargsrepr=masked_repr(commands), origin=origin,
                                         create_sent_event=send_event)
        encoded.append(_envelope(message.body, {**message.headers, **sent_header()}, {
            **message.properties, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": UPDATES_QUEUE}}))
        if message.sent_event is not None:
            events.append(_envelope(
                {"hostname": origin, "utcoffset": 0, "pid": os.getpid(), "clock": celery.clock.forward(),
                 **message.sent_event, "queue": UPDATES_QUEUE, "exchange": "", "routing_key": UPDATES_QUEUE,
                 "timestamp": time.time(), "type": "task-sent"},
                {"hostname": origin},
                {"delivery_mode": 1, "delivery_info": {"exchange": "celeryev", "routing_key": "task.sent"}}))
    event_topics = topics("celeryev", "task.sent") if events else []
    with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
        # LPUSH a b c leaves c at the head; workers BRPOP from the tail, so a is consumed first.
        for start in range(0, len(encoded), _PUSH_CHUNK):
            pipe.lpush(UPDATES_QUEUE, *encoded[start:start + _PUSH_CHUNK])
        for event in events:
            for topic in event_topics:
                pipe.publish(topic, event)
        pipe.execute()
    return True


def _envelope(body: Any, headers: dict[str, Any], properties: dict[str, Any]) -> bytes:
    """kombu's virtual-transport message: JSON body, base64-encoded, with a fresh delivery tag."""
    payload = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps({
        "body": payload, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": headers,
        "properties": {**properties, "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    }).encode()
