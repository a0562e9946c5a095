"""The retry budget: a message failing transiently is retried until its delays surely add up to the budget."""

from __future__ import annotations

import pytest

from customer_updates.services.worker_messages import backoff, may_retry
from customer_updates.settings import Settings


def retries_allowed(settings: Settings) -> int:
    attempt = 0
    while may_retry(settings, attempt):
        attempt += 1
    return attempt


@pytest.mark.parametrize("attempt", [0, 1, 4, 30, 10_000])
def test_a_retry_delay_is_at_least_half_its_bound(attempt):
    bound = min(10.0, 0.5 * 2 ** min(attempt, 30))
    delays = [backoff(0.5, 10.0, attempt) for _ in range(500)]

    assert all(bound / 2 <= d <= bound for d in delays)
    assert len(set(delays)) > 1


def test_the_default_retries_surely_wait_longer_than_a_minute_and_at_most_a_few():
    settings = Settings()
    attempts = retries_allowed(settings)
    least = sum(min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** n) / 2 for n in range(attempts))
    most = sum(min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** n) for n in range(attempts))

    assert settings.retry_budget_seconds >= 60
    assert 60 <= least < 60 + settings.retry_backoff_max
    assert most <= 130


def test_a_shorter_budget_allows_fewer_retries():
    assert retries_allowed(Settings(retry_budget_seconds=5)) < retries_allowed(Settings(retry_budget_seconds=60))


def test_max_retries_caps_the_retries_whatever_the_budget():
    assert retries_allowed(Settings(max_retries=3, retry_budget_seconds=3600)) == 3
    assert retries_allowed(Settings(max_retries=0)) == 0
