"""Every private hook of Celery, kombu, celery-batches, billiard and py-amqp that this package relies on, in one place.

Each entry names the framework object, why the code relies on it and where. tests/unit/test_framework_hooks.py
checks every entry against the installed versions, so an upgrade that removes or changes one fails there,
naming the hook and the pin; pyproject.toml pins the three to the minor versions those tests passed on.
`replicates` holds a fingerprint of upstream source that the worker copies or replaces: when it changes, the
copy must be compared with the new upstream code before the fingerprint is updated.

Importing this module imports no framework: it is data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Hook:
    dist: str  # the distribution that defines it (the pin in pyproject.toml)
    owner: str  # "module:Class" or "module"
    name: str  # attribute, method or function on the owner
    reason: str
    used_in: tuple[str, ...]  # files of this repository that rely on it
    kind: Literal["attribute", "instance"] = "attribute"  # instance: set by the owner's methods, not on the class
    replicates: str | None = None  # fingerprint of the upstream source the worker copies or replaces


_TRANSPORT = ("customer_updates/worker/transport.py",)
_BATCHING = ("customer_updates/worker/batching.py",)
_CONSUMER = ("customer_updates/worker/consumer.py",)
_LEASES = ("customer_updates/worker/leases.py",)
_AMQP_TRANSPORT = ("customer_updates/worker/amqp_transport.py",)
_REDIS_CHANNEL = "kombu.transport.redis:Channel"
_REDIS_QOS = "kombu.transport.redis:QoS"
_CELERY_CONSUMER = "celery.worker.consumer.consumer:Consumer"

HOOKS: tuple[Hook, ...] = (
    # kombu's Redis transport: several messages per BRPOP round trip, checked entries, batched acks.
    Hook("kombu", _REDIS_CHANNEL, "_brpop_read",
         "Overridden: kombu's handling of a BRPOP reply, copied, plus the delivery of the further messages the "
         "Lua script took in the same round trip and the dead-lettering of unusable entries.",
         _TRANSPORT, replicates="f073dbcb18d71759"),
    Hook("kombu", _REDIS_CHANNEL, "_in_poll",
         "Reset after a BRPOP reply as kombu does: the poller sends the next BRPOP only while it is falsy.",
         _TRANSPORT),
    Hook("kombu", _REDIS_CHANNEL, "_flush_brpop_reauth",
         "Called after a BRPOP reply, as kombu's own `_brpop_read` does, so that a pending re-auth token is sent.",
         _TRANSPORT),
    Hook("kombu", _REDIS_CHANNEL, "_queue_cycle", "Rotated so that the queue just read goes last, as in kombu.",
         _TRANSPORT, kind="instance"),
    Hook("kombu", _REDIS_CHANNEL, "_q_for_pri",
         "The Redis list of each priority step of a queue: the Lua script pops from all of them.", _TRANSPORT),
    Hook("kombu", _REDIS_CHANNEL, "_create_client",
         "conn_or_acquire keeps one short-lived client per connection pool instead of one per call.", _TRANSPORT),
    Hook("kombu", _REDIS_CHANNEL, "_do_restore_message",
         "The restore of a checked unacked record puts it back on its queue exactly as kombu would.", _TRANSPORT),
    Hook("kombu", _REDIS_CHANNEL, "conn_or_acquire",
         "Overridden (a reused client) in the transport; the producers' direct LPUSH pipeline acquires its "
         "client through it.", (*_TRANSPORT, "customer_updates/messaging/sending.py"),
         replicates="01ab44dd770603a6"),
    Hook("kombu", _REDIS_CHANNEL, "from_transport_options",
         "Extended with fetch_batch and dead_letter_key, so that kombu copies them from broker_transport_options.",
         _TRANSPORT),
    Hook("kombu", _REDIS_CHANNEL, "_get_publish_topics",
         "The pub/sub channels of the task-sent events that the producers' direct LPUSH pipeline publishes.",
         ("customer_updates/messaging/sending.py",)),
    Hook("kombu", _REDIS_CHANNEL, "sep",
         "Separator of a queue's priority lists: the transport strips it from BRPOP's key, health counts the lists.",
         (*_TRANSPORT, "customer_updates/ops/health.py")),
    Hook("kombu", _REDIS_CHANNEL, "priority_steps",
         "The priority lists of a queue: the script takes from each, health counts each.",
         (*_TRANSPORT, "customer_updates/ops/health.py")),
    Hook("kombu", _REDIS_QOS, "append",
         "Overridden: a message the script already recorded as unacked is only kept in memory (no second write).",
         _TRANSPORT, replicates="4b4b426ec8acbe0d"),
    Hook("kombu", _REDIS_QOS, "restore_by_tag",
         "Overridden: kombu's, with the record checked and dead-lettered when unusable instead of requeued.",
         _TRANSPORT, replicates="6224c9d1a3093fe9"),
    Hook("kombu", _REDIS_QOS, "_remove_from_indices",
         "Forgets unacked records inside our own pipelines (dead letters, restores); `forget_unacked` does the "
         "same for a batch's acknowledgements in two commands, so what it removes must not change.", _TRANSPORT,
         replicates="5940a5c23a877463"),
    Hook("kombu", _REDIS_QOS, "pipe_or_acquire", "The pipeline of a batch's acknowledgements.", _TRANSPORT),
    Hook("kombu", "kombu.transport.virtual:QoS", "_delivered",
         "A dead-lettered message is dropped from the in-memory unacked map, as an ack would; the lease renewal "
         "re-scores the unacked records of the tags in it.", (*_TRANSPORT, _LEASES[0])),
    Hook("kombu", "kombu.transport.virtual:QoS", "_dirty",
         "Tags acknowledged but not yet dropped from `_delivered`: the lease renewal leaves them out.", _LEASES),
    Hook("kombu", "kombu.transport.virtual:QoS", "can_consume_max_estimate",
         "Room left in the prefetch window: the script never takes more than that.", _TRANSPORT),
    Hook("kombu", "kombu.transport.virtual:QoS", "ack",
         "Called unbound after a pipelined acknowledgement: the in-memory bookkeeping alone.", _TRANSPORT),
    Hook("kombu", "kombu.transport.virtual:Transport", "_deliver",
         "Hands each decoded message of a BRPOP reply to the consumer's callback of its queue.", _TRANSPORT),
    Hook("kombu", "kombu.message:Message", "_state",
         "Set to ACK after a pipelined acknowledgement, so that `message.acknowledged` is true.", _TRANSPORT,
         kind="instance"),
    Hook("kombu", "kombu.transport.virtual:Message", "_raw",
         "The raw envelope dead-lettered when even the body of a message cannot be read.", _CONSUMER,
         kind="instance"),
    Hook("kombu", "kombu.common:QoS", "increment_eventually",
         "The prefetch count follows the size of the messages (with decrement_eventually, update, value).",
         _BATCHING),
    # py-amqp (through kombu's pyamqp transport): RabbitMQ producers wait once for many publisher confirms.
    Hook("amqp", "amqp.channel:Channel", "_basic_publish",
         "The publish that does not wait for the broker's confirm: with `confirm_publish` py-amqp sets each "
         "channel's `basic_publish` to `basic_publish_confirm`, which waits after every message; a channel of "
         "`publish_many`'s own publishes with this one in confirm mode and waits once for all confirms.",
         ("customer_updates/messaging/sending.py",)),
    Hook("amqp", "amqp.transport:TCPTransport", "_read_buffer",
         "Bytes read from the socket and not yet parsed into frames: with the socket, where a further message "
         "would be; empty and nothing readable means no further message is in hand, so the batch goes at once. "
         "The buffered transport reads ahead into it.",
         ("customer_updates/worker/amqp_delivery.py", _AMQP_TRANSPORT[0]), kind="instance"),
    # py-amqp and kombu: the worker reads RabbitMQ's socket in large pieces (worker/amqp_transport.py).
    Hook("amqp", "amqp.transport:TCPTransport", "_read",
         "Replaced: exactly n bytes as py-amqp's, errors included, but each receive asks for up to READ_SIZE "
         "bytes and keeps the rest in `_read_buffer`.", _AMQP_TRANSPORT, replicates="dd6e798f8dc6561a"),
    Hook("amqp", "amqp.transport:TCPTransport", "_setup_transport",
         "Extended: the read buffer starts as a bytearray, cut at the front as frames are parsed.",
         _AMQP_TRANSPORT, replicates="a94e8c3d0a4f112c"),
    Hook("amqp", "amqp.transport:_AbstractTransport", "having_timeout",
         "Wrapped: at timeout 0 on a blocking socket the receive is made non-blocking by a flag instead of two "
         "timeout changes a frame; other timeouts go through py-amqp's own.", _AMQP_TRANSPORT,
         replicates="16e4e63b1ab04382"),
    Hook("amqp", "amqp.transport:_AbstractTransport", "read_frame",
         "Parses a frame through `_read` (its header with initial=True, the payload, the end octet) and puts a "
         "frame's bytes back into `_read_buffer` after a timeout: the replaced `_read` keeps both working.",
         _AMQP_TRANSPORT, replicates="b4e78a88513b66c5"),
    Hook("kombu", "kombu.transport.base:Transport", "_make_reader",
         "kombu's event loop drains a connection at timeout 0 until the socket has nothing more, so what the "
         "buffered transport read ahead is parsed before the loop waits on the socket again.", _AMQP_TRANSPORT,
         replicates="92026c9a7f63bff2"),
    Hook("amqp", "amqp.transport:SSLTransport", "_read_buffer",
         "The same buffer on a TLS connection (the SSL socket's `pending()` counts decrypted bytes besides).",
         ("customer_updates/worker/amqp_delivery.py",), kind="instance"),
    # Celery's consumer: messages it cannot use are dead-lettered instead of dropped.
    Hook("celery", _CELERY_CONSUMER, "on_decode_error", "Overridden: an undecodable body is dead-lettered.",
         _CONSUMER),
    Hook("celery", _CELERY_CONSUMER, "on_unknown_message",
         "Overridden: a message without a task name is dead-lettered.", _CONSUMER),
    Hook("celery", _CELERY_CONSUMER, "on_unknown_task",
         "Overridden: a message for a task this worker does not have is dead-lettered.", _CONSUMER),
    Hook("celery", _CELERY_CONSUMER, "on_invalid_task",
         "Overridden: a body that is not of the task protocol is dead-lettered.", _CONSUMER),
    Hook("celery", _CELERY_CONSUMER, "create_task_handler",
         "Wrapped: any other error while receiving one message dead-letters it instead of stopping the worker; "
         "the wrapper relies on it calling the four hooks above.", _CONSUMER, replicates="007664d9b3de108d"),
    Hook("celery", _CELERY_CONSUMER, "Blueprint",
         "Subclassed: its default_steps without Celery's DelayedDelivery step (named there as "
         "`celery.worker.consumer.delayed_delivery:DelayedDelivery`), which our direct exchange cannot use.",
         _CONSUMER),
    Hook("celery", _CELERY_CONSUMER, "update_strategies",
         "Wrapped: each strategy in `strategies` first checks that the body is of the task protocol.", _CONSUMER),
    Hook("celery", _CELERY_CONSUMER, "strategies", "The per-task strategies the wrapper replaces.", _CONSUMER,
         kind="instance"),
    Hook("celery", "celery.worker.request:Request", "_payload",
         "`(args, kwargs, embed)` of a request, read by `slim` as celery-batches' own SimpleRequest does.",
         _BATCHING),
    Hook("celery", "celery.worker.request:Request", "acknowledge",
         "Overridden by HandsOverRequest: Celery's per-task Request subclass replaces on_success without "
         "calling it, but with acks_late the acknowledgement follows the return.", _BATCHING),
    Hook("celery", "celery.concurrency.prefork:TaskPool", "_pool",
         "The billiard pool behind Celery's prefork pool, whose pending jobs say whether a process is free.",
         _BATCHING, kind="instance"),
    Hook("billiard", "billiard.pool:Pool", "_cache",
         "Jobs sent to the pool and not yet returned: `len(_cache) >= limit` means every process is busy.",
         _BATCHING, kind="instance"),
    Hook("celery", "celery.events.dispatcher:EventDispatcher", "mutex",
         "Task events of a batch are published as one `task.multi` message with the dispatcher's own producer, "
         "exchange, serializer and headers, under its mutex, as its buffered flush does.",
         ("customer_updates/worker/task_events.py",), kind="instance"),
    Hook("celery", "celery.events.dispatcher:EventDispatcher", "on_send_buffered",
         "Replaced by the consumer step FlushTaskEvents: a task event Celery's own requests buffer is flushed "
         "EVENTS_DELAY later with the others of that time, not at the event loop's next turn one by one.",
         ("customer_updates/worker/task_events.py",), kind="instance"),
    # celery-batches: pacing, and the hand-over to the pool with task events.
    Hook("celery-batches", "celery_batches:Batches", "_buffer", "The queue of buffered requests that a flush takes.",
         _BATCHING, kind="instance"),
    Hook("celery-batches", "celery_batches:Batches", "_pool", "The worker's pool, set by `Strategy`.", _BATCHING,
         kind="instance"),
    Hook("celery-batches", "celery_batches:Batches", "_do_flush",
         "Overridden to flush only to a free pool process and at most a batch's worth; the timer calls it, "
         "and its ETA handling is kept by calling it.", _BATCHING, replicates="e2ae83c7ebbf0170"),
    Hook("celery-batches", "celery_batches:Batches", "flush",
         "Replaced: slim requests, task events, acknowledgements in one pipeline, the next batch on return.",
         _BATCHING, replicates="f509fca214f7afd7"),
    Hook("celery-batches", "celery_batches:Batches", "Strategy",
         "Wrapped: after it buffers a message (last in `_buffer`), its commands are counted.", _BATCHING,
         replicates="77d2cbe72c92af65"),
    Hook("celery-batches", "celery_batches:SimpleRequest", "from_request",
         "`slim` builds the SimpleRequest with fewer fields than this, from the same request attributes.",
         _BATCHING, replicates="0f5e7c921e64eafe"),
    Hook("celery-batches", "celery_batches", "consume_queue", "Empties the buffer without blocking.", _BATCHING),
    Hook("celery-batches", "celery_batches.trace", "apply_batches_task",
         "What the pool process runs for a batch, called with `(task, ([requests],), 0, None)`.", _BATCHING),
)
