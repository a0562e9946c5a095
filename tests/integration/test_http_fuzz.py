"""Hypothesis against the running ingress (uvicorn on loopback, PostgreSQL, Redis, no worker): whatever the
body, the headers or the bytes of the request head, the answer is 2xx or 4xx, never 5xx."""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_updates.settings import Settings
from tests.conftest import load_examples
from tests.integration.test_http_ingress import TILL, LiveServer

FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
UPDATE = "/v1.1/customer/update?format=json&wait=false"
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] ([0-9]{3}) ")

# Every code point, surrogates included (json.dumps writes a lone one as a \ud800-style escape), with the
# troublesome ones drawn often enough to meet them in a bounded run.
EDGE = ["\ud800", "\udfff", "\x00", "\x1b", "\u2028", "\ufeff", "\U0001f600", "'", "%", "\\"]
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)
                   | st.sampled_from(EDGE), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False) | any_text | st.sampled_from(["\ud800", "a\udfffb", "\udc00\ud800", "\x00"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=12)
fields = st.sampled_from(["mobile", "email", "external_id", "id", "firstname", "lastname", "registered_on",
                          "type", "custom_fields", "extended_fields", "subscriptions", "fraud_status", "x"])
items = st.dictionaries(fields, json_values, min_size=1, max_size=5)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["envelope", "envelope", "envelope", "any-json", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    value: Any = {"root": {"customer": draw(st.lists(items, max_size=3) | items)}} if shape == "envelope" \
        else draw(json_values)
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


# Header values httpx can send (h11 refuses CR, LF and NUL on the client side; the raw test sends those).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                      max_size=120)
# Bytes, without the outer spaces h11 refuses to send (httpx would also encode a str value as ASCII).
header_bytes = header_text.map(lambda text: text.strip(" ").encode("latin-1"))
authorization = st.one_of(
    header_bytes,
    st.binary(min_size=1, max_size=80).map(lambda raw: b"Basic " + base64.b64encode(raw)),
    st.tuples(st.sampled_from([b"", b"till.mg.road", b"nobody"]),
              st.sampled_from([b"", b"\x00", b"\x01\x1b", b"\x7f", b"\xc3\xa9", b"\xff"]) | st.binary(max_size=6),
              st.sampled_from([TILL[1].encode(), b""]) | st.binary(max_size=40)).map(
        lambda parts: b"Basic " + base64.b64encode(parts[0] + parts[1] + b":" + parts[2])))
header_names = st.sampled_from(["Idempotency-Key", "USER-CONTEXT-ENTITY-TYPE", "USER-CONTEXT-ENTITY-ID",
                                "USER-CONTEXT-SOURCE", "USER-CONTEXT-SOURCE-ID", "Content-Type", "Accept",
                                "X-Forwarded-For", "Expect", "Content-Encoding"])
headers = st.dictionaries(header_names, header_bytes, max_size=4)


@pytest.fixture
def server(pg_url: str, redis_url: str) -> Iterator[LiveServer]:
    """One server for all the examples of a test (hypothesis runs them within one call of the test)."""
    load_examples(pg_url)
    live = LiveServer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, http_wait_seconds=0,
                               http_max_body_bytes=4000, http_login_failures_per_client="100000/minute")).start()
    yield live
    live.stop()


@FUZZ
@given(body=bodies(), extra=st.just({}) | st.just({}) | headers)
def test_any_body_with_good_credentials_is_answered_without_a_server_error(server, body, extra):
    response = httpx.post(server.url + UPDATE, content=body, headers=extra, auth=TILL, timeout=30)

    assert response.status_code < 500, response.text


@FUZZ
@given(value=authorization, extra=headers, method=st.sampled_from(["GET", "POST", "PUT"]))
def test_any_authorization_and_headers_are_answered_without_a_server_error(server, value, extra, method):
    path = "/v1.1/customer/get?mobile=919800000001" if method == "GET" else UPDATE
    response = httpx.request(method, server.url + path, headers={**extra, "Authorization": value},
                             content=b'{"root": {"customer": [{"mobile": "919800000001"}]}}', timeout=30)

    assert response.status_code < 500, response.text


@FUZZ
@given(head=st.lists(st.binary(min_size=1, max_size=60), max_size=6), auth=st.binary(max_size=60))
def test_any_bytes_in_the_request_head_are_answered_without_a_server_error(server, head, auth):
    token = base64.b64encode(auth) if auth else base64.b64encode(f"{TILL[0]}:{TILL[1]}".encode())
    request = (b"POST /v1.1/customer/update?format=json&wait=false HTTP/1.1\r\nHost: ingress\r\n"
               + b"Authorization: Basic " + token + b"\r\n"
               + b"".join(b"X-Fuzz-" + str(i).encode() + b": " + line + b"\r\n" for i, line in enumerate(head))
               + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    status = STATUS_LINE.match(answer)
    assert status is not None, answer[:200]
    assert int(status.group(1)) < 500, answer[:500]
