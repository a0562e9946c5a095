"""What the apply task returns for each message: counts and codes, or the reason it was dead-lettered."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from sqlalchemy import exc as sa_exc

from customer_updates.messaging.dead_letters import list_dead_letters
from customer_updates.models.commands import utcnow
from customer_updates.services import worker_messages
from customer_updates.services.resources import Runtime
from customer_updates.settings import Settings
from customer_updates.store.orgs import OrgCache
from tests.conftest import load_examples


def _command(mobile: str) -> dict[str, Any]:
    return {"org_id": 1, "request_id": uuid.uuid4().hex, "issued_at": utcnow().isoformat(),
            "customer": {"mobile": mobile, "lastname": "Report"}}


def _request(task_id: str, kwargs: Any) -> Any:
    return SimpleNamespace(id=task_id, args=(), kwargs=kwargs)


def test_each_message_is_reported_by_its_task_id_with_applied_failed_and_codes(sqlite_url: str, redis_url: str):
    load_examples(sqlite_url)
    rt = Runtime(Settings(DATABASE_URL=sqlite_url, REDIS_URL=redis_url), OrgCache(30))
    good = [_command(f"91980000000{n}") for n in (1, 2, 3)]
    mixed = [_command("919800000005"), _command("917654399999")]  # the second is no customer
    requests = [_request("t-good", {"commands": good}), _request("t-mixed", {"commands": mixed}),
                _request("t-bad", {"nothing": 1})]

    reports = worker_messages.apply_requests(rt, requests, send_awards=lambda ids, **kw: None,
                                             send_apply=lambda *a, **kw: None)

    assert reports["t-good"] == {"commands": 3, "applied": 3, "failed": 0, "codes": {"1000": 3}}
    assert reports["t-mixed"]["applied"] == 1 and reports["t-mixed"]["failed"] == 1
    assert reports["t-mixed"]["codes"] == {"1000": 1, "1012": 1} and "dead_letter" not in reports["t-mixed"]
    assert reports["t-bad"]["dead_letter"].startswith("InvalidMessage")
    assert [entry["task_id"] for entry in list_dead_letters(rt.redis, rt.settings.dead_letter_key)] == ["t-bad"]


def test_a_message_dead_lettered_after_its_retries_is_reported_with_an_error_free_of_personal_data(
        sqlite_url: str, redis_url: str, monkeypatch: Any):
    load_examples(sqlite_url)
    rt = Runtime(Settings(DATABASE_URL=sqlite_url, REDIS_URL=redis_url, max_retries=0),
                 OrgCache(30))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise sa_exc.OperationalError("insert", {}, Exception("mobile 919800001234 refused"))

    monkeypatch.setattr(worker_messages.BatchApplier, "run", refuse)
    command = _command("919800001234")

    reports = worker_messages.apply_requests(rt, [_request("t-dead", {"commands": [command]})],
                                             send_awards=lambda ids, **kw: None, send_apply=lambda *a, **kw: None)

    assert reports["t-dead"]["dead_letter"] == "OperationalError"
    assert reports["t-dead"]["codes"] == {"9001": 1} and reports["t-dead"]["failed"] == 1
    assert list_dead_letters(rt.redis, rt.settings.dead_letter_key)[0]["task_id"] == "t-dead"


def test_a_retried_message_counts_its_commands_as_requeued(sqlite_url: str, redis_url: str, monkeypatch: Any):
    load_examples(sqlite_url)
    rt = Runtime(Settings(DATABASE_URL=sqlite_url, REDIS_URL=redis_url), OrgCache(30))
    monkeypatch.setattr(worker_messages.BatchApplier, "run",
                        lambda *a, **kw: (_ for _ in ()).throw(sa_exc.OperationalError("x", {}, Exception("gone"))))
    sent: list[Any] = []

    reports = worker_messages.apply_requests(rt, [_request("t-retry", {"commands": [_command("919800001235")]})],
                                             send_awards=lambda ids, **kw: None,
                                             send_apply=lambda *a, **kw: sent.append(kw))

    assert reports["t-retry"] == {"commands": 1, "applied": 0, "failed": 0, "codes": {}, "requeued": 1}
    assert sent[0]["attempt"] == 1
