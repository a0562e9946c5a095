"""Many small AMQP frames in few TCP segments: the messages of a producer's call.

py-amqp writes each message with a send of its own, and RabbitMQ then reads them one receive at a time.
Corked (Linux's TCP_CORK), the kernel holds what is written until the block ends and sends it in full
segments, so RabbitMQ reads a call's messages in a few receives.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)  # absent off Linux: every write goes as it is


@contextmanager
def corked(connection: Any) -> Iterator[None]:
    """Cork the socket of a py-amqp connection (anything with `transport.sock`) for the block; others as they are."""
    sock = getattr(getattr(connection, "transport", None), "sock", None)
    if _TCP_CORK is None or sock is None:
        yield
        return
    sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a closed socket: the error of the send itself is raised
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 0)
