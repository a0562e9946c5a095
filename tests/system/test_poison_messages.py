"""Poison messages among thousands of good ones: each lands in the dead-letter list or gets a failed
result with a SPEC code, none stops the worker or delays the good commands for ever."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
import redis

from customer_updates.messaging.results import read_result
from tests.system.harness import (
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    dead_letters,
    kombu_envelope,
    mobile_of,
    prepare_database,
    publish,
    push_raw,
    task_headers,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

JUNK = b"\x00\xff\xfe{not json"

# Messages that can never be applied, each with a part of the error the dead letter must carry.
UNUSABLE = [
    ("junk body", kombu_envelope(JUNK, task_headers()), "undecodable body"),
    ("junk body, no task header", kombu_envelope(JUNK, {}), "undecodable body"),
    ("JSON object body", kombu_envelope(b'{"hello": "world"}', task_headers()), "invalid task message"),
    ("JSON list of two", kombu_envelope(b"[1, 2]", task_headers()), "invalid task message"),
    ("pickle content type", kombu_envelope(b"\x80\x04K\x01.", task_headers(), "application/x-python-serialize"),
     "invalid task message"),
    ("unknown task", kombu_envelope(b'[[], {"commands": []}, {}]', task_headers("customer_updates.nope")),
     "unknown task"),
    ("wrong kwargs", kombu_envelope(b'[[], {"customers": [1]}, {}]', task_headers()), "is not {'commands'"),
    ("commands not a list", kombu_envelope(b'[[], {"commands": "x"}, {}]', task_headers()), "is not {'commands'"),
]


def _bad_commands(tag: str) -> tuple[list[dict[str, Any]], dict[str, int], list[dict[str, Any]]]:
    """Commands with a valid envelope whose item fails (request id -> expected code), and envelopes
    that fail validation (dead-lettered, since they have no usable request id or org)."""
    failing = {
        f"{tag}-no-identifier": ({"firstname": "Nobody"}, 1, 1104),
        f"{tag}-bad-mobile": ({"mobile": "12"}, 1, 1001),
        f"{tag}-not-an-object": ("just a string", 1, 400),
        f"{tag}-name-too-long": ({"mobile": mobile_of(1), "firstname": "x" * 101}, 1, 400),
        f"{tag}-unknown-customer": ({"mobile": "919999999999"}, 1, 1012),
        f"{tag}-unknown-org": ({"mobile": mobile_of(1), "firstname": "Elsewhere"}, 999, 400),
    }
    commands: list[dict[str, Any]] = [
        {"org_id": org, "request_id": rid, "issued_at": "2024-06-01T00:00:00", "customer": customer}
        for rid, (customer, org, _) in failing.items()]
    invalid: list[dict[str, Any]] = [
        {"org_id": "one", "request_id": f"{tag}-bad-org", "customer": {"mobile": mobile_of(1)}},
        {"org_id": 1, "request_id": "", "customer": {"mobile": mobile_of(1)}},
        {"org_id": 1, "request_id": f"{tag}-bad-time", "issued_at": "yesterday", "customer": {"mobile": mobile_of(1)}}]
    return commands, {rid: code for rid, (_, _, code) in failing.items()}, invalid


def test_poison_messages_are_dead_lettered_or_answered_and_good_commands_still_apply_once(
        pg_url, redis_url, broker_url, start_worker, report):
    workload = build_workload(seed=5)
    prepare_database(pg_url, workload.customers)
    bad, expected_codes, invalid = _bad_commands("poison")
    messages = workload.messages() + [[c] for c in bad] + [[c] for c in invalid]
    random.Random(5).shuffle(messages)
    half = len(messages) // 2
    publish(redis_url, messages[:half], broker_url)
    # Raw kombu envelopes exist on Redis only; test_rabbitmq_dead_letters.py sends RabbitMQ's raw messages.
    unusable = [] if broker_url else UNUSABLE
    if unusable:
        push_raw(redis_url, *[raw for _, raw, _ in unusable])
    publish(redis_url, messages[half:], broker_url)
    worker = start_worker(pg_url, redis_url, concurrency=2, beat=True, broker_url=broker_url, **WORKER_SETTINGS)

    wait_until_done(pg_url, redis_url, workload, extra_request_ids=len(bad) - 1,  # one is of org 999
                    broker_url=broker_url)

    figures = check_outcome(pg_url, redis_url, workload, broker_url=broker_url)
    client = redis.Redis.from_url(redis_url)
    for request_id, code in expected_codes.items():
        org = 999 if request_id.endswith("unknown-org") else 1
        result = read_result(client, org, request_id)
        assert result is not None, request_id
        assert int(result["item_status"]["code"]) == code, (request_id, result["item_status"])
    letters = dead_letters(redis_url)
    assert len(letters) == len(unusable) + len(invalid), [e["error"] for e in letters]
    errors = " | ".join(e["error"] for e in letters)
    for name, _, error in unusable:
        assert error in errors, name
    assert errors.count("invalid envelope") == len(invalid)
    assert all(e["attempts"] == 1 for e in letters)
    # The raw body is kept as it was: the junk comes back byte for byte.
    junk = [e["message"] for e in letters if isinstance(e["message"], dict)
            and e["message"].get("body_encoding") == "base64" and "json" in e["message"]["content_type"]]
    assert len(junk) == (0 if broker_url else 2) and all(base64.b64decode(m["body"]) == JUNK for m in junk)
    # Nothing was dropped silently, and no personal data reached the log.
    log = worker.log_path.read_text(errors="replace")
    assert "Can't decode message body" not in log
    assert worker.process.poll() is None
    leaked = [mobile_of(i) for i in range(workload.customers) if mobile_of(i) in log]
    assert not leaked, f"mobiles in the worker log: {leaked[:3]}"
    client.close()
    report(**figures, poison_messages=len(unusable) + len(invalid) + len(bad), dead_letters=len(letters),
           failed_results=len(bad))


# Redis only: a list entry that is no kombu envelope cannot exist on RabbitMQ, where every message is AMQP.
def test_a_list_entry_that_is_not_a_kombu_message_is_dead_lettered_and_does_not_stop_the_worker(
        pg_url, redis_url, start_worker):
    workload = build_workload(count=50, seed=6)
    prepare_database(pg_url, workload.customers)
    push_raw(redis_url, b"this is not JSON at all", json.dumps({"no": "envelope"}).encode())
    publish(redis_url, workload.messages())
    start_worker(pg_url, redis_url, concurrency=1, beat=True, **WORKER_SETTINGS)

    wait_until_done(pg_url, redis_url, workload, timeout=30)

    check_outcome(pg_url, redis_url, workload)
    letters = {d["message"]: d["error"] for d in dead_letters(redis_url)}
    assert set(letters) == {"this is not JSON at all", '{"no": "envelope"}'}
    assert all(error.startswith("queue entry is not a kombu message") for error in letters.values())
