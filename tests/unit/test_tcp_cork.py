"""What a RabbitMQ producer's call writes is held in the kernel (TCP_CORK) and goes when the call ends."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from customer_updates.messaging.tcp_cork import corked

CORK = getattr(socket, "TCP_CORK", None)
pytestmark = pytest.mark.skipif(CORK is None, reason="TCP_CORK is Linux's")


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            yield client, peer


def _corked_now(sock: socket.socket) -> int:
    assert CORK is not None
    return sock.getsockopt(socket.IPPROTO_TCP, CORK)


def test_writes_inside_the_block_are_corked_and_reach_the_peer_once_it_ends(tcp_pair):
    client, peer = tcp_pair
    connection = SimpleNamespace(transport=SimpleNamespace(sock=client))
    with corked(connection):
        assert _corked_now(client) == 1
        client.sendall(b"first")
        client.sendall(b"second")
    assert _corked_now(client) == 0
    peer.settimeout(5)
    received = b""
    while len(received) < len(b"firstsecond"):
        received += peer.recv(64)
    assert received == b"firstsecond"


def test_the_error_of_a_send_is_raised_even_when_the_socket_closed_inside_the_block(tcp_pair):
    client, _ = tcp_pair
    connection = SimpleNamespace(transport=SimpleNamespace(sock=client))
    with pytest.raises(ConnectionError), corked(connection):
        client.close()
        raise ConnectionResetError("lost")


def test_a_connection_without_a_socket_is_left_as_it_is():
    with corked(SimpleNamespace(transport=None)):
        pass

