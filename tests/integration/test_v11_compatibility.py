"""A client of the original /v1.1/customer/update, unchanged, against this system: over HTTP (JSON and XML),
through the Producer and through the CLI, with a real worker, Redis and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from customer_updates import Producer
from customer_updates.http.xml import to_xml
from customer_updates.models import tables as t
from customer_updates.services.imports import import_customers
from customer_updates.settings import Settings
from customer_updates.store.db import get_engine, session_scope
from tests.conftest import load_examples, run_cli
from tests.integration.test_http_ingress import serve  # noqa: F401  (the fixture)
from tests.v11_shapes import (
    as_original_client,
    as_original_item,
    from_xml,
    sample,
    shape_problems,
    xml_key_problems,
)

SAMPLE_MOBILE = "44700900015"
ALL_FAILED = {"root": {"customer": [{"id": "172157568", "firstname": "Nobody"}, {"email": "", "mobile": ""}]}}


def _with_sample_member(database_url: str) -> str:
    """The example orgs, and the documentation sample's customer imported as a LOYALTY member without points."""
    load_examples(database_url)
    line = json.dumps({"org_id": 1, "mobile": SAMPLE_MOBILE, "firstname": "Ritta", "lastname": "James",
                       "registered_on": "2012-09-11 11:11:15"})
    import_customers(sessionmaker(get_engine(database_url)), [line])
    return database_url


def test_the_documented_request_over_http_answers_the_original_s_json_and_xml(pg_url, redis_url, serve,  # noqa: F811
                                                                              start_worker):
    db = _with_sample_member(pg_url)
    start_worker(db, redis_url)
    client = serve(db)

    answered = client.post("/v1.1/customer/update?format=json", json=sample("update-request.json"))
    xml_body = to_xml(sample("update-request.json")).encode()
    answered_xml = client.post("/v1.1/customer/update?format=xml", content=xml_body,
                               headers={"Content-Type": "application/xml"})

    assert answered.status_code == 200, answered.text
    document = answered.json()
    item = document["response"]["customers"]["customer"][0]
    assert item["item_status"]["code"] == "1000", item["item_status"]
    assert (item["current_slab"], item["source"], item["email"]) == ("Bronze", "instore", "")
    assert shape_problems(sample("update-response.json"), document) == []
    as_original_client(document)
    assert answered_xml.status_code == 200 and answered_xml.headers["content-type"].startswith("application/xml")
    ours = from_xml(answered_xml.content)
    assert xml_key_problems(from_xml(to_xml(sample("update-response.json"))), ours) == []
    assert ours["response"]["customers"]["customer"][0]["item_status"]["code"] == "1000"


def test_an_all_failed_batch_over_http_answers_the_original_s_json_and_xml(pg_url, redis_url, serve,  # noqa: F811
                                                                          start_worker):
    db = _with_sample_member(pg_url)
    start_worker(db, redis_url)
    client = serve(db)

    document = client.post("/v1.1/customer/update", json=ALL_FAILED).json()
    xml = client.post("/v1.1/customer/update?format=xml", content=to_xml(ALL_FAILED).encode(),
                      headers={"Content-Type": "text/xml"})

    assert [i["item_status"]["code"] for i in document["response"]["customers"]["customer"]] == ["1012", "1104"]
    assert shape_problems(sample("all-failed-response.json"), document) == []
    as_original_client(document)
    assert xml_key_problems(from_xml(to_xml(sample("all-failed-response.json"))), from_xml(xml.content)) == []
    got = client.get("/v1.1/customer/get", params={"mobile": SAMPLE_MOBILE, "id": "172157568"})
    as_original_client(got.json())
    got_xml = client.get("/v1.1/customer/get", params={"mobile": SAMPLE_MOBILE, "format": "xml"})
    assert from_xml(got_xml.content)["response"]["customers"]["customer"][0]["mobile"] == SAMPLE_MOBILE


def test_the_original_s_audit_headers_reach_the_audit_trail(pg_url, redis_url, serve, start_worker):  # noqa: F811
    db = _with_sample_member(pg_url)
    start_worker(db, redis_url)
    client = serve(db)

    client.post("/v1.1/customer/update", json={"root": {"customer": [{"mobile": SAMPLE_MOBILE,
                                                                       "firstname": "Rita"}]}},
                headers={"USER-CONTEXT-ENTITY-TYPE": "USER", "USER-CONTEXT-ENTITY-ID": "42",
                         "USER-CONTEXT-ENTITY-SOURCE": "POS", "USER-CONTEXT-ENTITY-SOURCE-ID": "till-7"})

    with session_scope(db) as session:
        entry = session.scalars(select(t.AuditEntry).where(t.AuditEntry.field == "firstname")).one()
        context = entry.user_context if isinstance(entry.user_context, dict) else json.loads(str(entry.user_context))
    assert context == {"entity_type": "USER", "entity_id": "42", "source": "POS", "source_id": "till-7"}


def test_the_producer_hands_out_the_original_s_types_and_tells_the_second_sender_409(pg_url, redis_url,
                                                                                    start_worker):
    db = _with_sample_member(pg_url)
    settings = Settings(DATABASE_URL=db, REDIS_URL=redis_url)
    first, second = Producer(settings), Producer(settings)
    # Both payloads are in flight under one request id before any worker runs.
    first.enqueue_update(1, {"mobile": SAMPLE_MOBILE, "firstname": "First"}, request_id="shared-id")
    second.enqueue_update(1, {"mobile": SAMPLE_MOBILE, "firstname": "Second"}, request_id="shared-id")
    receipt = first.enqueue_batch(1, sample("update-request.json"))
    start_worker(db, redis_url)

    batch = first.get_batch_result(1, receipt.batch_id, timeout=60)
    mine, theirs = first.get_result(1, "shared-id", timeout=60), second.get_result(1, "shared-id", timeout=60)

    assert batch is not None
    as_original_client(batch)
    assert mine is not None and theirs is not None
    as_original_item(mine)
    as_original_item(theirs)
    assert (mine["item_status"]["code"], mine["firstname"]) == ("1000", "First")
    assert theirs["item_status"]["code"] == "409"
    assert theirs["mobile"] == SAMPLE_MOBILE
    # A reader that did not send it names the payload it asks about.
    other = Producer(settings).get_result(1, "shared-id", payload={"mobile": SAMPLE_MOBILE, "firstname": "Second"})
    assert other is not None and other["item_status"]["code"] == "409"


def test_the_cli_prints_the_original_s_types(pg_url, redis_url, start_worker, tmp_path: Path):
    db = _with_sample_member(pg_url)
    start_worker(db, redis_url)
    body = tmp_path / "request.json"
    body.write_text(json.dumps(sample("update-request.json")))
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"mobile": SAMPLE_MOBILE, "firstname": "Someone else"}))

    enqueued = run_cli(["enqueue", str(body), "--org", "1", "--wait", "60", "--json"], db, redis_url)
    document = json.loads(enqueued.stdout[enqueued.stdout.index("{"):])
    request_id = Producer(Settings(DATABASE_URL=db, REDIS_URL=redis_url)).enqueue_update(
        1, {"mobile": SAMPLE_MOBILE, "firstname": "Ritta"}, request_id="cli-id")
    assert Producer(Settings(DATABASE_URL=db, REDIS_URL=redis_url)).get_result(1, request_id, timeout=60)
    result = run_cli(["result", request_id, "--org", "1", "--json"], db, redis_url)
    conflict = run_cli(["result", request_id, "--org", "1", "--json", "--payload", str(payload)], db, redis_url)

    as_original_client(document)
    assert shape_problems(sample("update-response.json"), document) == []
    assert as_original_item(json.loads(result.stdout)).item_status.code == "1000"
    assert as_original_item(json.loads(conflict.stdout)).item_status.code == "409"
