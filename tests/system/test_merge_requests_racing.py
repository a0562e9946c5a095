"""Merge requests and unmerges race with updates of the same customers, on PostgreSQL, in two worker
processes (SPEC §4).

A pool of customer pairs (A with a mobile, B with an email; both members, both contacts, or one of each)
receives merge requests in either direction, unmerges of either, updates of names, and updates giving A
B's email (an automatic merge of a contact, a 91007 warning for a member). Whatever order the workers
reach them in: every command ends with a stored result, each identifier is on at most one active customer,
the org's points are the imported total plus the awards, no merge chain loops, every merge record agrees
with its victim, and nothing deadlocks.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text

from customer_updates.messaging.broker import producer_app
from customer_updates.messaging.sending import publish_many
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.rules.codes import Code
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import load_examples
from tests.system.harness import WORKER_SETTINGS, Workload, wait_until_done

PAIRS = int(os.environ.get("CU_RACING_PAIRS", "50"))
COMMANDS = int(os.environ.get("CU_RACING_COMMANDS", "1000"))
BOUND_SECONDS = 100
# A command's result may refuse it (a merge of a merged customer, an unmerge of nothing): never an error.
REFUSALS = {Code.MERGE_CUSTOMER_INACTIVE, Code.MERGE_SAME_CUSTOMER, Code.UNMERGE_NOT_MERGED,
            Code.UNMERGE_SURVIVOR_MERGED, Code.UNMERGE_POINTS_REDEEMED, Code.UNMERGE_IDENTIFIER_TAKEN,
            Code.CUSTOMER_NOT_FOUND}


def _seed_pairs(url: str, pairs: int) -> list[tuple[int, int, str, str]]:
    out = []
    with session_scope(url) as session:
        for i in range(pairs):
            kinds = (("LOYALTY", "LOYALTY"), ("NON_LOYALTY", "NON_LOYALTY"), ("LOYALTY", "NON_LOYALTY"))[i % 3]
            a = t.Customer(org_id=1, mobile=f"9172{i:08d}", type=kinds[0], loyalty_points=10, lifetime_points=10,
                           points_summaries=[], stamps={}, fired=[], active=True)
            b = t.Customer(org_id=1, email=f"race{i}@example.com", type=kinds[1], loyalty_points=7,
                           lifetime_points=7, points_summaries=[], stamps={}, fired=[], active=True)
            session.add_all([a, b])
            session.flush()
            out.append((a.user_id, b.user_id, a.mobile or "", b.email or ""))
    return out


def _commands(pairs: list[tuple[int, int, str, str]], count: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    commands = []
    for i in range(count):
        a_id, b_id, mobile, email = rng.choice(pairs)
        roll = rng.random()
        envelope: dict[str, Any] = {"org_id": 1, "request_id": f"race-{uuid.uuid4().hex}",
                                    "issued_at": utcnow().isoformat()}
        if roll < 0.3:
            survivor, victim = (a_id, b_id) if rng.random() < 0.5 else (b_id, a_id)
            envelope.update(kind="merge", customer={"survivor_id": survivor, "victim_id": victim})
        elif roll < 0.5:
            envelope.update(kind="unmerge", customer={"victim_id": rng.choice((a_id, b_id))})
        elif roll < 0.75:
            envelope["customer"] = {"mobile": mobile, "firstname": f"First{i}"}
        elif roll < 0.9:
            envelope["customer"] = {"id": b_id, "lastname": f"Last{i}"}
        else:
            envelope["customer"] = {"mobile": mobile, "email": email}
        commands.append(envelope)
    return commands


def _messages(commands: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Single commands and small groups, so that racing commands land in different workers' batches."""
    rng, messages, i = random.Random(3), [], 0
    while i < len(commands):
        size = rng.choice([1, 1, 2, 4])
        messages.append(commands[i:i + size])
        i += size
    return messages


def _chains_end_active(rows: dict[int, t.Customer]) -> bool:
    for row in rows.values():
        seen, current = {row.user_id}, row
        while not current.active:
            if current.merged_into is None or current.merged_into in seen:
                return False
            seen.add(current.merged_into)
            current = rows[current.merged_into]
    return True


@pytest.mark.system
def test_merge_requests_and_unmerges_racing_with_updates_end_consistent_without_deadlock(
        pg_url, redis_url, start_worker, report):
    load_examples(pg_url)
    pairs = _seed_pairs(pg_url, PAIRS)
    with session_scope(pg_url) as session:
        points_before = session.scalar(select(func.sum(t.Customer.loyalty_points)).where(
            t.Customer.org_id == 1, t.Customer.active)) or 0
        deadlocks_before = session.scalar(text(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")) or 0
    workers = [start_worker(pg_url, redis_url, concurrency=2, **WORKER_SETTINGS) for _ in range(2)]
    commands = _commands(pairs, COMMANDS)

    publish_many(_messages(commands), celery=producer_app(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url)))
    took = wait_until_done(pg_url, redis_url, Workload(1, len(pairs) * 2, commands), timeout=BOUND_SECONDS)

    with session_scope(pg_url) as session:
        records = {r.request_id: r.code for r in session.scalars(select(t.CommandRecord).where(
            t.CommandRecord.org_id == 1, t.CommandRecord.request_id.in_([c["request_id"] for c in commands])))}
        rows = {r.user_id: r for r in session.scalars(select(t.Customer).where(t.Customer.org_id == 1))}
        merges = list(session.scalars(select(t.Merge).where(t.Merge.org_id == 1).order_by(t.Merge.id)))
        awarded = session.scalar(select(func.sum(t.PointsLedger.points)).where(t.PointsLedger.org_id == 1)) or 0
        deadlocks = (session.scalar(text(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")) or 0) - deadlocks_before
    codes = sorted(set(records.values()))
    report(commands=len(commands), seconds=round(took, 1), merges=len(merges),
           undone=sum(1 for m in merges if m.undone_at), codes=codes)

    assert len(records) == len(commands), "every command ends with a stored result"
    assert set(codes) <= {int(Code.SUCCESS), *map(int, REFUSALS)}, codes
    for name in ("mobile", "email", "external_id"):
        held = [getattr(r, name) for r in rows.values() if r.active and getattr(r, name)]
        assert len(held) == len(set(held)), f"an active {name} is held twice"
    assert sum(r.loyalty_points for r in rows.values() if r.active) == points_before + awarded
    assert _chains_end_active(rows), "a merge chain loops or ends in an inactive customer"
    latest: dict[int, t.Merge] = {}
    for record in merges:
        latest[record.victim_id] = record
    for record in merges:
        victim = rows[record.victim_id]
        if record.undone_at is None:
            assert record is latest[record.victim_id], "only a victim's newest merge may be in force"
            assert not victim.active and victim.merged_into == record.survivor_id
        elif record is latest[record.victim_id]:
            assert victim.active and victim.merged_into is None
    assert deadlocks == 0
    for worker in workers:
        assert "deadlock detected" not in worker.log_path.read_text(errors="replace")
