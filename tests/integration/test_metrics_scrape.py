"""Scrapes after a known workload: the workers' counters (served by `metrics`) and the ingress's /metrics."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from customer_updates import Producer
from customer_updates.ops.metrics import registry
from customer_updates.settings import Settings
from tests.conftest import load_examples


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_workers_counters_match_twenty_applied_and_three_failed_commands(
        pg_url: str, redis_url: str, start_worker: Any, tmp_path: Path):
    load_examples(pg_url)
    metrics_dir = str(tmp_path / "metrics")
    start_worker(pg_url, redis_url, metrics_dir=metrics_dir)
    settings = Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, metrics_dir=metrics_dir)
    good = [{"mobile": f"91980000000{(1, 2, 3, 5)[n % 4]}", "lastname": f"Name{n}"} for n in range(20)]
    unknown = [{"mobile": f"91700000000{n}", "lastname": "Nobody"} for n in range(3)]  # 1012: no such customer
    producer = Producer(settings)
    receipt = producer.enqueue_batch(1, {"root": {"customer": good + unknown}})
    assert producer.get_batch_result(1, receipt.batch_id, timeout=60) is not None

    samples = _samples(generate_latest(registry(settings)).decode())

    assert samples[("customer_updates_commands_total", (("code", "1000"), ("outcome", "applied")))] == 20
    assert samples[("customer_updates_commands_total", (("code", "1012"), ("outcome", "failed")))] == 3
    assert sum(v for (name, _), v in samples.items() if name == "customer_updates_commands_total") == 23
    assert samples[("customer_updates_batch_duration_seconds_count", ())] >= 1
    assert samples.get(("customer_updates_dead_letters_total", ()), 0) == 0
    assert any(name == "customer_updates_build_info" for name, _ in samples)


def test_the_ingress_serves_request_counts_by_route_on_metrics(pg_url: str, redis_url: str):
    pytest.importorskip("prometheus_fastapi_instrumentator")
    from fastapi.testclient import TestClient

    from customer_updates.http.app import create_app

    load_examples(pg_url)
    client = TestClient(create_app(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url)))
    before = _samples(client.get("/metrics").text)
    wrong = "Basic " + base64.b64encode(f"nobody:{hashlib.md5(b'x').hexdigest()}".encode()).decode()
    for _ in range(3):
        client.get("/v1.1/customer/get", params={"mobile": "919800000001"}, headers={"Authorization": wrong})

    after = _samples(client.get("/metrics").text)
    key = next(k for k in after if k[0] == "http_requests_total" and ("handler", "/v1.1/customer/get") in k[1])
    assert after[key] - before.get(key, 0) == 3
    assert "919800000001" not in client.get("/metrics").text


def test_every_metric_the_grafana_dashboard_queries_is_one_the_service_serves():
    import json
    import re

    from tests.conftest import ROOT

    dashboard = json.loads((Path(ROOT) / "docs" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    names = {name for expr in exprs for name in re.findall(r"\b(customer_updates_[a-z_]+)", expr)}
    served = (Path(ROOT) / "customer_updates" / "ops").glob("*metrics.py")
    source = "".join(path.read_text() for path in served)
    for name in names:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name).removeprefix("customer_updates_")
        assert base in source, name
