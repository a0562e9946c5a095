"""Generated poison pushed raw onto a live worker's queue among good commands: the worker stays alive,
every good command is applied once, every broken envelope is one dead letter, every bad command a failed
result; nothing injected shows in the log; and a restarted worker survives what was left unacknowledged."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_updates.messaging.results import read_result
from tests.system.harness import (
    UPDATES_QUEUE,
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    dead_letters,
    prepare_database,
    publish,
    push_raw,
    task_headers,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

APPLY = "customer_updates.apply_updates"
# The repro, byte for byte: a task header that is a list.
REPRO = (b'{"body":"W10=","content-encoding":"utf-8","content-type":"application/json","headers":{"task":["x"],'
         b'"id":"p1"},"properties":{"delivery_tag":"p1","delivery_info":{"exchange":"","routing_key":'
         b'"customer_updates"},"body_encoding":"base64"}}')


@dataclass
class Poison:
    entry: bytes
    secret: str  # a personal-looking value inside the entry, which must not reach the log
    request_id: str | None = None  # a bad command with a usable envelope: it gets a failed result
    code: int | None = None  # the code that result must have (None: any failure)


def _body(commands: list[Any]) -> bytes:
    return json.dumps([[], {"commands": commands}, {"callbacks": None, "errbacks": None, "chain": None,
                                                    "chord": None}]).encode()


def _envelope(body: bytes | str, headers: Any, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "content-encoding": "utf-8", "content-type": "application/json", "headers": headers,
        "properties": {"correlation_id": str(uuid.uuid4()), "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4()), "delivery_mode": 2, "priority": 0,
                       "delivery_info": {"exchange": "", "routing_key": UPDATES_QUEUE}}}
    for path, value in (changes or {}).items():
        *parents, last = path.split("__")
        target = entry
        for name in parents:
            target = target[name]
        target[last] = value
    return entry


def _secret_command(secret: str) -> dict[str, Any]:
    return {"org_id": 1, "request_id": f"fz-{uuid.uuid4().hex[:12]}", "customer": {"mobile": secret}}


junk = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.booleans())

# Envelope mutations kombu or Celery cannot take: (path, value strategy).
BROKEN = [
    ("headers__task", st.lists(st.text(max_size=5), max_size=3) | st.dictionaries(st.text(max_size=3), junk)),
    ("headers", st.lists(junk, max_size=3) | st.text(max_size=8) | st.integers()),
    ("headers__task", st.text(min_size=1, max_size=12).filter(lambda name: name != APPLY)),
    ("headers__id", st.integers() | st.lists(st.integers(), max_size=2)),
    ("headers__eta", st.integers() | st.text(min_size=1, max_size=10)),
    ("headers__retries", st.text(max_size=4) | st.lists(st.integers(), max_size=2)),
    ("body", st.text(min_size=1, max_size=20).filter(lambda text: not _is_base64(text))),
    ("properties__body_encoding", st.text(max_size=10).filter(lambda name: name.lower() not in ("base64", "utf-8"))),
    ("properties__priority", st.text(max_size=3) | st.integers(min_value=256) | st.integers(max_value=-1)),
    ("properties__delivery_info", junk.filter(lambda value: not isinstance(value, dict))),
    ("content-type", st.sampled_from(["application/x-python-serialize", "text/plain", "application/x-yaml"])),
]


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text.encode("ascii"), validate=True)
        return True
    except ValueError:
        return False


@st.composite
def poison(draw: st.DrawFn) -> Poison:
    secret = f"9198{draw(st.integers(0, 10 ** 8 - 1)):08d}"
    kind = draw(st.sampled_from(["envelope", "entry", "command", "body"]))
    if kind == "entry":  # the whole list entry is not a kombu message
        entry = draw(st.sampled_from([secret.encode(), json.dumps({"mobile": secret}).encode(),
                                      f"{{not json {secret}".encode(), json.dumps([secret, 1]).encode()]))
        return Poison(entry, secret)
    if kind == "envelope":
        path, values = draw(st.sampled_from(BROKEN))
        # The secret rides in the body (for broken bodies: in the header id field instead).
        headers = {**task_headers(), "kwargsrepr": "{}"}
        body = _body([_secret_command(secret)])
        changes = {path: draw(values)}
        if path == "body":
            changes["headers__root_id"] = secret
        return Poison(json.dumps(_envelope(body, headers, changes)).encode(), secret)
    if kind == "body":  # a well-formed envelope around a body that is not of the task protocol
        body = draw(st.sampled_from([f"[{secret}".encode(), json.dumps({"mobile": secret}).encode(),
                                     json.dumps([[], {"customers": [secret]}, {}]).encode(),
                                     b"\xff\xfe" + secret.encode()]))
        return Poison(json.dumps(_envelope(body, task_headers())).encode(), secret)
    # A usable envelope, one bad command beside a good one of its own.
    command = _secret_command(secret)
    problem, code = draw(st.sampled_from([
        ({"lastname": "\ud800"}, 400),
        ({"firstname": float("inf")}, 400),
        ({"firstname": 2 ** 70}, 400),
        ({"firstname": {"__type__": "datetime", "__value__": "2024-01-01T00:00:00"}}, None),
        ({"lastname": {"__type__": "no such type", "__value__": 1}}, None),
    ]))
    command["customer"].update(problem)
    command["issued_at"] = "2024-06-01T00:00:00"
    return Poison(json.dumps(_envelope(_body([command]), task_headers())).encode(), secret,
                  command["request_id"], code)


def generate(count: int) -> list[Poison]:
    found: list[Poison] = []

    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(poison())
    def collect(item: Poison) -> None:
        found.append(item)

    collect()
    return found


def _unacked_poison(secret: str) -> list[bytes]:
    """Records as an older worker may have left them in kombu's unacked hash."""
    listed_headers = _envelope(_body([_secret_command(secret)]), ["task", secret])
    list_task = _envelope(_body([_secret_command(secret)]), {**task_headers(), "task": [secret]})
    return [json.dumps([listed_headers, "", UPDATES_QUEUE]).encode(),
            json.dumps([list_task, "", UPDATES_QUEUE]).encode(),
            f"not a record {secret}".encode()]


# Redis only: the poison is raw kombu envelopes pushed onto the Redis list (RabbitMQ: test_rabbitmq_dead_letters.py).
def test_generated_poison_never_stops_a_live_worker_and_every_good_command_is_applied(
        pg_url, redis_url, start_worker, report):
    items = generate(150)
    items.append(Poison(REPRO, "p1-repro-has-no-secret"))
    bad_commands = [p for p in items if p.request_id]
    workload = build_workload(count=400, seed=11)
    prepare_database(pg_url, workload.customers)
    worker = start_worker(pg_url, redis_url, concurrency=2, **WORKER_SETTINGS)
    messages = workload.messages()
    started = time.monotonic()
    half = len(messages) // 2
    publish(redis_url, messages[:half])
    for start in range(0, len(items), 25):  # interleaved with good messages
        push_raw(redis_url, *[p.entry for p in items[start:start + 25]])
        publish(redis_url, messages[half + start // 25:half + start // 25 + 1])
    publish(redis_url, messages[half + len(items) // 25 + 1:])

    drained = wait_until_done(pg_url, redis_url, workload, timeout=90, extra_request_ids=len(bad_commands))
    assert worker.process.poll() is None, worker.log_path.read_text()[-3000:]
    check_outcome(pg_url, redis_url, workload)
    client = redis.Redis.from_url(redis_url)
    for p in bad_commands:
        result = read_result(client, 1, str(p.request_id))
        assert result is not None and result["item_status"]["success"] == "false", (p.request_id, result)
        if p.code is not None:
            assert int(result["item_status"]["code"]) == p.code, result
    envelopes = len(items) - len(bad_commands)
    letters = dead_letters(redis_url)
    assert len(letters) == envelopes, [e["error"] for e in letters][:20]

    # Restart: the worker stops, poison is left in kombu's unacked hash (as an older worker would have left
    # it) and on the queue; the next worker restores it, dead-letters it and stays alive.
    worker.stop()
    stale = time.time() - 3600
    restored = _unacked_poison("919800000042")
    for number, record in enumerate(restored):
        tag = f"stale-{number}"
        client.hset("unacked", tag, record)
        client.zadd("unacked_index", {tag: stale})
    push_raw(redis_url, REPRO, *[p.entry for p in items[:10] if not p.request_id])
    second = build_workload(count=50, seed=12, tag="again")
    publish(redis_url, second.messages())
    restarted = start_worker(pg_url, redis_url, concurrency=1, **WORKER_SETTINGS)
    deadline = time.monotonic() + 40
    expected = envelopes + len(restored) + 1 + len([p for p in items[:10] if not p.request_id])
    while time.monotonic() < deadline and (len(dead_letters(redis_url)) < expected or client.hlen("unacked")):
        time.sleep(0.5)
    wait_until_done(pg_url, redis_url, second, timeout=30,
                    extra_request_ids=len(workload.commands) + len(bad_commands))
    assert restarted.process.poll() is None, restarted.log_path.read_text()[-3000:]
    assert client.hlen("unacked") == 0
    assert len(dead_letters(redis_url)) == expected
    log = worker.log_path.read_text(errors="replace") + restarted.log_path.read_text(errors="replace")
    leaked = [p.secret for p in items if p.secret in log] + [s for s in ("919800000042",) if s in log]
    assert not leaked, leaked[:5]
    assert "Unrecoverable error" not in log
    client.close()
    report(poison_entries=len(items), broken_envelopes=envelopes, bad_commands=len(bad_commands),
           good_commands=len(workload.commands), drain_seconds=round(drained, 1),
           seconds_since_first_push=round(time.monotonic() - started, 1), restored_poison=len(restored))
