"""Commands naming a customer another transaction holds are set aside, not waited for, and applied
right after the batch commits, in their own transaction that waits for the customer."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.services.resources import Runtime
from customer_updates.services.worker_messages import Message, apply_messages
from customer_updates.settings import Settings
from customer_updates.store import customers as store
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import OrgCache
from tests.conftest import load_examples
from tests.integration.row_locks import held_customer

FREE, HELD = "919800000001", "919800000002"


def _command(customer: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
    return {"org_id": 1, "request_id": request_id or uuid.uuid4().hex, "issued_at": utcnow().isoformat(),
            "customer": customer}


def _user_id(url: str, mobile: str) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(t.Customer.user_id).where(t.Customer.mobile == mobile)) or 0)


def test_a_customer_another_transaction_holds_is_skipped_and_returned_as_its_lookup_keys(pg_url):
    load_examples(pg_url)
    free_id, held_id = _user_id(pg_url, FREE), _user_id(pg_url, HELD)
    with held_customer(pg_url, held_id), session_scope(pg_url) as session:
        states, busy = store.load_unlocked_customers(session, 1, set(), {"mobile": {FREE, HELD}})

    assert [s.user_id for s in states] == [free_id]
    assert ("user_id", held_id) in busy and ("mobile", HELD) in busy
    assert ("mobile", FREE) not in busy


def test_a_merged_victim_whose_survivor_is_held_counts_as_held(pg_url):
    load_examples(pg_url)
    victim_id, survivor_id = _user_id(pg_url, FREE), _user_id(pg_url, HELD)
    with session_scope(pg_url) as session:
        session.execute(update(t.Customer).where(t.Customer.user_id == victim_id)
                        .values(active=False, merged_into=survivor_id))
    with held_customer(pg_url, survivor_id), session_scope(pg_url) as session:
        states, busy = store.load_unlocked_customers(session, 1, set(), {"mobile": {FREE}})

    assert survivor_id not in {s.user_id for s in states}
    assert ("mobile", FREE) in busy and ("user_id", victim_id) in busy


def _batch_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int, int]]:
    return [(r.applied, r.conflict, r.deferred) for r in caplog.records  # type: ignore[attr-defined]
            if r.getMessage() == "batch"]


def test_the_set_aside_commands_are_applied_once_the_holder_commits(pg_url, redis_url, caplog):
    load_examples(pg_url)
    rt = Runtime(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url), OrgCache(30))
    free = _command({"mobile": FREE, "lastname": "Now"})
    held = _command({"mobile": HELD, "lastname": "After"})
    # The same request id again with another payload: it must stay second, a 409, not overtake the first.
    again = _command({"mobile": FREE, "lastname": "Overtaking"}, request_id=held["request_id"])
    requeued: list[Message] = []

    with caplog.at_level(logging.INFO, logger="customer_updates.worker"), \
            held_customer(pg_url, _user_id(pg_url, HELD)) as release:
        worker = threading.Thread(target=apply_messages, args=(rt, [Message([free, held, again])]),
                                  kwargs={"send_awards": lambda ids: None,
                                          "requeue": lambda msg, delay: requeued.append(msg)})
        worker.start()
        deadline = time.monotonic() + 30
        while _batch_lines(caplog) == [] and time.monotonic() < deadline:  # the first batch committed
            time.sleep(0.02)
        with session_scope(pg_url) as session:
            assert session.scalar(select(t.Customer.lastname).where(t.Customer.mobile == HELD)) != "After"
        release.set()
        worker.join(30)

    assert _batch_lines(caplog) == [(1, 0, 2), (1, 1, 0)]
    assert requeued == []
    with session_scope(pg_url) as session:
        names = {mobile: lastname for mobile, lastname in session.execute(
            select(t.Customer.mobile, t.Customer.lastname).where(t.Customer.mobile.in_([FREE, HELD])))}
        assert names == {FREE: "Now", HELD: "After"}
        assert session.scalar(select(t.RejectedCommand.request_id)) == held["request_id"]


def test_set_aside_commands_go_with_the_next_chunk_and_the_last_ones_wait(pg_url, redis_url, caplog):
    load_examples(pg_url)
    rt = Runtime(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, worker_batch_size=1), OrgCache(30))
    held = _command({"mobile": HELD, "lastname": "Last"})
    free = _command({"mobile": FREE, "lastname": "Second"})

    with caplog.at_level(logging.INFO, logger="customer_updates.worker"), \
            held_customer(pg_url, _user_id(pg_url, HELD)) as release:
        worker = threading.Thread(target=apply_messages, args=(rt, [Message([held]), Message([free])]),
                                  kwargs={"send_awards": lambda ids: None, "requeue": lambda msg, delay: None})
        worker.start()
        deadline = time.monotonic() + 30
        while len(_batch_lines(caplog)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        release.set()
        worker.join(30)

    # held: set aside, tried again with the next chunk (still held), then waited for on its own.
    assert [(r.commands, r.deferred) for r in caplog.records
            if r.getMessage() == "batch"] == [(0, 1), (1, 1), (1, 0)]
    with session_scope(pg_url) as session:
        assert session.scalar(select(t.Customer.lastname).where(t.Customer.mobile == HELD)) == "Last"
