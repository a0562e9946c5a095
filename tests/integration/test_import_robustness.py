"""`customers import` reports each bad line by number with its reason and loads every good line, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from customer_updates.models import tables as t
from customer_updates.services.imports import import_customers
from customer_updates.store.db import get_engine, session_scope
from customer_updates.store.orgs import load_org, read_org_file
from tests.conftest import EXAMPLES, run_cli


def _good(i: int) -> bytes:
    return json.dumps({"org_id": 1, "mobile": f"9198765{i:05d}", "firstname": f"Good{i}",
                       "loyalty_points": 2**63 - 1 if i == 0 else i}).encode()


# Line content -> the start of the reason the import must give for it.
BAD = {
    b'{"org_id": 1, "mobile": "919700000001", "firstname": "Nul\\u0000Name"}': "contains a NUL character",
    b'{"org_id": 1, "mobile": "919700000002", "firstname": "raw\x00byte"}': "contains a NUL byte",
    b'{"org_id": 1, "mobile": "919700000003", "loyalty_points": 9223372036854775808}':
        "loyalty_points: Input should be less than or equal to 9223372036854775807",
    b'{"org_id": 1, "mobile": "919700000004", "user_id": 99999999999999999999999}':
        "user_id: Input should be less than or equal to 9223372036854775807",
    b'{"org_id": 1, "mobile": "919700000005", "firstname": "caf\xe9"}': "not UTF-8 (byte 58 of the line)",
    b'{"org_id": 1, "mobile": "919700000006", "lastname": "\\ud800"}': "contains an unpaired surrogate",
    b'{"org_id": 1, "mobile": "919700000007", "lifetime_purchases": 1e400}': "lifetime_purchases: ",
    b'{"org_id": 99999999999, "mobile": "919700000008"}': "org_id: Input should be less than or equal to",
    b'{"org_id": 1, "mobile": "919700000009"': "not JSON: ",
    b"[" * 100_000: "not JSON: ",
    # user_id 424242 is a customer of org 2 (the file's first line): only the database's key can tell.
    b'{"org_id": 1, "mobile": "919700000011", "user_id": 424242}': "refused by the database: ",
    b'{"org_id": 1, "mobile": "919700000010", "slab_number": 4294967296}': "slab_number: ",
}


def _mixed_file(path: Path) -> dict[int, str]:
    """Good lines around and between every kind of bad line; returns the bad lines' numbers and reasons."""
    lines = [json.dumps({"org_id": 2, "email": "other@example.com", "user_id": 424242,
                         "firstname": "OtherOrg"}).encode()]
    expected: dict[int, str] = {}
    good = 0
    for content, reason in BAD.items():
        lines += [_good(good), _good(good + 1)]
        good += 2
        lines.append(content)
        expected[len(lines)] = reason
    lines.append(_good(good))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


def _load_org(url: str) -> None:
    with session_scope(url) as session:
        for org in read_org_file(EXAMPLES / "org.yaml").orgs:
            load_org(session, org)


def test_every_good_line_loads_and_each_bad_line_is_reported_by_number(db_url, tmp_path):
    _load_org(db_url)
    path = tmp_path / "mixed.ndjson"
    expected = _mixed_file(path)

    with path.open("rb") as lines:
        # Chunks of 3 lines: a bad line in an early chunk must not stop any later one.
        report = import_customers(sessionmaker(get_engine(db_url)), lines, chunk_size=3)

    assert sorted(number for number, _ in report.errors) == sorted(expected)
    for number, reason in report.errors:
        assert reason.startswith(expected[number]), (number, reason)
    good = 2 * len(BAD) + 1
    assert report.loaded == good + 1
    with session_scope(db_url) as session:
        names = set(session.scalars(select(t.Customer.firstname)))
        biggest = session.scalar(select(func.max(t.Customer.loyalty_points)))
    assert names == {"OtherOrg", *(f"Good{i}" for i in range(good))}
    assert biggest == 2**63 - 1


def test_the_command_reports_bad_lines_without_a_traceback(db_url, redis_url, tmp_path):
    _load_org(db_url)
    path = tmp_path / "mixed.ndjson"
    expected = _mixed_file(path)

    done = run_cli(["customers", "import", str(path)], db_url, redis_url)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for number in expected:
        assert f"line {number}: " in done.stderr
    assert f"loaded {2 * len(BAD) + 2}, already present 0, bad lines {len(BAD)}" in done.stderr
