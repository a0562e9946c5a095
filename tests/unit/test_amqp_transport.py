"""The worker's py-amqp transport reads RabbitMQ's socket in large pieces and parses the same frames
(customer_updates/worker/amqp_transport.py), here over a local socket pair."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from customer_updates.worker.amqp_transport import READ_SIZE, BufferedTCPTransport
from customer_updates.worker.celery_app import _transport_for

FRAME_END = b"\xce"


def frame(payload: bytes, frame_type: int = 1, channel: int = 1) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + FRAME_END


class CountingSocket:
    """A socket that counts its receives and its timeout changes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.receives = 0
        self.timeout_changes = 0

    def recv(self, size: int, flags: int = 0) -> bytes:
        self.receives += 1
        return self.sock.recv(size, flags)

    def settimeout(self, value: float | None) -> None:
        self.timeout_changes += 1
        self.sock.settimeout(value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.fixture
def pair() -> Iterator[tuple[BufferedTCPTransport, CountingSocket, socket.socket]]:
    ours, theirs = socket.socketpair()
    transport = BufferedTCPTransport("127.0.0.1:5672")
    counting = CountingSocket(ours)
    transport.sock = counting
    transport._setup_transport()
    transport.connected = True
    with ours, theirs:
        yield transport, counting, theirs


def read_frame(transport: BufferedTCPTransport, timeout: float | None = 0) -> Any:
    with transport.having_timeout(timeout):
        return transport.read_frame()


def test_frames_that_arrived_together_are_parsed_from_one_receive(pair):
    transport, counting, theirs = pair
    payloads = [bytes([n]) * (10 + n * 50) for n in range(20)]
    theirs.sendall(b"".join(frame(p) for p in payloads))
    assert [read_frame(transport) for _ in payloads] == [(1, 1, p) for p in payloads]
    assert counting.receives == 1
    assert transport._read_buffer == b""


def test_reading_with_timeout_zero_leaves_the_socket_blocking(pair):
    transport, counting, theirs = pair
    theirs.sendall(frame(b"hello"))
    assert read_frame(transport, timeout=0) == (1, 1, b"hello")
    assert counting.timeout_changes == 0
    assert counting.gettimeout() is None


def test_nothing_to_read_at_timeout_zero_raises_a_timeout_and_keeps_the_connection(pair):
    transport, _, theirs = pair
    with pytest.raises(socket.timeout):
        read_frame(transport)
    theirs.sendall(frame(b"later"))
    assert read_frame(transport) == (1, 1, b"later")


def test_a_header_cut_short_waits_in_the_buffer_for_its_rest(pair):
    transport, _, theirs = pair
    whole = frame(b"split across two writes")
    theirs.sendall(whole[:4])
    with pytest.raises(socket.timeout):
        read_frame(transport)
    assert bytes(transport._read_buffer) == whole[:4]
    theirs.sendall(whole[4:])
    assert read_frame(transport) == (1, 1, b"split across two writes")


def test_a_frame_larger_than_a_read_is_read_whole(pair):
    transport, _, theirs = pair
    payload = bytes(range(256)) * (3 * READ_SIZE // 256 + 7)
    theirs.sendall(frame(payload) + frame(b"next"))
    assert read_frame(transport, timeout=None) == (1, 1, payload)
    assert read_frame(transport) == (1, 1, b"next")


def test_a_blocking_read_waits_for_the_frame(pair):
    transport, _, theirs = pair
    later = threading.Timer(0.2, theirs.sendall, [frame(b"blocking")])
    later.start()
    try:
        assert read_frame(transport, timeout=None) == (1, 1, b"blocking")
    finally:
        later.join()


def test_a_closed_peer_is_an_error(pair):
    transport, _, theirs = pair
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(OSError, match="closed"):
        read_frame(transport, timeout=None)


def test_workers_on_rabbitmq_use_the_buffered_transport_and_on_redis_their_own():
    assert _transport_for("amqp://guest:guest@127.0.0.1:5672//") == "customer_updates.worker.amqp_transport:Transport"
    assert _transport_for("pyamqp://127.0.0.1//") == "customer_updates.worker.amqp_transport:Transport"
    assert _transport_for("redis://127.0.0.1:6379/0") == "customer_updates.worker.transport:Transport"
    assert _transport_for("memory://") is None
