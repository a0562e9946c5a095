"""A command that keeps failing transiently: bounded retries with backoff, then a dead letter with the raw
message, the error and the attempt count, and a failed result (9001); `dead-letters replay` applies it
once the cause is gone, and replaying again changes nothing."""

from __future__ import annotations

import json
import time

import pytest
import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from customer_updates.messaging.results import read_result
from customer_updates.models import tables as t
from customer_updates.models.orgfile import OrgFile
from customer_updates.services.imports import import_customers
from customer_updates.settings import Settings
from customer_updates.store.db import get_engine, session_scope
from customer_updates.store.orgs import load_org
from tests.conftest import run_cli
from tests.system.harness import (
    WORKER_SETTINGS,
    build_workload,
    check_outcome,
    count_log,
    dead_letters,
    log_entries,
    mobile_of,
    prepare_database,
    publish,
    wait_until_done,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

BROKEN_ORG = 3
MAX_RETRIES = 3
BACKOFF_MAX = 0.5

# Honest transient failure: PostgreSQL itself answers "serialization failure" (SQLSTATE 40001) to every
# write of the broken org's customers, exactly what a real conflict storm looks like to the worker.
BREAK = """
CREATE FUNCTION cu_refuse_writes() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER cu_refuse_writes BEFORE UPDATE ON customers FOR EACH ROW
WHEN (NEW.org_id = 3) EXECUTE FUNCTION cu_refuse_writes();
"""
REPAIR = "DROP TRIGGER cu_refuse_writes ON customers"


def _broken_org_commands(db_url: str, count: int) -> list[dict]:
    with session_scope(db_url) as session:
        load_org(session, OrgFile.model_validate({"orgs": [{"id": BROKEN_ORG, "name": "Broken"}]}).orgs[0])
    import_customers(sessionmaker(get_engine(db_url)),
                     [json.dumps({"org_id": BROKEN_ORG, "mobile": mobile_of(i), "firstname": "Seed"})
                      for i in range(5)])
    return [{"org_id": BROKEN_ORG, "request_id": f"broken-{i}", "issued_at": f"2024-02-01T00:00:{i:02d}",
             "customer": {"mobile": mobile_of(i % 5), "firstname": f"Fixed{i}"}} for i in range(count)]


def _wait(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_a_command_failing_until_its_retries_run_out_is_dead_lettered_and_replays_once(
        pg_url, redis_url, broker_url, start_worker, report):
    workload = build_workload(seed=7)
    prepare_database(pg_url, workload.customers)
    broken = _broken_org_commands(pg_url, 10)
    with session_scope(pg_url) as session:
        session.execute(text(BREAK))
    # Each broken command travels alone; good commands share messages with each other only.
    publish(redis_url, workload.messages() + [[c] for c in broken], broker_url)
    worker = start_worker(pg_url, redis_url, concurrency=2, beat=True, broker_url=broker_url,
                          **{**WORKER_SETTINGS, "max_retries": MAX_RETRIES, "retry_backoff_max": BACKOFF_MAX})

    wait_until_done(pg_url, redis_url, workload, broker_url=broker_url)
    _wait(lambda: len(dead_letters(redis_url)) >= len(broken))

    letters = dead_letters(redis_url)
    assert len(letters) == len(broken)
    assert sorted(e["message"]["commands"][0]["request_id"] for e in letters) == sorted(
        c["request_id"] for c in broken)
    for entry in letters:
        assert entry["attempts"] == MAX_RETRIES + 1
        assert "SerializationFailure" in entry["error"] or "could not serialize" in entry["error"]
    client = redis.Redis.from_url(redis_url)
    for command in broken:
        result = read_result(client, BROKEN_ORG, command["request_id"])
        assert result is not None and result["item_status"]["code"] == "9001"
    # One structured line per retry and per dead letter, bounded delays, no personal data.
    retry_lines = log_entries(worker.log_path, "retrying message")
    assert len(retry_lines) >= MAX_RETRIES * len(broken)
    assert all(0 <= line["delay_s"] <= BACKOFF_MAX and 1 <= line["attempt"] <= MAX_RETRIES for line in retry_lines)
    assert count_log(worker.log_path, "dead letter") == len(broken)
    log = worker.log_path.read_text()
    assert "Fixed" not in log and mobile_of(1) not in log
    check_outcome(pg_url, redis_url, workload, broker_url=broker_url)

    # The cause goes away; the operator replays. Then replays again, and replays a saved copy.
    with session_scope(pg_url) as session:
        session.execute(text(REPAIR))
    replayed = run_cli(["dead-letters", "replay"], pg_url, redis_url, broker_url=broker_url)
    assert replayed.returncode == 0, replayed.stderr
    _wait(lambda: _records(pg_url) == len(broken))
    results = [read_result(client, BROKEN_ORG, c["request_id"]) for c in broken]
    assert all(r is not None and r["item_status"]["code"] == "1000" for r in results)
    again = run_cli(["dead-letters", "replay"], pg_url, redis_url, broker_url=broker_url)
    assert again.returncode == 0 and "replayed 0" in again.stderr
    key = Settings().dead_letter_key
    client.rpush(key, *[json.dumps(e) for e in letters])
    assert run_cli(["dead-letters", "replay"], pg_url, redis_url, broker_url=broker_url).returncode == 0
    wait_until_done(pg_url, redis_url, workload, broker_url=broker_url)
    assert client.llen(key) == 0
    with session_scope(pg_url) as session:
        audit = session.execute(select(t.AuditEntry.request_id, func.count())
                                .where(t.AuditEntry.org_id == BROKEN_ORG)
                                .group_by(t.AuditEntry.request_id)).all()
        names = dict(session.execute(select(t.Customer.mobile, t.Customer.firstname)
                                     .where(t.Customer.org_id == BROKEN_ORG)).all())
    assert _records(pg_url) == len(broken)
    # Each customer got its changes once, in issued_at order: the last command per customer wins.
    assert names == {mobile_of(i): f"Fixed{i + 5}" for i in range(5)}
    assert audit and all(n == 1 for _, n in audit), audit
    client.close()
    report(commands=len(workload.commands) + len(broken), dead_letters=len(letters), retries_logged=len(retry_lines),
           attempts_each=MAX_RETRIES + 1)


def _records(db_url: str) -> int:
    with session_scope(db_url) as session:
        return int(session.scalar(select(func.count()).select_from(t.CommandRecord)
                                  .where(t.CommandRecord.org_id == BROKEN_ORG)) or 0)
