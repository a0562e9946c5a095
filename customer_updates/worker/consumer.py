"""The worker's message consumer: Celery's, except that a message it cannot use is dead-lettered.

Celery logs and drops a message whose body cannot be decoded, that names no task or an unknown one, or
whose body is not of the task protocol (and such a body breaks the consumer-side batching of
celery-batches, which unpacks it without a check). These messages can never succeed, so they are not
retried (DESIGN §2); but nothing accepted may vanish silently: each is pushed, raw, with the error to the
dead-letter list, and only then acknowledged. The log line names the error, never the body (it may
carry personal data), nor anything an exception's text may quote of it.

Any other error while receiving one message (Celery reading a header, a strategy) is that message's
problem, not the worker's: Celery's hub treats it as unrecoverable and stops; here the message is
dead-lettered and the worker goes on.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer

from customer_updates.services import resources, worker_messages

log = logging.getLogger("customer_updates.worker.consumer")


def raw_message(message: Any) -> dict[str, Any]:
    """What was on the queue, as it was: body as text when it is UTF-8, else base64."""
    try:
        return _raw_message(message)
    except Exception:  # a message so broken that even this fails: its raw envelope, as kombu held it
        return {"envelope": getattr(message, "_raw", None), "body": repr(getattr(message, "body", None))}


def _raw_message(message: Any) -> dict[str, Any]:
    body = message.body
    if isinstance(body, bytes | bytearray):
        try:
            body_text, encoding = bytes(body).decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body_text, encoding = base64.b64encode(bytes(body)).decode(), "base64"
    else:
        body_text, encoding = str(body), "utf-8"
    headers = message.headers if isinstance(message.headers, dict) else {}
    return {"body": body_text, "body_encoding": encoding, "content_type": message.content_type,
            "content_encoding": message.content_encoding, "headers": headers,
            "routing_key": (message.delivery_info or {}).get("routing_key")}


def is_task_body(payload: Any) -> bool:
    """Protocol 2 `[args, kwargs, embed]`, or a protocol 1 body (celery-batches converts those)."""
    if isinstance(payload, dict):
        return isinstance(payload.get("args"), list | tuple) and isinstance(payload.get("kwargs", {}), dict)
    return (isinstance(payload, list | tuple) and len(payload) == 3 and isinstance(payload[0], list | tuple)
            and isinstance(payload[1], dict) and isinstance(payload[2], dict | type(None)))


# Celery's native delayed delivery needs topic exchanges (ours is direct: a retry's countdown is held by the
# worker), so its step would only declare 28 unused queues; and with a failover list of RabbitMQ nodes it
# retries a dead node of the list at every reconnection, about 17 s in which the worker consumed nothing.
DELAYED_DELIVERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


class DeadLetteringConsumer(Consumer):
    class Blueprint(Consumer.Blueprint):
        default_steps = [step for step in Consumer.Blueprint.default_steps if step != DELAYED_DELIVERY_STEP]

    def _dead_letter(self, message: Any, error: str) -> bool:
        try:
            worker_messages.dead_letter_body(resources.current(), raw_message(message), error)
            return True
        except Exception:
            # Redis is away: leave the message unacknowledged, it comes back after the visibility timeout.
            log.warning("dead letter not stored; message left for redelivery", exc_info=True)
            return False

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        # The error's type only: decoders' messages may quote the body or its content type.
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__})" if cause is not None else ""
        if self._dead_letter(message, f"undecodable body: {type(exc).__name__}{detail}"):
            message.ack()

    # Acknowledged, not rejected, once stored: on RabbitMQ a rejected message would also reach the dead-letter
    # exchange and be stored twice (on Redis both only remove the message from the unacknowledged set).
    def on_unknown_message(self, body: Any, message: Any) -> None:
        if self._dead_letter(message, "not a task message: no task name in headers or body"):
            message.ack_log_error(log, self.connection_errors)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        # Not the name: it is the sender's text (the dead letter keeps the headers).
        if self._dead_letter(message, "unknown task: the task header names no task of this worker"):
            message.ack_log_error(log, self.connection_errors)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if self._dead_letter(message, f"invalid task message: {type(exc).__name__}"):
            message.ack_log_error(log, self.connection_errors)

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        received = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            try:
                return received(message)
            except self.connection_errors:
                raise
            except Exception as exc:
                if self._dead_letter(message, f"message not received: {type(exc).__name__}") \
                        and not message.acknowledged:
                    message.ack_log_error(log, self.connection_errors)
                return None

        return on_task_received

    def update_strategies(self) -> None:
        super().update_strategies()
        for name, strategy in list(self.strategies.items()):
            self.strategies[name] = _checked(strategy)


def _checked(strategy: Any) -> Any:
    """Refuse a body that is not of the task protocol before a strategy unpacks it.

    Raising InvalidTaskError hands the message to `on_invalid_task`; a DecodeError from `decode()`
    goes to `on_decode_error`.
    """

    def checked(message: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
        payload = body if body is not None else message.decode()
        if not is_task_body(payload):
            raise InvalidTaskError("body is not a task message ([args, kwargs, embed])")
        return strategy(message, body, *args, **kwargs)

    return checked
