"""Hostile input to the HTTP ingress, in-process (httpx over ASGI) against PostgreSQL and Redis, no worker:
text that is not Unicode, control characters in credentials, failed logins, a reused Idempotency-Key."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from customer_updates.http import create_app
from customer_updates.messaging.results import batch_key
from customer_updates.settings import Settings
from tests.conftest import load_examples
from tests.integration.test_http_auth_and_limits import TILL, UPDATE, md5, status_of

ORG = 1  # the org of till.mg.road in examples/org.yaml
SURROGATE = b'{"root":{"customer":[{"mobile":"919800000001","lastname":"\\ud800"}]}}'


Request = tuple[str, str, dict[str, Any]]


@pytest.fixture
def call(pg_url: str, redis_url: str) -> Callable[..., Any]:
    """`call(*requests, **settings)`: one fresh app answers the requests in order (a list of requests is sent
    concurrently); returns the responses, flat."""
    load_examples(pg_url)

    def _call(*requests: Request | list[Request], **settings: Any) -> list[httpx.Response]:
        app = create_app(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, http_wait_seconds=0, **settings))

        async def send() -> list[httpx.Response]:
            answers: list[httpx.Response] = []
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
                for group in requests:
                    together = group if isinstance(group, list) else [group]
                    answers += await asyncio.gather(*(client.request(m, u, **kw) for m, u, kw in together))
            return answers

        return asyncio.run(send())

    return _call


def basic(username: bytes, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(username + b":" + secret.encode()).decode()}


def test_a_lone_surrogate_in_a_json_string_is_400_not_a_server_error(call):
    [response] = call(("POST", UPDATE, {"auth": TILL, "content": SURROGATE}))

    assert response.status_code == 400
    assert status_of(response)["code"] == 400
    assert "surrogate" in status_of(response)["message"]


@pytest.mark.parametrize("value", [b"1e999", b"1" + b"0" * 25, b'{"\\udfff": "x"}'],
                         ids=["infinite", "beyond-64-bits", "surrogate-key"])
def test_a_value_no_store_can_keep_is_400_naming_where_not_what(call, value):
    body = b'{"root":{"customer":[{"mobile":"919800000001"},{"mobile":"919800000002","lastname":' + value + b"}]}}"

    [response] = call(("POST", UPDATE, {"auth": TILL, "content": body}))

    assert response.status_code == 400
    assert status_of(response)["message"].startswith("Input is invalid: customer[1].lastname")
    assert "0000000000" not in status_of(response)["message"]


def test_a_surrogate_pair_is_text_and_is_accepted(call):
    emoji = b'{"root":{"customer":[{"mobile":"919800000001","lastname":"\\ud83d\\ude00"}]}}'

    [response] = call(("POST", UPDATE, {"auth": TILL, "content": emoji}))

    assert response.status_code == 202


@pytest.mark.parametrize("username", [b"till.mg.road\x00", b"\x00", b"till\x01mg", b"till\x7f", b"t\xc3\xa9l\xff"],
                         ids=["nul-suffix", "nul", "control", "del", "not-ascii"])
def test_control_characters_or_bytes_outside_ascii_in_the_username_are_401(call, username):
    [response] = call(("GET", "/v1.1/customer/get?mobile=919800000001", {"headers": basic(username, TILL[1])}))

    assert response.status_code == 401
    assert status_of(response)["code"] == 401


def test_failed_logins_of_one_username_are_limited_with_429_and_retry_after(call, caplog):
    wrong = [("GET", "/v1.1/customer/get?mobile=919800000001", {"auth": ("till.mg.road", md5(f"guess-{i}"))})
             for i in range(5)]
    caplog.set_level(logging.INFO, "customer_updates.http")

    responses = call(*wrong, http_login_failures_per_username="3/minute", http_login_failures_per_client="100/minute")

    codes = sorted(r.status_code for r in responses)
    assert codes == [401, 401, 401, 429, 429]
    limited = next(r for r in responses if r.status_code == 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert status_of(limited)["code"] == 429
    refused = [r for r in caplog.records if r.getMessage() == "login refused"]
    assert {(r.status, r.username, r.client) for r in refused} == {
        (401, "till.mg.road", "127.0.0.1"), (429, "till.mg.road", "127.0.0.1")}
    assert not any(md5("guess-0") in r.getMessage() + json.dumps(r.__dict__, default=str) for r in refused)


def test_failed_logins_of_one_client_are_limited_whatever_the_username(call):
    wrong = [("GET", "/v1.1/customer/get?mobile=919800000001", {"auth": (f"nobody-{i}", md5("x"))}) for i in range(6)]

    responses = call(*wrong, http_login_failures_per_client="4/minute")

    assert sorted(r.status_code for r in responses) == [401] * 4 + [429] * 2


def test_credentials_verified_before_their_username_was_limited_still_pass(call):
    read = ("GET", "/v1.1/customer/get?mobile=919800000001", {"auth": TILL})
    wrong = ("GET", "/v1.1/customer/get?mobile=919800000001", {"auth": ("till.mg.road", md5("guess"))})

    answers = call(read, wrong, wrong, read, http_login_failures_per_username="1/minute")

    assert [r.status_code for r in answers] == [200, 401, 429, 200]


def test_the_username_in_the_refusal_log_is_truncated_and_sanitised(call, caplog):
    caplog.set_level(logging.INFO, "customer_updates.http")

    call(("GET", "/v1.1/customer/get?mobile=1", {"headers": basic(b"evil\x00\x1b[31m" + b"x" * 200, "s3cr3t-zz")}))

    [refused] = [r for r in caplog.records if r.getMessage() == "login refused"]
    logged = refused.username
    assert len(logged) <= 64
    assert logged.isprintable() and logged.startswith("evil")
    assert "s3cr3t-zz" not in json.dumps(refused.__dict__, default=str)


def test_an_idempotency_key_reused_with_more_items_is_409_and_leaves_the_batch_alone(call, redis_url):
    key = {"Idempotency-Key": "pos-7-receipt-1001"}
    one = {"root": {"customer": [{"mobile": "919800000001", "lastname": "Rao"}]}}
    two = {"root": {"customer": [*one["root"]["customer"], {"mobile": "919800000002", "lastname": "Xu"}]}}
    client = redis.Redis.from_url(redis_url)

    [first] = call(("POST", UPDATE, {"auth": TILL, "json": one, "headers": key}))
    manifest = client.get(batch_key(ORG, "pos-7-receipt-1001"))
    [more] = call(("POST", UPDATE, {"auth": TILL, "json": two, "headers": key}))
    [changed] = call(("POST", UPDATE, {"auth": TILL, "headers": key,
                                       "json": {"root": {"customer": [{"mobile": "919800000001"}]}}}))
    [again] = call(("POST", UPDATE, {"auth": TILL, "content": json.dumps(one, indent=2), "headers": key}))

    assert first.status_code == 202
    assert (more.status_code, status_of(more)["code"]) == (409, 409)
    assert "Idempotency-Key" in status_of(more)["message"]
    assert changed.status_code == 409
    assert client.get(batch_key(ORG, "pos-7-receipt-1001")) == manifest
    # The same body (whitespace aside) is the same request: the same answer as the first time.
    assert (again.status_code, again.json()) == (202, first.json())


def test_the_same_idempotency_key_in_another_org_is_another_batch(call):
    key = {"Idempotency-Key": "shared-key-1"}
    body = {"root": {"customer": [{"mobile": "919800000001"}]}}

    [mine] = call(("POST", UPDATE, {"auth": TILL, "json": body, "headers": key}))
    [theirs] = call(("POST", UPDATE, {"auth": ("till.other", md5("other-secret")), "headers": key,
                                      "json": {"root": {"customer": [{"mobile": "919800000009"}]}}}))

    assert mine.status_code == theirs.status_code == 202
