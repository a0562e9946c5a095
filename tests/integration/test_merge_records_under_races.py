"""Merge records stay in step with their victims when merges and unmerges of one victim meet (SPEC §4):
in one batch, and in two transactions of which one waits for the other's locks (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import select

from customer_updates.models import tables as t
from customer_updates.services.apply import BatchApplier, StoredResult
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import OrgCache
from tests.conftest import load_examples
from tests.integration.test_merge_properties import ask, fresh_database, import_customer


def _merges(url: str, victim_id: int) -> list[t.Merge]:
    with session_scope(url) as session:
        return list(session.scalars(select(t.Merge).where(t.Merge.victim_id == victim_id).order_by(t.Merge.id)))


def _codes(results: list[StoredResult]) -> list[str]:
    return [r.result["item_status"]["code"] for r in results]


def test_a_victim_merged_unmerged_and_merged_again_in_one_batch_keeps_both_records(tmp_path: Path) -> None:
    url = fresh_database(tmp_path)
    a = import_customer(url, "919800020001", None, 10)
    b = import_customer(url, "919800020002", None, 7)
    c = import_customer(url, "919800020003", None, 3)
    with session_scope(url) as session:
        outcome = BatchApplier(session, OrgCache(ttl=0)).run([
            ask("merge", survivor_id=a, victim_id=b), ask("unmerge", victim_id=b),
            ask("merge", survivor_id=c, victim_id=b)])
    assert _codes(outcome.results) == ["1000", "1000", "1000"]
    first, second = _merges(url, b)
    assert (first.survivor_id, first.undone_at is not None) == (a, True)
    assert (second.survivor_id, second.undone_at) == (c, None)


def test_an_unmerge_waiting_for_a_lock_reads_the_merge_record_the_holder_committed(pg_url: str) -> None:
    """The holder undoes the victim's merge and merges it into a third customer; the unmerge that waited
    must undo that newer merge, not the one it could have read before the lock."""
    load_examples(pg_url)
    a = import_customer(pg_url, "919800030001", None, 10)
    b = import_customer(pg_url, "919800030002", None, 7)
    c = import_customer(pg_url, "919800030003", None, 3)
    with session_scope(pg_url) as session:
        BatchApplier(session, OrgCache(ttl=0)).run([ask("merge", survivor_id=a, victim_id=b)])

    results: list[StoredResult] = []
    holder_locked = threading.Event()

    def waiting_unmerge() -> None:
        holder_locked.wait(10)
        with session_scope(pg_url) as session:
            results.extend(BatchApplier(session, OrgCache(ttl=0), wait_for_locks=True)
                           .run([ask("unmerge", victim_id=b)]).results)

    waiter = threading.Thread(target=waiting_unmerge)
    waiter.start()
    with session_scope(pg_url) as session:
        applier = BatchApplier(session, OrgCache(ttl=0), wait_for_locks=True)
        applier.run([ask("unmerge", victim_id=b), ask("merge", survivor_id=c, victim_id=b)])
        holder_locked.set()
        time.sleep(1.0)  # the waiter reads, then blocks on the rows this transaction holds
    waiter.join(30)

    assert _codes(results) == ["1000"]
    records = _merges(pg_url, b)
    assert [(m.survivor_id, m.undone_at is not None) for m in records] == [(a, True), (c, True)]
    with session_scope(pg_url) as session:
        victim = session.get(t.Customer, b)
        assert victim is not None and victim.active and victim.merged_into is None
