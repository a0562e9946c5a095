"""Messages on the queue (the wire contract of DESIGN §3): protocol 2, JSON, kwargs {"commands": [...]}.

`kwargsrepr` is what Flower and worker logs show of a message: it is masked (customer_updates.messaging.masking), so
no mobile, email or name leaves the payload itself.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from celery import Celery
from celery.utils.nodenames import anon_nodename
from kombu.exceptions import OperationalError

# The masking functions are part of this module's interface: re-exported.
from customer_updates.messaging.masking import PERSONAL as PERSONAL
from customer_updates.messaging.masking import mask_customer as mask_customer
from customer_updates.messaging.masking import mask_value as mask_value
from customer_updates.messaging.masking import masked_repr
from customer_updates.messaging.names import APPLY_TASK, AWARD_TASK, SIDE_EFFECTS_QUEUE, UPDATES_QUEUE
from customer_updates.messaging.tcp_cork import corked

log = logging.getLogger("customer_updates.sending")


def sent_header() -> dict[str, float]:
    """When the message was sent: Celery records no such time; `health` reads it for the queue's age."""
    return {"sent_at": round(time.time(), 3)}


def send_apply(commands: list[Any], *, celery: Celery, attempt: int = 0, countdown: float | None = None,
               producer: Any = None, retry: bool | None = None) -> None:
    """`retry`: whether kombu reconnects and sends again on a connection error (None: Celery's setting)."""
    kwargs: dict[str, Any] = {"commands": commands}
    if attempt:
        kwargs["attempt"] = attempt
    celery.send_task(APPLY_TASK, kwargs=kwargs, queue=UPDATES_QUEUE, countdown=countdown,
                     kwargsrepr=masked_repr(commands), argsrepr="()", producer=producer,
                     headers=sent_header(), retry=retry)


# Awards per follow-on task: one transaction applies them all (see services/awards.py).
AWARDS_PER_TASK = 100


def send_awards(outbox_ids: list[int], *, celery: Celery, parent_id: str | None = None) -> None:
    """`parent_id`: the update task whose transaction decided the awards (Flower shows them as its children)."""
    # kombu's publish batch pipelines the messages: one round trip for a chunk's awards, not one each.
    with celery.producer_or_acquire() as producer, producer.batch():
        for start in range(0, len(outbox_ids), AWARDS_PER_TASK):
            celery.send_task(AWARD_TASK, kwargs={"outbox_ids": outbox_ids[start:start + AWARDS_PER_TASK]},
                             queue=SIDE_EFFECTS_QUEUE, producer=producer, headers=sent_header(),
                             parent_id=parent_id, root_id=parent_id)


def publish_many(messages: list[list[Any]], *, celery: Celery) -> None:
    """Publish several apply messages over one broker connection.

    On a Redis broker the messages are pushed with one pipelined LPUSH (plus the task-sent events),
    in the exact envelope kombu's Redis transport writes: `send_task` costs a round trip per message and
    per event, which bounds a producer by its round trips. On RabbitMQ they go to py-amqp as Celery would
    publish them, on a channel that waits once for the publisher confirms of all of them
    (`_ConfirmingChannel`); when that channel's connection is lost they are sent again through Celery's
    `send_task`, with kombu's reconnection.
    """
    # A pooled connection: a new one per call would cost a Redis connect for every enqueue_update.
    with celery.pool.acquire(block=True) as connection:
        if connection.transport.driver_type == "redis" and _redis_publish(celery, connection, messages):
            return
        if connection.transport.driver_type == "amqp":
            try:
                _amqp_publish(celery, connection, messages)
                return
            except (OperationalError, *connection.recoverable_connection_errors):
                # Sent again below, a message at a time with kombu's reconnection: a command that reaches
                # the queue twice is applied once (its request id).
                log.warning("pipelined publish lost its connection; sending one message at a time")
    with celery.producer_or_acquire() as producer:
        for commands in messages:
            send_apply(commands, producer=producer, celery=celery)


AMQP_CONFIRM_TIMEOUT = 60.0  # seconds to wait for RabbitMQ to confirm what a call published
SENT_EVENTS_PER_MESSAGE = 200  # task-sent events per grouped message (each holds a masked kwargs repr)
JSON = "application/json"


class _ConfirmingChannel:
    """A RabbitMQ channel in confirm mode whose publishes do not wait, kept with its connection for later calls.

    With `confirm_publish` py-amqp waits for the broker's confirm after every publish (the message, then its
    task-sent event: two round trips a message). On this channel `publish` sends every message, then waits
    once until RabbitMQ has confirmed every tag it published: a confirm covers its own tag, or with
    `multiple` every tag up to its own, and confirms may come in any order. Opening a channel and putting it
    in confirm mode costs two round trips, so it is kept while its connection lives.

    The messages are what Celery's `send_task` publishes (`_apply_message`, Celery's `as_task_v2`), handed to
    py-amqp directly, and a call's task-sent events go as grouped `task.multi` messages, as the worker sends
    its task events: through `send_task` each message also took kombu's publish path and a second publish for
    its event, most of a producer's time for one-update messages."""

    def __init__(self, celery: Celery, connection: Any) -> None:
        from celery.events.event import get_exchange
        from kombu.common import maybe_declare

        self.celery = celery
        self.channel = connection.channel()
        self.published = 0  # delivery tags run from 1 on a channel in confirm mode
        self.confirmed_up_to = 0
        self.confirmed: set[int] = set()
        self.nacked = False
        plain_publish = self.channel._basic_publish  # py-amqp's publish without the wait (worker/hooks.py)

        def counting_publish(*args: Any, **kwargs: Any) -> Any:
            self.published += 1
            return plain_publish(*args, **kwargs)

        self.channel.basic_publish = counting_publish
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.confirm_select()
        # Declared as Celery's send_task and event dispatcher would (their arguments: quorum queue, topic
        # exchange), once for the channel's life.
        maybe_declare(celery.amqp.queues[UPDATES_QUEUE], self.channel)
        self.sends_events = bool(celery.conf.task_send_sent_event)
        self.event_exchange = get_exchange(connection, name=celery.conf.event_exchange)
        if self.sends_events:
            maybe_declare(self.event_exchange, self.channel)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.confirmed_up_to = max(self.confirmed_up_to, tag)
        else:
            self.confirmed.add(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked = True

    def _unconfirmed(self) -> int:
        while self.confirmed_up_to + 1 in self.confirmed:
            self.confirmed_up_to += 1
        self.confirmed = {tag for tag in self.confirmed if tag > self.confirmed_up_to}
        return self.published - self.confirmed_up_to - len(self.confirmed)

    def publish(self, messages: list[list[Any]]) -> None:
        """Send the messages and wait for their confirms. A nack or a timeout raises (the caller then knows
        only that some of them may be on the queue, as with any failed send)."""
        from amqp.exceptions import MessageNacked

        with corked(self.channel.connection):  # one segment for many messages, not one each
            self._send(messages)
        deadline = time.monotonic() + AMQP_CONFIRM_TIMEOUT
        while not self.nacked and (missing := self._unconfirmed()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"RabbitMQ did not confirm {missing} publishes")
            self.channel.connection.drain_events(timeout=left)
        if self.nacked:
            raise MessageNacked("RabbitMQ refused a message (nack)")

    def _send(self, messages: list[list[Any]]) -> None:
        """The messages, then their task-sent events grouped, without waiting for confirms."""
        from amqp import Message

        events: list[dict[str, Any]] = []
        for commands in messages:
            message = _apply_message(self.celery, commands, self.sends_events, reply_to=self.celery.thread_oid)
            self.channel.basic_publish(
                Message(orjson.dumps(message.body, option=orjson.OPT_NON_STR_KEYS), content_type=JSON,
                        content_encoding="utf-8", application_headers=message.headers, delivery_mode=2, priority=0,
                        **message.properties),
                exchange="", routing_key=UPDATES_QUEUE)
            if message.sent_event is not None:
                events.append(message.sent_event)
        for start in range(0, len(events), SENT_EVENTS_PER_MESSAGE):
            self.channel.basic_publish(
                Message(orjson.dumps(events[start:start + SENT_EVENTS_PER_MESSAGE]), content_type=JSON,
                        content_encoding="utf-8", application_headers={"hostname": _origin()}, delivery_mode=1,
                        priority=0),
                exchange=self.event_exchange.name, routing_key="task.multi")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.close()


# By pooled kombu connection (as many as the pool holds; each used by one caller at a time): the channel is
# made again when kombu has replaced the connection underneath (after an error) or the channel was closed.
_confirming: dict[Any, _ConfirmingChannel] = {}


def _amqp_publish(celery: Celery, connection: Any, messages: list[list[Any]]) -> None:
    """Publish on RabbitMQ with publisher confirms, waiting once for all of them (`_ConfirmingChannel`)."""
    # Connects, or reconnects (the next URL of a failover list) after an error closed it, as kombu's send would;
    # raises kombu's OperationalError when it cannot.
    connection.ensure_connection(max_retries=3)
    channel = _confirming.get(connection)
    if channel is None or not channel.channel.is_open or channel.channel.connection is not connection.connection:
        if channel is not None:
            channel.close()
        channel = _confirming[connection] = _ConfirmingChannel(celery, connection)
    try:
        channel.publish(messages)
    except Exception:
        del _confirming[connection]  # its count of tags may be off now: the next call opens another
        channel.close()
        raise


# Messages per LPUSH: large enough to amortise the round trip, small enough to keep Redis responsive.
_PUSH_CHUNK = 500


def _redis_publish(celery: Celery, connection: Any, messages: list[list[Any]]) -> bool:
    """Push protocol-2 messages straight onto the queue's Redis list; False when not possible here."""
    channel = connection.default_channel
    topics = getattr(channel, "_get_publish_topics", None)
    if topics is None or not hasattr(channel, "conn_or_acquire"):
        return False
    route = RedisRoute(topics("celeryev", "task.sent") if celery.conf.task_send_sent_event else [])
    encoded = [encode_apply(celery, commands, route) for commands in messages]
    with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
        route.push(pipe, encoded)
        pipe.execute()
    return True


@dataclass(frozen=True)
class RedisRoute:
    """Where an apply message goes on a Redis broker: the queue's list, and the topics of its task-sent event
    (none when events are off). Computed once by a producer, then used by its own Redis client."""

    event_topics: list[str]

    def push(self, pipe: Any, encoded: list[tuple[bytes, bytes | None]]) -> None:
        """Add the messages (and their events) to a pipeline: LPUSH a b c leaves c at the head; workers BRPOP
        from the tail, so a is consumed first."""
        bodies = [message for message, _ in encoded]
        for start in range(0, len(bodies), _PUSH_CHUNK):
            pipe.lpush(UPDATES_QUEUE, *bodies[start:start + _PUSH_CHUNK])
        for _, event in encoded:
            if event is not None:
                for topic in self.event_topics:
                    pipe.publish(topic, event)


def redis_route(celery: Celery) -> RedisRoute | None:
    """The route of `celery`'s broker when it is Redis (connects once to ask kombu), else None."""
    with celery.pool.acquire(block=True) as connection:
        if connection.transport.driver_type != "redis":
            return None
        topics = getattr(connection.default_channel, "_get_publish_topics", None)
        if topics is None:
            return None
        return RedisRoute(topics("celeryev", "task.sent") if celery.conf.task_send_sent_event else [])


def encode_apply(celery: Celery, commands: list[Any], route: RedisRoute) -> tuple[bytes, bytes | None]:
    """One apply message in the exact envelope kombu's Redis transport writes, and its task-sent event."""
    message = _apply_message(celery, commands, bool(route.event_topics))
    encoded = _envelope(message.body, message.headers, {
        **message.properties, "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": UPDATES_QUEUE}})
    event = None
    if message.sent_event is not None:
        event = _envelope(message.sent_event, {"hostname": message.origin},
                          {"delivery_mode": 1, "delivery_info": {"exchange": "celeryev", "routing_key": "task.sent"}})
    return encoded, event


@dataclass(frozen=True)
class _ApplyMessage:
    body: Any  # protocol 2: (args, kwargs, embed)
    headers: dict[str, Any]
    properties: dict[str, Any]  # correlation_id and reply_to
    sent_event: dict[str, Any] | None  # the task-sent event Celery's send_task would publish
    origin: str


def _apply_message(celery: Celery, commands: list[Any], with_event: bool, reply_to: str | None = None) -> _ApplyMessage:
    """What Celery's `send_task` publishes for an apply message, made by Celery's own `as_task_v2`."""
    task_id = str(uuid.uuid4())
    origin = _origin()
    message = celery.amqp.as_task_v2(task_id, APPLY_TASK, args=(), kwargs={"commands": commands},
                                     argsrepr="()", kwargsrepr=masked_repr(commands), origin=origin,
                                     create_sent_event=with_event, reply_to=reply_to)
    event = None
    if message.sent_event is not None:
        event = {"hostname": origin, "utcoffset": 0, "pid": os.getpid(), "clock": celery.clock.forward(),
                 **message.sent_event, "queue": UPDATES_QUEUE, "exchange": "", "routing_key": UPDATES_QUEUE,
                 "timestamp": time.time(), "type": "task-sent"}
    return _ApplyMessage(message.body, {**message.headers, **sent_header()}, message.properties, event, origin)


def _origin() -> str:
    return _origin_of(os.getpid())


@lru_cache(maxsize=4)
def _origin_of(pid: int) -> str:
    # The node name holds the process id: asked again in a forked child.
    return anon_nodename()


def _envelope(body: Any, headers: dict[str, Any], properties: dict[str, Any]) -> bytes:
    """kombu's virtual-transport message: JSON body, base64-encoded, with a fresh delivery tag."""
    # orjson: the json module's encoder was most of a coalesced flush's time. What it writes is what
    # json.dumps writes, compacted (the producer refused non-finite numbers and lone surrogates).
    payload = base64.b64encode(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)).decode()
    return orjson.dumps({
        "body": payload, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": headers,
        "properties": {**properties, "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    }, option=orjson.OPT_NON_STR_KEYS)
