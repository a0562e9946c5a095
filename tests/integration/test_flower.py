"""A real Flower, started by `customer-updates flower`, watching a real worker: states and masking."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from customer_updates import Producer
from customer_updates.settings import Settings
from tests.conftest import EXAMPLES, cli_env, load_examples
from tests.flower_process import running_flower

AUTH = ("ops", "flower-secret")
APPLY, AWARD = "customer_updates.apply_updates", "customer_updates.award_points"


def personal_values() -> set[str]:
    """Every mobile and email of the example data: none may appear in what Flower serves."""
    values = set()
    lines = (EXAMPLES / "customers.ndjson").read_text().splitlines()
    items = json.loads((EXAMPLES / "updates.json").read_text())["root"]["customer"]
    for record in [*(json.loads(line) for line in lines if line.startswith("{")), *items]:
        values |= {str(record[key]) for key in ("mobile", "email") if record.get(key)}
    return values


@pytest.fixture
def flower(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    env = cli_env(pg_url, redis_url, flower_basic_auth=":".join(AUTH))
    with running_flower(env, tmp_path / "flower.log") as base:
        yield base


def wait_for_tasks(base: str, want: dict[str, int], timeout: float = 60) -> dict[str, dict]:
    """Flower's task list once it holds `want[name]` successful tasks of each name."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = httpx.get(f"{base}/api/tasks", auth=AUTH, timeout=5).json()
        done = {name: sum(1 for t in tasks.values() if t["name"] == name and t["state"] == "SUCCESS")
                for name in want}
        settled = all(t["state"] == "SUCCESS" for t in tasks.values() if t["name"] in want)
        if (settled and all(done[name] >= count for name, count in want.items())) or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def test_flower_shows_each_task_with_its_final_state_and_no_personal_data(pg_url, redis_url, flower,
                                                                         start_worker):
    load_examples(pg_url)
    start_worker(pg_url, redis_url)
    producer = Producer(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, producer_message_size=1))
    body = json.loads((EXAMPLES / "updates.json").read_text())
    receipt = producer.enqueue_batch(1, body)
    assert producer.get_batch_result(1, receipt.batch_id, timeout=60) is not None

    # One apply message per item (message size 1); two awards (profile completion, first email), carried
    # out by one award task per applied chunk, so one or two tasks.
    tasks = wait_for_tasks(flower, {APPLY: len(receipt.request_ids), AWARD: 1})

    states = {(t["name"], t["state"]) for t in tasks.values()}
    assert states == {(APPLY, "SUCCESS"), (AWARD, "SUCCESS")}
    applies = [t for t in tasks.values() if t["name"] == APPLY]
    assert len(applies) == len(receipt.request_ids)
    assert all(t["received"] and t["started"] and t["succeeded"] for t in applies), [
        {k: t[k] for k in ("received", "started", "succeeded", "sent", "worker")} for t in applies]
    shown = " ".join(t["kwargs"] for t in applies)
    assert all(request_id in shown for request_id in receipt.request_ids)
    served = httpx.get(f"{flower}/api/tasks", auth=AUTH, timeout=5).text
    served += "".join(httpx.get(f"{flower}/api/task/info/{task_id}", auth=AUTH, timeout=5).text
                      for task_id in tasks)
    leaked = {value for value in personal_values() if value in served}
    assert leaked == set()


def test_flower_refuses_its_api_without_the_basic_auth_credentials(flower):
    assert httpx.get(f"{flower}/api/tasks", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/api/tasks", auth=("ops", "wrong"), timeout=5).status_code == 401


def test_flower_serves_prometheus_metrics(flower):
    response = httpx.get(f"{flower}/metrics", auth=AUTH, timeout=5)
    assert response.status_code == 200
    assert "flower_" in response.text
