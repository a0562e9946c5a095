"""kombu's py-amqp transport, reading RabbitMQ's socket in large pieces.

py-amqp reads exactly the bytes the next part of a frame needs: a `recv` for a frame's 7-byte header and
one for its payload, three frames (method, header, body) a message, and kombu's event loop sets the socket's
timeout before each frame and back after it. With one update a message the worker's main process, not the
database, limits the rate on RabbitMQ, and those system calls were a good part of its time. Here a receive
asks the socket for what it has (up to `READ_SIZE` bytes) into py-amqp's own read buffer, so that frames
which arrived together take one receive; and at the event loop's timeout of 0 the receive is made
non-blocking by a flag (`MSG_DONTWAIT`) instead of by changing the socket's timeout twice a frame.

Nothing else changes: frames are parsed by py-amqp's `read_frame`, and the buffer is py-amqp's
`_read_buffer` (a bytearray here), which it already keeps between reads. kombu's reader (`_make_reader`)
drains the connection until the socket has no more bytes, so bytes left in the buffer are always parsed
before the event loop waits on the socket again; and the batcher counts a non-empty buffer as messages in
hand (worker/amqp_delivery.py). TLS connections keep py-amqp's own transport. The private hooks are listed
in worker/hooks.py.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from amqp.transport import TCPTransport
from kombu.transport import pyamqp

READ_SIZE = 65536  # bytes asked of the socket at most per receive: many one-update messages
DONTWAIT: int | None = getattr(socket, "MSG_DONTWAIT", None)  # not on every platform


class BufferedTCPTransport(TCPTransport):
    """py-amqp's TCP transport with reads of up to READ_SIZE bytes."""

    _recv_flags: int = 0  # MSG_DONTWAIT while kombu's event loop reads

    def _setup_transport(self) -> None:
        super()._setup_transport()
        self._read_buffer = bytearray()

    @contextmanager
    def having_timeout(self, timeout: float | None) -> Iterator[Any]:
        # kombu's event loop reads with a timeout of 0. py-amqp sets the socket non-blocking for each frame
        # and back after it (two system calls a frame); a blocking socket's receive can be made non-blocking
        # by a flag instead, with no system call of its own.
        if timeout != 0 or DONTWAIT is None or self.sock is None or self.sock.gettimeout() is not None:
            with super().having_timeout(timeout) as sock:
                yield sock
            return
        self._recv_flags = DONTWAIT
        try:
            yield self.sock
        finally:
            self._recv_flags = 0

    def _read(self, n: int, initial: bool = False,
              _errnos: tuple[int, ...] = (errno.EAGAIN, errno.EINTR)) -> bytes:
        """Exactly `n` bytes, from the buffer and then the socket; what a read brings beyond them stays buffered.
        The same contract as py-amqp's own, errors included."""
        buffered = self._read_buffer
        if not isinstance(buffered, bytearray):  # py-amqp puts a frame's bytes back as bytes after a timeout
            buffered = self._read_buffer = bytearray(buffered)
        while len(buffered) < n:
            try:
                received = self.sock.recv(max(n - len(buffered), READ_SIZE), self._recv_flags)
            except OSError as exc:
                if exc.errno in _errnos:
                    if initial and self.raise_on_initial_eintr:
                        raise TimeoutError() from exc
                    continue
                raise
            if not received:
                raise OSError("Server unexpectedly closed connection")
            buffered += received
        result = bytes(buffered[:n])
        del buffered[:n]  # cheap at the front of a bytearray
        return result


class Connection(pyamqp.Connection):
    """kombu's py-amqp connection with the buffered transport for plain TCP."""

    def Transport(self, host: str, connect_timeout: float | None, ssl: Any = False,
                  read_timeout: float | None = None, write_timeout: float | None = None,
                  socket_settings: Any = None, **kwargs: Any) -> Any:
        if ssl:
            return super().Transport(host, connect_timeout, ssl=ssl, read_timeout=read_timeout,
                                     write_timeout=write_timeout, socket_settings=socket_settings, **kwargs)
        return BufferedTCPTransport(host, connect_timeout=connect_timeout, read_timeout=read_timeout,
                                    write_timeout=write_timeout, socket_settings=socket_settings, **kwargs)


class Transport(pyamqp.Transport):
    """kombu's py-amqp transport on the buffered connection (`broker_transport` of a worker on RabbitMQ)."""

    Connection = Connection
