"""`customer-updates settings`: current values with secrets masked, whole variable names at any width."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from customer_updates.cli import main
from customer_updates.cli.settings_view import render, rows
from customer_updates.settings import Settings, get_settings

ENV = {"DATABASE_URL": "postgresql+psycopg://app:s3cret-pw@db.internal:5432/customers",
       "REDIS_URL": "redis://:redis-pw@cache:6379/2",
       "CUSTOMER_UPDATES_FLOWER_BASIC_AUTH": "ops:flower-pw",
       "CUSTOMER_UPDATES_WORKER_BATCH_SIZE": "250"}


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield ENV
    get_settings.cache_clear()


def test_settings_shows_current_values_with_every_secret_masked(settings_env):
    result = CliRunner().invoke(main, ["settings"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert "DATABASE_URL = postgresql+psycopg://app:****@db.internal:5432/customers" in result.output
    assert "REDIS_URL = redis://:****@cache:6379/2" in result.output
    assert "CUSTOMER_UPDATES_FLOWER_BASIC_AUTH = ops:****" in result.output
    assert "CUSTOMER_UPDATES_WORKER_BATCH_SIZE = 250   (default: 500)" in result.output
    for secret in ("s3cret-pw", "redis-pw", "flower-pw"):
        assert secret not in result.output


def test_settings_json_lists_each_setting_once_masked(settings_env):
    result = CliRunner().invoke(main, ["settings", "--json"])
    listed = json.loads(result.output)
    assert [row["setting"] for row in listed] == list(Settings.model_fields)
    assert "flower-pw" not in result.output
    assert next(r for r in listed if r["setting"] == "worker_batch_size")["is_default"] is False


@pytest.mark.parametrize("width", [40, 60, 120])
def test_no_variable_name_or_description_word_is_cut_at_any_width(width):
    text = render(Settings(), width=width)
    assert "…" not in text
    for row in rows(Settings()):
        assert f"{row['variable']} = " in text
        for word in row["description"].split():
            assert word in text
