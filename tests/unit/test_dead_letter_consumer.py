"""What the consumer keeps of an unusable message, and the retry delays (no broker needed)."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from customer_updates.services.worker_messages import backoff
from customer_updates.worker.consumer import is_task_body, raw_message


def _message(body: bytes | str) -> SimpleNamespace:
    return SimpleNamespace(body=body, headers={"task": "customer_updates.apply_updates"},
                           content_type="application/json", content_encoding="utf-8",
                           delivery_info={"routing_key": "customer_updates"})


def test_a_body_that_is_not_utf8_is_kept_byte_for_byte_in_base64():
    junk = b"\x00\xff\xfe{not json"

    raw = raw_message(_message(junk))

    assert raw["body_encoding"] == "base64"
    assert base64.b64decode(raw["body"]) == junk
    assert raw["headers"]["task"] == "customer_updates.apply_updates"


def test_a_text_body_is_kept_as_text():
    assert raw_message(_message(b'{"hello": 1}'))["body"] == '{"hello": 1}'


@pytest.mark.parametrize("payload", [
    [[], {"commands": []}, {}],
    [[], {"commands": []}, None],
    {"task": "t", "id": "1", "args": [], "kwargs": {}},
])
def test_protocol_bodies_are_task_bodies(payload):
    assert is_task_body(payload)


@pytest.mark.parametrize("payload", [
    {"hello": "world"}, [1, 2], [1, {}, {}], [[], [], {}], "text", 7, None, {"args": "x"},
])
def test_other_bodies_are_not_task_bodies(payload):
    assert not is_task_body(payload)


@pytest.mark.parametrize("attempt", [0, 1, 5, 30, 10_000, -3])
def test_a_retry_delay_is_jittered_and_never_above_the_bound(attempt):
    delays = [backoff(0.5, 30.0, attempt) for _ in range(200)]

    assert all(0 <= d <= min(30.0, 0.5 * 2 ** max(0, min(attempt, 30))) for d in delays)
    assert len(set(delays)) > 1


def test_the_retry_delay_bound_doubles_per_attempt_until_the_maximum():
    ceilings = [max(backoff(1.0, 8.0, a) for _ in range(2000)) for a in range(6)]

    assert ceilings[0] <= 1.0 and 1.0 < ceilings[1] <= 2.0 and 2.0 < ceilings[2] <= 4.0
    assert all(4.0 < c <= 8.0 for c in ceilings[3:])
