"""Whether py-amqp holds further messages after the one just delivered, for the batcher's flush at once.

On Redis the worker's own transport counts the messages it fetched and has not delivered yet
(worker/transport.py). py-amqp reads one message a call from its socket and keeps no queue of parsed ones,
so whatever RabbitMQ pushed and the worker has not taken yet is in the connection's read buffer or in the
socket (where TLS may hold decrypted bytes the socket no longer shows). When none of them holds a byte, no
further message is in hand: a lone message goes to a free pool process at once instead of waiting for the
flush timer (worker/batching.py, `flush_at_once`).
"""

from __future__ import annotations

import select
from typing import Any


def _amqp_transport(channel: Any) -> Any | None:
    """The py-amqp transport behind `channel`, when it has the socket and read buffer looked at here."""
    transport = getattr(getattr(channel, "connection", None), "transport", None)
    sock = getattr(transport, "sock", None)
    if sock is None or not hasattr(sock, "fileno") or not isinstance(getattr(transport, "_read_buffer", None),
                                                                     bytes | bytearray):
        return None
    return transport


def reads_from_amqp(channel: Any) -> bool:
    """Whether `amqp_messages_in_hand` can tell for this channel (no I/O: asked for every message)."""
    return _amqp_transport(channel) is not None


def amqp_messages_in_hand(channel: Any) -> int | None:
    """0 when nothing more has arrived on the channel's connection, 1 when something has (a message or a part of
    one), None when `channel` is not a py-amqp channel (the batcher then waits for its flush timer)."""
    transport = _amqp_transport(channel)
    if transport is None:
        return None
    if transport._read_buffer:
        return 1
    sock = transport.sock
    pending = getattr(sock, "pending", None)  # an SSL socket's decrypted bytes not read yet
    try:
        if callable(pending) and pending():
            return 1
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # a closed socket: the connection's own error handling takes over
        return None
    return 1 if readable else 0
