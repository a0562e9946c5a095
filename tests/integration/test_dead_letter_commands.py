"""`dead-letters` list, show, drop and purge on a real Redis, and the purge by beat's purge task."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis as redis_lib
from click.testing import CliRunner

from customer_updates.cli import main
from customer_updates.cli.ops import parse_duration
from customer_updates.messaging.dead_letters import list_dead_letters, purge_dead_letters, push_dead_letter

KEY = "customer_updates.dead_letters"
PERSONAL = {"org_id": 7, "request_id": "r-1",
            "customer": {"user_id": 5, "mobile": "+41791234567", "email": "ann@example.com", "first_name": "Ann"}}


@pytest.fixture
def client(redis_url: str, sqlite_url: str, configure: Callable[..., None]) -> redis_lib.Redis:
    configure(sqlite_url, redis_url)
    return redis_lib.Redis.from_url(redis_url)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def test_every_pushed_entry_gets_its_own_stable_id_and_old_entries_their_index(client: redis_lib.Redis):
    client.rpush(KEY, json.dumps({"message": {"commands": []}, "error": "old", "attempts": 1, "at": 1.0}))
    first = push_dead_letter(client, KEY, {"commands": [PERSONAL]}, "boom", 3, task_id="task-1")
    second = push_dead_letter(client, KEY, {"commands": []}, "boom", 1)

    entries = list_dead_letters(client, KEY)

    assert [entry["id"] for entry in entries] == ["0", first, second] and first != second
    assert entries[1]["task_id"] == "task-1"


def test_list_shows_time_and_task_and_its_json_masks_mobiles_and_emails(client: redis_lib.Redis):
    entry_id = push_dead_letter(client, KEY, {"commands": [PERSONAL]}, "ann@example.com refused", 2, task_id="t-9")

    table = _cli("dead-letters", "list")
    listed = _cli("dead-letters", "list", "--json")

    assert entry_id in table.output and "t-9" in table.output and time.strftime("%Y-") in table.output
    assert "ann@example.com" not in table.output
    entry = json.loads(listed.output)[0]
    customer = entry["message"]["commands"][0]["customer"]
    assert customer["user_id"] == 5 and customer["mobile"] == "**********67"
    assert "ann@example.com" not in listed.output and "Ann" not in listed.output
    assert "41791234567" not in listed.output and entry["error"] == "***"


def test_show_prints_one_entry_masked_and_in_clear_only_when_asked(client: redis_lib.Redis):
    push_dead_letter(client, KEY, {"commands": []}, "other", 1)
    entry_id = push_dead_letter(client, KEY, {"commands": [PERSONAL]}, "boom", 2)

    masked = _cli("dead-letters", "show", entry_id)
    clear = _cli("dead-letters", "show", entry_id, "--unmasked")
    missing = _cli("dead-letters", "show", "no-such-id")

    assert json.loads(masked.output)["id"] == entry_id and "ann@example.com" not in masked.output
    assert json.loads(clear.output)["message"]["commands"][0] == PERSONAL
    assert missing.exit_code == 1 and "no dead letter with id no-such-id" in missing.output


def test_drop_removes_that_entry_only_and_health_counts_the_rest(client: redis_lib.Redis):
    keep = push_dead_letter(client, KEY, {"commands": []}, "keep", 1)
    gone = push_dead_letter(client, KEY, {"commands": []}, "gone", 1)

    dropped = _cli("dead-letters", "drop", gone)
    again = _cli("dead-letters", "drop", gone)

    assert dropped.exit_code == 0 and again.exit_code == 1
    assert [entry["id"] for entry in list_dead_letters(client, KEY)] == [keep]


def test_purge_removes_the_entries_older_than_the_duration(client: redis_lib.Redis):
    now = time.time()
    for age in (10 * 86400, 8 * 86400, 3600):
        client.rpush(KEY, json.dumps({"id": f"age-{age}", "message": None, "error": "x", "attempts": 1,
                                      "at": now - age}))

    result = _cli("dead-letters", "purge", "--older-than", "7d")
    bad = _cli("dead-letters", "purge", "--older-than", "7 days")

    assert "purged 2 dead letters" in result.output
    assert [entry["id"] for entry in list_dead_letters(client, KEY)] == ["age-3600"]
    assert bad.exit_code == 2


def test_purge_leaves_entries_pushed_meanwhile_and_unreadable_ones(client: redis_lib.Redis):
    client.rpush(KEY, b"not json")
    push_dead_letter(client, KEY, {"commands": []}, "new", 1)

    assert purge_dead_letters(client, KEY, 0, now=time.time() - 60) == 0
    assert len(list_dead_letters(client, KEY)) == 2
    assert purge_dead_letters(client, KEY, 0, now=time.time() + 1) == 1  # the unreadable one has no time


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800), ("12h", 43200), ("30m", 1800), ("90s", 90),
                                               ("1.5h", 5400), ("2w", 1209600)])
def test_durations_read_as_seconds(text: str, seconds: float):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7", "d", "-1d", "sevend", "7y", "nand"])
def test_what_is_not_a_duration_is_refused(text: str):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_beats_purge_task_drops_the_dead_letters_older_than_the_retention(
        client: redis_lib.Redis, sqlite_url: str, redis_url: str, configure: Callable[..., None]):
    from customer_updates.store.migrate import upgrade
    from customer_updates.worker import tasks

    configure(sqlite_url, redis_url, dead_letter_retention_days="2")
    upgrade(sqlite_url)
    client.rpush(KEY, json.dumps({"id": "old", "message": None, "error": "x", "attempts": 1,
                                  "at": time.time() - 3 * 86400}))
    push_dead_letter(client, KEY, {"commands": []}, "new", 1)

    tasks.purge_old_records()

    assert [entry["error"] for entry in list_dead_letters(client, KEY)] == ["new"]
