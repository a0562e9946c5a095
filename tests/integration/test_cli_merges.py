"""`merge`, `unmerge` and `customer history` from the command line, against a live worker (SPEC §4, §8)."""

from __future__ import annotations

import json

from tests.conftest import load_examples, run_cli

# The examples: Asha (user 1, a member, 480 points) and Chen (user 3, a member, 120 points).
ASHA, CHEN = "1", "3"


def test_merge_unmerge_and_history_from_the_command_line(pg_url, redis_url, broker_url, start_worker):
    load_examples(pg_url)
    start_worker(pg_url, redis_url, broker_url=broker_url)

    merged = run_cli(["merge", "--org", "1", "--survivor-id", ASHA, "--victim-id", CHEN, "--wait", "60", "--json"],
                     pg_url, redis_url, broker_url=broker_url)
    again = run_cli(["merge", "--org", "1", "--survivor-id", ASHA, "--victim-id", CHEN, "--wait", "60", "--json"],
                    pg_url, redis_url, broker_url=broker_url)
    unmerged = run_cli(["unmerge", "--org", "1", "--victim-id", CHEN, "--wait", "60", "--json"], pg_url, redis_url,
                       broker_url=broker_url)
    history = run_cli(["customer", "history", "--org", "1", "--id", ASHA, "--json"], pg_url, redis_url)
    page = run_cli(["customer", "history", "--org", "1", "--id", ASHA, "--limit", "1"], pg_url, redis_url)

    assert merged.returncode == 0, merged.stderr
    survivor = json.loads(merged.stdout)
    assert (survivor["user_id"], survivor["loyalty_points"]) == (1, 600)
    # A refused command exits 1 and prints its code: Chen is no longer active.
    assert again.returncode == 1
    assert json.loads(again.stdout)["item_status"]["code"] == "91201"
    assert unmerged.returncode == 0, unmerged.stderr
    assert (json.loads(unmerged.stdout)["user_id"], json.loads(unmerged.stdout)["loyalty_points"]) == (3, 120)
    kinds = [e["kind"] for e in json.loads(history.stdout)["entries"]]
    assert kinds[0] == "unmerge" and "merge" in kinds
    assert page.returncode == 0 and "more: --before" in page.stderr + page.stdout
