"""Merges over HTTP (SPEC §4, §8): `request/add` in the original's shape, `customer/unmerge` and
`customer/history`, served by uvicorn over PostgreSQL, Redis and a real worker."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import xmltodict

from customer_updates.settings import Settings
from tests.conftest import load_examples
from tests.integration.test_http_ingress import TILL, LiveServer, poll

REQUEST_ADD = "/v1.1/request/add"
UNMERGE = "/v1.1/customer/unmerge"
HISTORY = "/v1.1/customer/history"
GET = "/v1.1/customer/get"
# The examples: Asha (user 1, a member, 480 points), Chen (user 3, a member, 120 points, chen@example.com).
ASHA, CHEN = 1, 3


@pytest.fixture
def client(pg_url: str, redis_url: str, start_worker) -> Iterator[httpx.Client]:
    """The example org over PostgreSQL, a worker, and the ingress with a till's credentials."""
    load_examples(pg_url)
    start_worker(pg_url, redis_url)
    server = LiveServer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url)).start()
    with httpx.Client(base_url=server.url, auth=TILL, timeout=60) as http:
        yield http
    server.stop()


def merge_request(victim: dict[str, object], target: dict[str, object]) -> dict[str, object]:
    return {"type": "CHANGE_IDENTIFIER", "base_type": "MERGE", "customer": victim,
            "misc_info": {"target_customer": target}}


def test_a_merge_request_merges_a_member_named_by_email_into_one_named_by_mobile(client):

    # A single object where the original has a list is accepted, as for updates.
    response = client.post(REQUEST_ADD, json={"root": {"request": merge_request(
        {"email": "chen@example.com"}, {"mobile": "919800000001"})}})

    assert response.status_code == 200
    document = response.json()["response"]
    assert (document["status"]["code"], document["status"]["success_count"]) == (200, "1")
    [request] = document["requests"]["request"]
    assert (request["status"], request["item_status"]["code"]) == ("APPROVED", "1000")
    assert request["id"].startswith(document["batch_id"])
    assert request["customer"] == {"email": "chen@example.com", "user_id": CHEN}
    assert request["misc_info"]["target_customer"] == {"mobile": "919800000001", "user_id": ASHA}
    survivor = client.get(GET, params={"email": "chen@example.com"}).json()["response"]["customers"]["customer"][0]
    assert (survivor["user_id"], survivor["loyalty_points"]) == (ASHA, 600)
    assert survivor["item_status"]["warnings"]["warning"] == ["91009"]
    # The queued merge's result is also readable as a v1.1 batch at the update route's result URL.
    batch = client.get(document["result_url"]).json()["response"]
    assert batch["customers"]["customer"][0]["item_status"]["code"] == "1000"


def test_requests_that_name_no_known_customer_or_another_type_fail_alone(client):

    response = client.post(REQUEST_ADD, json={"root": {"request": [
        merge_request({"email": "nobody@example.com"}, {"id": ASHA}),
        {**merge_request({"id": CHEN}, {"id": ASHA}), "base_type": "SPLIT"},
        merge_request({"id": ASHA}, {"id": ASHA}),
        merge_request({"mobile": "919800000003"}, {"id": ASHA, "email": "chen@example.com"}),
    ]}})

    assert response.status_code == 200
    document = response.json()["response"]
    assert document["status"]["code"] == 500
    codes = [(r["status"], r["item_status"]["code"]) for r in document["requests"]["request"]]
    # Unknown and mismatched identifiers are refused at the lookup; the same customer by the worker.
    assert codes == [("REJECTED", "91200"), ("REJECTED", "400"), ("REJECTED", "91202"), ("REJECTED", "400")]
    assert [bool(r["id"]) for r in document["requests"]["request"]] == [False, False, True, False]


def test_an_xml_merge_request_is_answered_in_xml(client):
    body = ("<root><request><type>CHANGE_IDENTIFIER</type><base_type>MERGE</base_type>"
            "<customer><id>3</id></customer><misc_info><target_customer><id>1</id></target_customer>"
            "</misc_info></request></root>")

    response = client.post(REQUEST_ADD + "?format=xml", content=body, headers={"Content-Type": "application/xml"})

    assert response.headers["content-type"].startswith("application/xml")
    request = xmltodict.parse(response.text)["response"]["requests"]["request"]
    assert (request["status"], request["item_status"]["code"]) == ("APPROVED", "1000")


def test_an_unmerge_brings_the_victim_back_and_a_second_one_is_refused(client):
    client.post(REQUEST_ADD, json={"root": {"request": [merge_request({"id": CHEN}, {"id": ASHA})]}})

    first = client.post(UNMERGE, json={"root": {"customer": [{"id": CHEN}]}})
    second = client.post(UNMERGE + "?format=xml", json={"root": {"customer": {"id": str(CHEN)}}})

    assert first.status_code == 200
    [item] = first.json()["response"]["customers"]["customer"]
    assert (item["user_id"], item["loyalty_points"], item["item_status"]["code"]) == (CHEN, 120, "1000")
    asha = client.get(GET, params={"id": ASHA}).json()["response"]["customers"]["customer"][0]
    assert asha["loyalty_points"] == 480
    refused = xmltodict.parse(second.text)["response"]["customers"]["customer"]
    assert refused["item_status"]["code"] == "91203"


def test_an_unmerge_not_waited_for_answers_202_with_its_request_ids(client):

    response = client.post(UNMERGE + "?wait=false", json={"root": {"customer": [{"id": CHEN}, {"id": 999}]}})

    assert response.status_code == 202
    body = response.json()["response"]
    assert body["request_ids"] == [f"{body['batch_id']}:0", f"{body['batch_id']}:1"]
    done = poll(client, body["result_url"])
    assert [i["item_status"]["code"] for i in done.json()["response"]["customers"]["customer"]] == ["91203", "91203"]


def test_a_malformed_victim_id_refuses_the_unmerge_request(client):

    response = client.post(UNMERGE, json={"root": {"customer": [{"id": CHEN}, {"id": "x"}]}})

    assert response.status_code == 400
    assert response.json()["response"]["status"]["code"] == 1104


def test_the_history_shows_the_merge_and_the_unmerge_newest_first_a_page_at_a_time(client):
    client.post(REQUEST_ADD, json={"root": {"request": [merge_request({"id": CHEN}, {"id": ASHA})]}})
    client.post(UNMERGE, json={"root": {"customer": [{"id": CHEN}]}})

    everything = client.get(HISTORY, params={"id": ASHA}).json()["response"]
    kinds = [e["kind"] for e in everything["history"]["entry"]]
    first_page = client.get(HISTORY, params={"id": ASHA, "limit": 1}).json()["response"]
    second_page = client.get(HISTORY, params={"id": ASHA, "limit": 1,
                                              "before": first_page["customer"]["next_before"]}).json()["response"]
    as_xml = xmltodict.parse(client.get(HISTORY, params={"id": ASHA, "format": "xml"}).text)["response"]

    assert kinds.index("unmerge") < kinds.index("merge")
    merge = next(e for e in everything["history"]["entry"] if e["kind"] == "merge")
    assert (merge["survivor_id"], merge["victim_id"]) == (ASHA, CHEN)
    # What the merge filled on Asha from Chen: the earlier registration date and Chen's custom field.
    assert {"field": "custom:favourite_drink", "previous": "", "new": "flat white"} in merge["moved"]["change"]
    assert [e["id"] for e in first_page["history"]["entry"] + second_page["history"]["entry"]] == \
        [e["id"] for e in everything["history"]["entry"][:2]]
    assert as_xml["customer"]["user_id"] == str(ASHA)
    assert client.get(HISTORY, params={"id": 987654}).status_code == 404
