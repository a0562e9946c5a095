"""A failing command prints one line on stderr and exits non-zero; `--debug` shows the traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_updates.ops.processes import free_port
from tests.conftest import run_cli

UNREACHABLE_REDIS = f"redis://127.0.0.1:{free_port()}/0"


def assert_one_line_error(done, *expected: str) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.stderr + done.stdout
    for text in expected:
        assert text in lines[0]
    return lines[0]


def test_a_database_file_in_a_missing_folder_is_one_line(tmp_path: Path):
    done = run_cli(["customer", "get", "--org", "1", "--mobile", "919800000001"],
                   f"sqlite:///{tmp_path / 'missing' / 'customers.db'}", UNREACHABLE_REDIS, timeout=60)

    assert_one_line_error(done, "database is not reachable", "DATABASE_URL")


def test_a_database_without_the_schema_says_to_run_the_migrations(tmp_path: Path):
    done = run_cli(["merges", "list", "--org", "1"], f"sqlite:///{tmp_path / 'empty.db'}", UNREACHABLE_REDIS,
                   timeout=60)

    assert_one_line_error(done, "no schema", "customer-updates db upgrade")


def test_an_unreachable_database_never_shows_its_password():
    url = f"postgresql+psycopg://owner:s3cret-pw@127.0.0.1:{free_port()}/customers"
    done = run_cli(["merges", "list", "--org", "1"], url, UNREACHABLE_REDIS, timeout=60)

    line = assert_one_line_error(done, "database is not reachable")
    assert "s3cret" not in line


def test_an_unreachable_redis_is_one_line(tmp_path: Path):
    done = run_cli(["dead-letters", "list"], f"sqlite:///{tmp_path / 'x.db'}", UNREACHABLE_REDIS, timeout=60)

    assert_one_line_error(done, "Redis is not reachable", "REDIS_URL")


def test_a_file_that_is_not_text_is_one_line(tmp_path: Path):
    body = tmp_path / "body.json"
    body.write_bytes(b"\xff\xfe{\"root\": 1}")

    done = run_cli(["enqueue", str(body), "--org", "1"], f"sqlite:///{tmp_path / 'x.db'}", UNREACHABLE_REDIS,
                   timeout=60)

    assert_one_line_error(done, "not UTF-8")


@pytest.mark.parametrize("org", ["abc", "-"])
def test_a_bad_org_id_is_refused_without_a_traceback(tmp_path: Path, org: str):
    done = run_cli(["merges", "list", "--org", org], f"sqlite:///{tmp_path / 'x.db'}", UNREACHABLE_REDIS,
                   timeout=60)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"'{org}' is not a valid integer" in done.stderr


def test_debug_shows_the_traceback(tmp_path: Path):
    done = run_cli(["--debug", "merges", "list", "--org", "1"], f"sqlite:///{tmp_path / 'empty.db'}",
                   UNREACHABLE_REDIS, timeout=60)

    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "no such table" in done.stderr
