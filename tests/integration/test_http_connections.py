"""Connections that hold the ingress without finishing a request: silent, slowloris headers, trickled bodies,
too many at once. uvicorn serves the app on loopback with the ingress's own connection guards."""

from __future__ import annotations

import base64
import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from customer_updates.settings import Settings
from tests.conftest import load_examples
from tests.integration.test_http_ingress import TILL, LiveServer
from tests.polling import wait_until

SILENT = 300
SLOW = 20


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


@pytest.fixture
def server(pg_url: str, redis_url: str) -> Iterator[LiveServer]:
    load_examples(pg_url)
    live = LiveServer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, http_wait_seconds=0,
                               http_header_timeout_seconds=1, http_body_timeout_seconds=1,
                               http_max_connections=SILENT + SLOW + 20)).start()
    yield live
    live.stop()


def test_silent_and_slowloris_connections_are_closed_after_the_header_timeout(server):
    silent = [connect(server.port) for _ in range(SILENT)]
    slow = [connect(server.port) for _ in range(SLOW)]
    for sock in slow:
        sock.send(b"GET /v1.1/customer/get?mobile=1 HTTP/1.1\r\nHost: ingress\r\n")

    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # a header line every 0.25 s: never a whole request
        for sock in slow:
            with contextlib.suppress(OSError):  # the server may have closed it already
                sock.send(b"X-Slow: 1\r\n")
        time.sleep(0.25)

    assert wait_until(lambda: all(closed_by_server(s) for s in silent + slow), 3)
    assert wait_until(lambda: len(server.server.server_state.connections) == 0, 3)
    assert httpx.get(f"{server.url}/v1.1/customer/get?mobile=919800000001", auth=TILL).status_code == 200
    for sock in silent + slow:
        sock.close()


def test_an_idle_keep_alive_connection_is_closed_and_an_active_one_is_not(server):
    with httpx.Client(base_url=server.url, auth=TILL) as client:
        for _ in range(4):  # four requests over 2 s on one connection: each response re-arms the deadline
            assert client.get("/v1.1/customer/get?mobile=919800000001").status_code == 200
            time.sleep(0.5)
        assert len(server.server.server_state.connections) == 1


def test_connections_beyond_the_cap_are_closed_at_once(pg_url, redis_url):
    load_examples(pg_url)
    live = LiveServer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, http_max_connections=10)).start()
    try:
        socks = [connect(live.port) for _ in range(30)]

        assert wait_until(lambda: sum(closed_by_server(s) for s in socks) >= 20, 2)
        assert len(live.server.server_state.connections) <= 10
        for sock in socks:
            sock.close()
        assert wait_until(lambda: len(live.server.server_state.connections) == 0, 3)
        assert httpx.get(f"{live.url}/v1.1/customer/get?mobile=919800000001", auth=TILL).status_code == 200
    finally:
        live.stop()


def test_a_body_that_trickles_in_is_answered_408(server):
    token = base64.b64encode(f"{TILL[0]}:{TILL[1]}".encode())
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST /v1.1/customer/update?format=json HTTP/1.1\r\nHost: ingress\r\n"
                 b"Authorization: Basic " + token + b"\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n" + b'{"root": ')

    answer = b""
    while chunk := sock.recv(65536):  # the server closes the connection after its answer
        answer += chunk
    sock.close()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":408' in answer.replace(b" ", b"")
