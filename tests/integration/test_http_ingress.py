"""The HTTP ingress served by uvicorn on loopback, a real worker, Redis and PostgreSQL: a client of the
original v1.1 API updates and reads customers and gets the same answers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from customer_updates.http import create_app
from customer_updates.http.server import uvicorn_options
from customer_updates.models import tables as t
from customer_updates.ops.processes import free_port
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import EXAMPLES, ROOT, cli_env, load_examples


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


TILL = ("till.mg.road", md5("mgroad-secret"))
UPDATE = "/v1.1/customer/update?format=json"


class LiveServer:
    """uvicorn serving the app in a thread of the test process, on 127.0.0.1 and a free port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", **uvicorn_options(settings))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve(redis_url: str) -> Iterator[Callable[..., httpx.Client]]:
    """Start the ingress over a database; returns an HTTP client for it (with the till's credentials)."""
    servers: list[LiveServer] = []
    clients: list[httpx.Client] = []

    def _serve(database_url: str, **settings: Any) -> httpx.Client:
        server = LiveServer(Settings(DATABASE_URL=database_url, REDIS_URL=redis_url, **settings)).start()
        servers.append(server)
        client = httpx.Client(base_url=server.url, auth=TILL, timeout=60)
        clients.append(client)
        return client

    yield _serve
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


@pytest.fixture
def examples_db(pg_url: str) -> str:
    load_examples(pg_url)
    return pg_url


def poll(client: httpx.Client, url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url)
        if response.status_code != 202 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_an_update_waits_for_the_worker_and_answers_the_v1_1_response(examples_db, redis_url, broker_url, serve,
                                                                        start_worker):
    start_worker(examples_db, redis_url, broker_url=broker_url)
    client = serve(examples_db, broker_url=broker_url)

    response = client.post(UPDATE, content=(EXAMPLES / "updates.json").read_bytes())

    assert response.status_code == 200
    status = response.json()["response"]["status"]
    items = response.json()["response"]["customers"]["customer"]
    assert (status["code"], status["total"], status["success_count"]) == (201, "8", "3")
    assert [i["item_status"]["code"] for i in items] == ["1000", "1000", "1000", "91006", "1002", "1012", "1104", "400"]
    assert items[0]["lastname"] == "Rao-Iyer"


def test_get_reads_several_customers_and_leads_a_merged_victim_to_its_survivor(examples_db, redis_url, serve,
                                                                              start_worker):
    start_worker(examples_db, redis_url)
    client = serve(examples_db)
    # Dana (user 4, email only) is merged into Ben when Ben is given her email.
    merged = client.post(UPDATE, json={"root": {"customer": {"mobile": "919800000002",
                                                             "email": "dana@example.com"}}})
    assert merged.json()["response"]["status"]["code"] == 200

    got = client.get("/v1.1/customer/get", params={"mobile": "919800000001,919800000003", "id": "4",
                                                   "format": "json"}).json()["response"]

    people = got["customers"]["customer"]
    assert [p["firstname"] for p in people] == ["Asha", "Chen", "Ben"]
    assert people[2]["email"] == "dana@example.com"
    assert people[2]["item_status"]["warnings"]["warning"] == ["91009"]
    assert got["status"] == {"success": "true", "code": 200, "message": "Success", "total": "3", "success_count": "3"}
    missing = client.get("/v1.1/customer/get?mobile=910000000000").json()["response"]
    assert missing["customers"]["customer"][0]["item_status"]["code"] == "1012"


def test_put_is_answered_like_post_and_an_overlong_name_fails_only_its_item(examples_db, redis_url, serve,
                                                                           start_worker):
    start_worker(examples_db, redis_url)
    client = serve(examples_db)

    response = client.put(UPDATE, json={"root": {"customer": [
        {"mobile": "919800000005", "firstname": "Elias"},
        {"mobile": "919800000003", "firstname": "C" * 5000},
    ]}})

    assert response.status_code == 200
    body = response.json()["response"]
    assert body["status"]["code"] == 201
    assert [i["item_status"]["code"] for i in body["customers"]["customer"]] == ["1000", "400"]


def _audit_contexts(database_url: str, field: str) -> list[dict[str, Any] | None]:
    with session_scope(database_url) as session:
        return list(session.scalars(select(t.AuditEntry.user_context).where(t.AuditEntry.field == field)))


def test_user_context_headers_are_recorded_in_the_audit_trail(examples_db, redis_url, serve, start_worker):
    start_worker(examples_db, redis_url)
    client = serve(examples_db)
    headers = {"USER-CONTEXT-ENTITY-TYPE": "USER", "USER-CONTEXT-ENTITY-ID": "agent-17",
               "USER-CONTEXT-SOURCE": "CRM", "USER-CONTEXT-SOURCE-ID": "ticket-42"}

    with_headers = client.post(UPDATE, headers=headers,
                               json={"root": {"customer": [{"mobile": "919800000001", "lastname": "Menon"}]}})
    without = client.post(UPDATE, json={"root": {"customer": [{"mobile": "919800000005", "firstname": "Elias"}]}})

    assert with_headers.status_code == without.status_code == 200
    assert _audit_contexts(examples_db, "lastname") == [
        {"entity_type": "USER", "entity_id": "agent-17", "source": "CRM", "source_id": "ticket-42"}]
    # Without the headers the change is attributed to the till the credentials belong to.
    [context] = _audit_contexts(examples_db, "firstname")
    assert context is not None
    assert (context["entity_type"], context["entity_id"]) == ("TILL", "store.mg.road")


def test_wait_false_answers_202_with_a_result_url_that_gives_the_response(examples_db, redis_url, serve,
                                                                         start_worker):
    start_worker(examples_db, redis_url)
    client = serve(examples_db)

    accepted = client.post(UPDATE + "&wait=false",
                           json={"root": {"customer": [{"mobile": "919800000001", "firstname": "Asha M"}]}})

    assert accepted.status_code == 202
    body = accepted.json()["response"]
    assert body["status"]["code"] == 202
    assert accepted.headers["location"] == body["result_url"]
    assert body["result_url"] == f"/v1.1/customer/update/result?batch_id={body['batch_id']}"
    done = poll(client, body["result_url"])
    assert done.status_code == 200
    assert done.json()["response"]["customers"]["customer"][0]["firstname"] == "Asha M"


def test_a_wait_that_runs_out_answers_202_and_the_batch_completes_once_a_worker_runs(examples_db, redis_url,
                                                                                     broker_url, serve, start_worker):
    client = serve(examples_db, http_wait_seconds=0.3, broker_url=broker_url)

    accepted = client.post(UPDATE, json={"root": {"customer": [{"mobile": "919800000003", "lastname": "Lee"}]}})
    assert accepted.status_code == 202
    url = accepted.json()["response"]["result_url"]
    assert client.get(url).status_code == 202

    start_worker(examples_db, redis_url, broker_url=broker_url)
    done = poll(client, url)
    assert done.status_code == 200
    assert done.json()["response"]["customers"]["customer"][0]["lastname"] == "Lee"


def test_a_request_retried_with_its_idempotency_key_applies_nothing_twice(examples_db, redis_url, broker_url, serve,
                                                                         start_worker):
    start_worker(examples_db, redis_url, broker_url=broker_url)
    client = serve(examples_db, broker_url=broker_url)
    body = {"root": {"customer": [{"mobile": "919800000001", "lastname": "Rao-Nair"}]}}
    key = {"Idempotency-Key": "pos-7-receipt-991"}

    first = client.post(UPDATE, json=body, headers=key)
    again = client.post(UPDATE, json=body, headers=key)
    changed = client.post(UPDATE, headers=key,
                          json={"root": {"customer": [{"mobile": "919800000001", "lastname": "Other"}]}})
    more = client.post(UPDATE, headers=key, json={"root": {"customer": [
        *body["root"]["customer"], {"mobile": "919800000002", "lastname": "Extra"}]}})

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert (changed.status_code, more.status_code) == (409, 409)
    assert more.json()["response"]["status"]["code"] == 409
    # Neither the changed item nor the extra one was applied, and the batch still answers its first result.
    assert len(_audit_contexts(examples_db, "lastname")) == 1
    assert client.get("/v1.1/customer/update/result?batch_id=pos-7-receipt-991").json() == first.json()


def test_a_batch_of_another_org_or_an_unknown_batch_is_not_found(examples_db, redis_url, serve, start_worker):
    start_worker(examples_db, redis_url)
    client = serve(examples_db)
    accepted = client.post(UPDATE + "&wait=false", json={"root": {"customer": [{"mobile": "919800000001"}]}})
    url = accepted.json()["response"]["result_url"]
    assert poll(client, url).status_code == 200

    other_org = client.get(url, auth=("till.other", md5("other-secret")))
    unknown = client.get("/v1.1/customer/update/result?batch_id=no-such-batch")

    assert other_org.status_code == unknown.status_code == 404
    assert unknown.json()["response"]["status"]["success"] == "false"


def test_the_serve_command_runs_the_ingress(examples_db, redis_url):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "customer_updates.cli", "serve", "--port", str(port)],
                               env=cli_env(examples_db, redis_url), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1.1/customer/get?mobile=919800000001", auth=TILL)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["response"]["customers"]["customer"][0]["firstname"] == "Asha"
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    # The access log names paths, never query strings with mobiles in them.
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(entry.get("path") == "/v1.1/customer/get" for entry in logged)
    assert "919800000001" not in output
