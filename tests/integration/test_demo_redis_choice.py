"""The demo uses a Redis only when REDIS_URL names it: one that merely answers at the default address may
hold someone's data, so without REDIS_URL the demo starts its own."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from customer_updates.demo.run import Demo
from customer_updates.settings import get_settings


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch):
    output = io.StringIO()
    made = Demo(console=Console(file=output, width=200))
    yield made, output
    if made.embedded is not None:
        made.embedded.stop()
    get_settings.cache_clear()


def test_without_redis_url_the_demo_starts_its_own_even_when_the_default_redis_answers(demo, monkeypatch, tmp_path):
    made, output = demo
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("CUSTOMER_UPDATES_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file that could name one
    get_settings.cache_clear()
    url = made._redis()
    assert made.embedded is not None and url == made.embedded.url
    assert url != get_settings().redis_url
    assert "REDIS_URL is not set: started an embedded Redis" in output.getvalue()


@pytest.mark.redis
def test_with_redis_url_the_demo_uses_that_redis(demo, monkeypatch, redis_url):
    made, output = demo
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    assert made._redis() == redis_url
    assert made.embedded is None
    assert f"redis: {redis_url} (REDIS_URL)" in output.getvalue()
