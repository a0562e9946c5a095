"""A real worker process applies a batch enqueued through the producer, on PostgreSQL and on SQLite."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from customer_updates import Producer
from customer_updates.models import tables as t
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import EXAMPLES, run_cli


def test_a_mixed_batch_ends_with_one_result_per_item_in_input_order(loaded_db, redis_url, broker_url, start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    producer = Producer(Settings(DATABASE_URL=loaded_db, REDIS_URL=redis_url, broker_url=broker_url))
    body = json.loads((EXAMPLES / "updates.json").read_text())
    receipt = producer.enqueue_batch(1, body)

    response = producer.get_batch_result(1, receipt.batch_id, timeout=60)

    assert response is not None
    status = response["response"]["status"]
    items = response["response"]["customers"]["customer"]
    assert (status["code"], status["total"]) == (201, "8")
    codes = [i["item_status"]["code"] for i in items]
    assert codes == ["1000", "1000", "1000", "91006", "1002", "1012", "1104", "400"]
    assert status["success_count"] == "3"
    merged = items[1]
    assert merged["email"] == "dana@example.com"
    assert merged["item_status"]["warnings"]["warning"] == ["91102"]
    assert items[2]["item_status"]["warnings"]["warning"] == ["91021"]
    single = producer.get_result(1, receipt.request_ids[0])
    assert single == items[0]


def test_the_cli_reads_the_same_results_as_the_producer(loaded_db, redis_url, broker_url, start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    done = run_cli(["enqueue", str(EXAMPLES / "updates.json"), "--org", "1", "--wait", "60", "--json"],
                   loaded_db, redis_url, broker_url=broker_url)
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    first = response["response"]["customers"]["customer"][0]
    assert first["lastname"] == "Rao-Iyer"

    got = run_cli(["customer", "get", "--org", "1", "--mobile", "919800000001", "--json"], loaded_db, redis_url)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["lastname"] == "Rao-Iyer"

    with session_scope(loaded_db) as session:
        audit = session.scalar(select(func.count()).select_from(t.AuditEntry)
                               .where(t.AuditEntry.field == "lastname", t.AuditEntry.new == "Rao-Iyer"))
        records = session.scalar(select(func.count()).select_from(t.CommandRecord))
    assert audit == 1
    assert records == 8
