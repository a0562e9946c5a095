"""`customer-updates enqueue` prints the request ids that `customer-updates result` takes."""

from __future__ import annotations

import json

import pytest
import redis

from customer_updates.messaging.results import batch_key, result_key
from tests.conftest import EXAMPLES, run_cli

pytestmark = pytest.mark.redis


def test_enqueue_prints_each_request_id_that_result_then_reads(redis_url, tmp_path):
    database = f"sqlite:///{tmp_path / 'unused.db'}"
    done = run_cli(["enqueue", str(EXAMPLES / "updates.json"), "--org", "1"], database, redis_url)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split()
    items = json.loads((EXAMPLES / "updates.json").read_text())["root"]["customer"]
    assert len(printed) == len(items)
    batch_id = done.stderr.split("batch ", 1)[1].split(":", 1)[0]
    assert "customer-updates result ID --org 1" in done.stderr

    client = redis.Redis.from_url(redis_url)
    raw = client.get(batch_key(1, batch_id))
    assert raw is not None
    manifest = json.loads(raw)
    assert [request_id for request_id, _ in manifest] == printed

    request_id, payload_hash = manifest[0]
    stored = {"id": "42", "item_status": {"success": "true", "code": "1000", "message": "Customer successfully updated",
                                          "warnings": {"warning": []}}}
    client.set(result_key(1, request_id), json.dumps({"hash": payload_hash, "result": stored}))
    shown = run_cli(["result", request_id, "--org", "1", "--json"], database, redis_url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == stored
