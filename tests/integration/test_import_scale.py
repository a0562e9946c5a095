"""An import of several chunks keeps the import's rules on both databases: existing customers and repeats are
skipped, an identifier held by another active customer is refused, a merged customer's identifier is free
again, explicit user_ids are kept and the ids given out afterwards do not collide with them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from customer_updates.models import tables as t
from customer_updates.services.imports import import_customers
from customer_updates.store.db import get_engine, session_scope
from customer_updates.store.orgs import load_org, read_org_file
from tests.conftest import EXAMPLES

CUSTOMERS = 5000
CONFLICT = "an identifier already belongs to another customer"


def _customer(i: int) -> dict[str, Any]:
    line: dict[str, Any] = {"org_id": 1, "mobile": f"9191{i:08d}", "email": f"s{i}@scale.example",
                            "firstname": f"F{i}", "loyalty_points": i, "lifetime_points": 2 * i}
    if i % 7 == 0:
        line["external_id"] = f"EXT-{i}"
    if i % 500 == 1:  # far apart: the lines between them take the sequence's next values
        line["user_id"] = 10_000_000 + 1000 * i
    return line


def _import(url: str, lines: list[dict[str, Any]]) -> Any:
    return import_customers(sessionmaker(get_engine(url)), [json.dumps(line) for line in lines])


def _existing(url: str) -> tuple[int, int]:
    """Two customers loaded before the file: one active, and one merged into it. Their user_ids."""
    with session_scope(url) as session:
        for org in read_org_file(EXAMPLES / "org.yaml").orgs:
            load_org(session, org)
    _import(url, [{"org_id": 1, "mobile": "919300000001", "email": "p1@scale.example", "firstname": "Pre"},
                  {"org_id": 1, "mobile": "919300000002", "email": "victim@scale.example", "firstname": "Victim"}])
    with session_scope(url) as session:
        ids = {name: user_id for name, user_id in session.execute(select(t.Customer.firstname, t.Customer.user_id))}
        session.execute(update(t.Customer).where(t.Customer.user_id == ids["Victim"])
                        .values(active=False, merged_into=ids["Pre"]))
    return ids["Pre"], ids["Victim"]


def _file(pre_id: int) -> tuple[list[dict[str, Any]], set[int], int]:
    """The lines, the numbers of the lines to refuse, and how many lines are to be skipped as present."""
    # A small explicit id first: rows without one, later in the same chunk, must not be given it.
    lines: list[dict[str, Any]] = [{"org_id": 1, "mobile": "919300000005", "user_id": 40, "firstname": "Forty"}]
    refused: set[int] = set()
    skipped = 0
    for i in range(CUSTOMERS):
        lines.append(_customer(i))
        if i % 100 == 99:  # a repeat in the same chunk or the one before
            lines.append(_customer(i - 50))
            skipped += 1
        if i % 1000 == 999:  # a repeat of a customer of an earlier chunk
            lines.append(_customer(i - 900))
            skipped += 1
        if i % 250 == 3:  # a new mobile with another customer's email
            lines.append({"org_id": 1, "mobile": f"9192{i:08d}", "email": f"s{i - 1}@scale.example"})
            refused.add(len(lines))
    lines += [{"org_id": 1, "mobile": "919300000001", "email": "p1@scale.example", "firstname": "Pre"},
              {"org_id": 1, "mobile": "919300000009", "email": "p1@scale.example"},
              {"org_id": 1, "mobile": "919300000003", "email": "victim@scale.example", "firstname": "Reuser"},
              {"org_id": 1, "mobile": "919300000004", "user_id": pre_id}]
    refused.add(len(lines) - 2)
    return lines, refused, skipped + 2


def test_a_file_of_several_chunks_loads_each_new_customer_once_and_refuses_conflicts(db_url):
    pre_id, victim_id = _existing(db_url)
    lines, refused, skipped = _file(pre_id)

    report = _import(db_url, lines)

    assert sorted(report.errors) == sorted((number, CONFLICT) for number in refused)
    assert (report.loaded, report.skipped) == (CUSTOMERS + 2, skipped)
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(t.Customer).where(t.Customer.active)) \
            == CUSTOMERS + 3
        rows = {row.firstname: row for row in session.scalars(select(t.Customer))}
        victim = session.get(t.Customer, victim_id)
        assert victim is not None and victim.email == "victim@scale.example"  # kept for history
    assert rows["Forty"].user_id == 40
    assert rows["Reuser"].email == "victim@scale.example" and rows["Reuser"].active
    for i in (0, 1, 7, 999, 1000, 2501, CUSTOMERS - 1):
        row = rows[f"F{i}"]
        assert (row.mobile, row.email, row.loyalty_points, row.lifetime_points) == \
            (f"9191{i:08d}", f"s{i}@scale.example", i, 2 * i)
        assert row.external_id == (f"EXT-{i}" if i % 7 == 0 else None)
        if i % 500 == 1:
            assert row.user_id == 10_000_000 + 1000 * i


def test_importing_the_same_file_again_loads_nothing_and_refuses_the_same_lines(db_url):
    pre_id, _ = _existing(db_url)
    lines, refused, _ = _file(pre_id)
    first = _import(db_url, lines)

    again = _import(db_url, lines)

    assert again.loaded == 0
    assert sorted(number for number, _ in again.errors) == sorted(refused)
    assert again.skipped == len(lines) - len(refused) == first.loaded + first.skipped
    # The sequence is past every explicit id: a customer without one still loads after them.
    after = _import(db_url, [{"org_id": 1, "mobile": "919300000077", "firstname": "After"}])
    assert (after.loaded, after.errors) == (1, [])
