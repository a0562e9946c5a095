"""The award task retries a transient failure for as long as the retry budget allows, not Celery's 3 times."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Retry
from sqlalchemy.exc import OperationalError

from customer_updates.settings import Settings
from customer_updates.worker import tasks


@pytest.fixture
def failing_awards(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(rt: Any, outbox_ids: list[int]) -> int:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(tasks.worker_messages, "award", refuse)
    monkeypatch.setattr(tasks.resources, "current", lambda: SimpleNamespace(settings=Settings()))


def _run_after(retries: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the award task's body as a worker would on its `retries`-th retry, the broker left out."""
    task = tasks.award_points
    monkeypatch.setattr(task, "signature_from_request",
                        lambda *args, **kwargs: SimpleNamespace(apply_async=lambda *a, **k: None))
    task.push_request(id="award-1", retries=retries, delivery_info={}, is_eager=False, called_directly=False)
    try:
        task.run(outbox_ids=[1])
    finally:
        task.pop_request()


def test_an_award_is_retried_past_celerys_default_of_three_retries(
        failing_awards: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Retry):
        _run_after(5, monkeypatch)


def test_an_award_stops_retrying_once_its_retries_are_spent(
        failing_awards: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OperationalError):
        _run_after(Settings().max_retries, monkeypatch)
