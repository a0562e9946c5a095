"""Authentication, limits and the OpenAPI document of the HTTP ingress, checked in-process (httpx over
ASGI) against the real credential rows in PostgreSQL and Redis. No worker: nothing here is applied."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from customer_updates.http import create_app
from customer_updates.settings import Settings
from tests.conftest import load_examples


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


TILL = ("till.mg.road", md5("mgroad-secret"))
READ_ONLY = ("reporting", md5("read-only-secret"))
UPDATE = "/v1.1/customer/update?format=json"
ONE = {"root": {"customer": [{"mobile": "919800000001", "firstname": "Asha"}]}}


@pytest.fixture
def call(pg_url: str, redis_url: str) -> Callable[..., httpx.Response]:
    """Send one request to a fresh app (small limits, no waiting) and return the response."""
    load_examples(pg_url)
    app = create_app(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, http_wait_seconds=0,
                              http_max_body_bytes=8000, http_max_batch_items=3))

    def _call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    return _call


def status_of(response: httpx.Response) -> dict[str, Any]:
    return response.json()["response"]["status"]


def test_valid_till_credentials_are_accepted(call):
    response = call("POST", UPDATE, auth=TILL, json=ONE)

    assert response.status_code == 202  # queued: this app does not wait


@pytest.mark.parametrize("auth", [
    None,
    ("till.mg.road", md5("wrong")),
    ("till.mg.road", "mgroad-secret"),  # the plain password instead of its MD5
    ("nobody", md5("mgroad-secret")),
    ("", ""),
], ids=["missing", "wrong-password", "plain-password", "unknown-user", "empty"])
def test_missing_or_wrong_credentials_are_401_with_a_basic_challenge(call, auth):
    response = call("POST", UPDATE, auth=auth, json=ONE)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert status_of(response)["code"] == 401
    assert status_of(response)["success"] == "false"


def test_a_malformed_authorization_header_is_401_with_the_v1_1_body(call):
    response = call("GET", "/v1.1/customer/get?mobile=919800000001", headers={"Authorization": "Basic %%%"})

    assert response.status_code == 401
    assert status_of(response)["code"] == 401


def test_the_md5_is_accepted_in_upper_case_too(call):
    username, secret = TILL
    token = base64.b64encode(f"{username}:{secret.upper()}".encode()).decode()

    response = call("GET", "/v1.1/customer/get?mobile=919800000001", headers={"Authorization": f"Basic {token}"})

    assert response.status_code == 200


def test_credentials_without_write_access_get_403_with_error_code_4000_but_may_read(call):
    refused = call("POST", UPDATE, auth=READ_ONLY, json=ONE)
    read = call("GET", "/v1.1/customer/get?mobile=919800000001", auth=READ_ONLY)

    assert refused.status_code == 403
    assert status_of(refused) == {"success": "false", "code": 403, "errorCode": 4000,
                                  "message": "Access denied: these credentials may not update customers"}
    assert read.status_code == 200
    assert read.json()["response"]["customers"]["customer"][0]["firstname"] == "Asha"


def test_the_org_comes_from_the_credentials_never_from_the_request(call):
    other_org = ("till.other", md5("other-secret"))

    response = call("GET", "/v1.1/customer/get?mobile=919800000001&org_id=1", auth=other_org)

    # Org 2 has its own Asha with the same mobile: that is the one it sees.
    assert response.json()["response"]["customers"]["customer"][0]["firstname"] == "Asha (org 2)"


def test_a_body_over_the_size_limit_is_413(call):
    big = {"root": {"customer": [{"mobile": "919800000001", "firstname": "x" * 9000}]}}

    response = call("POST", UPDATE, auth=TILL, json=big)

    assert response.status_code == 413
    assert status_of(response)["code"] == 413


def test_a_streamed_body_without_length_is_cut_off_at_the_size_limit(call):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"root": {"customer": [{"mobile": "919800000001", "firstname": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}}'

    response = call("POST", UPDATE, auth=TILL, content=chunks())

    assert response.status_code == 413


def test_more_items_than_the_batch_limit_is_code_1060(call):
    body = {"root": {"customer": [{"mobile": f"91980000000{i}"} for i in range(4)]}}

    response = call("POST", UPDATE, auth=TILL, json=body)

    assert response.status_code == 400
    assert status_of(response)["code"] == 1060
    assert status_of(response)["message"].startswith("Batch limit exceeded")


@pytest.mark.parametrize("body", [
    b'{"root": {"customer": [',
    b"",
    b"\xff\xfe\x00garbage",
    b'{"root": {"customer": [{"mobile": NaN}]}}',
    b'{"root": {"customer": [{"mobile": 1' + b"0" * 4400 + b"}]}}",
    b"[" * 1000 + b"]" * 1000,
    b'"just a string"',
    b'{"root": {"customer": []}}',
    b'{"root": {"client": {}}}',
], ids=["truncated", "empty", "not-utf8", "nan", "huge-integer", "deep", "string", "no-items", "no-customer"])
def test_malformed_or_misshapen_bodies_are_400_with_the_v1_1_body(call, body):
    response = call("POST", UPDATE, auth=TILL, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert status_of(response)["success"] == "false"
    assert status_of(response)["code"] == 400
    assert status_of(response)["message"].startswith("Input is invalid")


def test_deep_nesting_inside_an_item_is_refused_before_the_queue(call):
    nested: Any = "x"
    for _ in range(40):
        nested = {"a": nested}

    response = call("POST", UPDATE, auth=TILL, json={"root": {"customer": [{"mobile": "919800000001",
                                                                            "firstname": nested}]}})

    assert response.status_code == 400


@pytest.mark.parametrize("url", [UPDATE + "&wait=maybe", "/v1.1/customer/update?format=yaml"])
def test_a_wrong_query_parameter_is_400_naming_it(call, url):
    response = call("POST", url, auth=TILL, json=ONE)

    assert response.status_code == 400
    assert status_of(response)["code"] == 400


def test_an_overlong_user_context_header_is_400(call):
    response = call("POST", UPDATE, auth=TILL, json=ONE, headers={"USER-CONTEXT-SOURCE": "s" * 101})

    assert response.status_code == 400
    assert "USER-CONTEXT-SOURCE" in status_of(response)["message"]


def test_get_refuses_a_request_without_identifiers_or_with_too_many(call):
    none = call("GET", "/v1.1/customer/get?mobile=,", auth=TILL)
    many = call("GET", "/v1.1/customer/get?mobile=1,2&email=a@b.cd,c@d.ef", auth=TILL)

    assert (none.status_code, status_of(none)["code"]) == (400, 1104)
    assert (many.status_code, status_of(many)["code"]) == (400, 1060)


def test_get_answers_malformed_values_per_item_and_never_errors(call):
    response = call("GET", "/v1.1/customer/get", auth=TILL,
                    params={"id": "99999999999999999999999", "email": "a\x00@b.cd", "external_id": "²"})

    assert response.status_code == 200
    codes = [c["item_status"]["code"] for c in response.json()["response"]["customers"]["customer"]]
    assert codes == ["1002", "1003", "1104"]


def test_unknown_paths_and_methods_answer_with_the_v1_1_error_body(call):
    missing = call("GET", "/v1.1/customer/nothing", auth=TILL)
    wrong_method = call("DELETE", UPDATE, auth=TILL)

    assert (missing.status_code, status_of(missing)["code"]) == (404, 404)
    assert (wrong_method.status_code, status_of(wrong_method)["code"]) == (405, 405)


def test_the_openapi_document_describes_bodies_responses_and_auth(call):
    document = call("GET", "/openapi.json").json()

    update = document["paths"]["/v1.1/customer/update"]
    assert set(update) == {"post", "put"}
    post = update["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/UpdateBody"}
    assert {"200", "202", "400", "401", "403", "413"} <= set(post["responses"])
    assert "422" not in json.dumps(document["paths"])
    assert {p["name"] for p in post["parameters"]} >= {"format", "wait", "USER-CONTEXT-ENTITY-TYPE",
                                                        "USER-CONTEXT-SOURCE-ID", "Idempotency-Key"}
    item = document["components"]["schemas"]["CustomerUpdateInput"]["properties"]
    assert item["firstname"]["anyOf"][0]["maxLength"] == 100
    assert document["components"]["securitySchemes"]["HTTPBasic"]["scheme"] == "basic"
    assert set(document["paths"]) == {"/v1.1/customer/update", "/v1.1/customer/update/result",
                                      "/v1.1/customer/get", "/v1.1/request/add", "/v1.1/customer/unmerge",
                                      "/v1.1/customer/history"}
    for path, body in (("/v1.1/request/add", "RequestAddBody"), ("/v1.1/customer/unmerge", "UnmergeBody")):
        schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{body}"} and body in document["components"]["schemas"]
