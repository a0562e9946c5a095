"""The same command delivered twice applies once (DESIGN §2); bad input ends with a stored result."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from customer_updates import Producer
from customer_updates.errors import RequestIdConflict
from customer_updates.messaging.broker import producer_app
from customer_updates.messaging.sending import send_apply
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import run_cli


def _command(customer: dict, request_id: str | None = None, org_id: int = 1) -> dict:
    return {"org_id": org_id, "request_id": request_id or uuid.uuid4().hex, "issued_at": utcnow().isoformat(),
            "customer": customer}


def _count(url: str, model, *where) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_message_delivered_twice_to_two_workers_applies_once(pg_url, redis_url, broker_url, start_worker):
    from tests.conftest import load_examples

    load_examples(pg_url)
    with session_scope(pg_url) as session:  # one customer per command: each command changes exactly once
        for i in range(20):
            session.add(t.Customer(org_id=1, mobile=f"9190000000{i:02d}", points_summaries=[], stamps={},
                                   fired=[], active=True))
    start_worker(pg_url, redis_url, concurrency=1, broker_url=broker_url)
    start_worker(pg_url, redis_url, concurrency=1, broker_url=broker_url)
    settings = Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, broker_url=broker_url)
    celery = producer_app(settings)
    producer = Producer(settings)
    commands = [_command({"mobile": f"9190000000{i:02d}", "lastname": f"Twice-{i}"}) for i in range(20)]
    for cmd in commands:  # each message twice, back to back: the two workers race for them
        send_apply([cmd], celery=celery)
        send_apply([cmd], celery=celery)

    results = [producer.get_result(1, c["request_id"], timeout=60) for c in commands]

    assert all(r is not None and r["item_status"]["code"] == "1000" for r in results)
    assert _count(pg_url, t.CommandRecord) == 20
    for cmd in commands:
        assert _count(pg_url, t.AuditEntry, t.AuditEntry.request_id == cmd["request_id"]) == 1
    assert _count(pg_url, t.Customer, t.Customer.lastname.like("Twice-%")) == 20


def test_a_redelivery_returns_the_stored_result_and_changes_nothing(loaded_db, redis_url, broker_url,
                                                                    start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    settings = Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=broker_url)
    producer = Producer(settings)
    request_id = producer.enqueue_update(1, {"mobile": "919800000001", "firstname": "Asha B"})
    first = producer.get_result(1, request_id, timeout=60)
    producer.redis.delete(f"cu:result:1:{request_id}")  # so that we see the second delivery's answer

    producer.enqueue_update(1, {"mobile": "919800000001", "firstname": "Asha B"}, request_id=request_id)
    second = producer.get_result(1, request_id, timeout=60)

    assert first is not None and first == second
    assert _count(loaded_db, t.AuditEntry, t.AuditEntry.field == "firstname") == 1


def test_a_request_id_reused_with_another_payload_is_refused_with_409(loaded_db, redis_url, broker_url,
                                                                      start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    producer = Producer(Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=broker_url))
    request_id = producer.enqueue_update(1, {"mobile": "919800000001", "firstname": "One"})
    assert producer.get_result(1, request_id, timeout=60) is not None

    # Its sender is told at once (SPEC §6 409): nothing is enqueued, the first payload's result stays.
    with pytest.raises(RequestIdConflict, match="409"):
        producer.enqueue_batch(1, {"root": {"customer": [{"mobile": "919800000001", "firstname": "Two"}]}},
                               request_ids=[request_id])
    with pytest.raises(RequestIdConflict, match="409"):
        producer.enqueue_update(1, {"mobile": "919800000001", "firstname": "Two"}, request_id=request_id)

    result = producer.get_result(1, request_id)
    assert result is not None and result["firstname"] == "One"
    other = producer.get_result(1, request_id, payload={"mobile": "919800000001", "firstname": "Two"})
    assert other is not None and other["item_status"]["code"] == "409"


def test_bad_items_each_end_with_a_stored_failed_result(loaded_db, redis_url, broker_url, start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    producer = Producer(Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=broker_url))
    cases = {
        "missing identifier": ({"firstname": "Nobody"}, 1, 1104),
        "wrong type": ({"mobile": "919800000001", "firstname": ["A"]}, 1, 400),
        "megabyte string": ({"mobile": "919800000001", "lastname": "x" * 1_000_000}, 1, 400),
        "megabyte identifier": ({"mobile": "9" * 1_000_000}, 1, 1001),
        "unknown org": ({"mobile": "919800000001"}, 999, 400),
        "not an object": ("just a string", 1, 400),
    }
    ids = {name: producer.enqueue_update(org, customer) for name, (customer, org, _) in cases.items()}

    for name, (_, org, code) in cases.items():
        result = producer.get_result(org, ids[name], timeout=60)
        assert result is not None, name
        assert result["item_status"]["code"] == str(code), (name, result["item_status"])
        assert result["item_status"]["success"] == "false"
    assert _count(loaded_db, t.CommandRecord, t.CommandRecord.success.is_(False)) == len(cases)


def test_the_cli_refuses_a_malformed_file_with_a_clear_error(loaded_db, redis_url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"root": {"customer": [ {"mobile": "9198"')
    done = run_cli(["enqueue", str(bad), "--org", "1"], loaded_db, redis_url)
    assert done.returncode == 2
    assert "not JSON" in done.stderr


def test_the_cli_refuses_a_body_without_customers(loaded_db, redis_url, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"root": {"customer": []}}))
    done = run_cli(["enqueue", str(empty), "--org", "1"], loaded_db, redis_url)
    assert done.returncode == 2
    assert "empty" in done.stderr
