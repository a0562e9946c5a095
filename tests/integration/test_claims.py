"""Claims on request ids keep a producer's retry of a request in flight away from a second worker, and are
dropped after a commit whether or not Redis took the results."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from sqlalchemy import func, select

from customer_updates.messaging import claims
from customer_updates.messaging.results import read_result
from customer_updates.models import tables as t
from customer_updates.models.commands import utcnow
from customer_updates.services import worker_messages
from customer_updates.services.resources import Runtime
from customer_updates.services.worker_messages import Message, apply_messages
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from customer_updates.store.orgs import OrgCache
from tests.conftest import load_examples


def _command(mobile: str, lastname: str) -> dict[str, Any]:
    return {"org_id": 1, "request_id": uuid.uuid4().hex, "issued_at": utcnow().isoformat(),
            "customer": {"mobile": mobile, "lastname": lastname}}


def test_a_claimed_request_id_is_held_by_its_first_claimer_until_released(redis_url):
    client = redis.Redis.from_url(redis_url)
    first, busy = claims.take(client, [(1, "a"), (1, "b"), (1, "a")], seconds=10)
    assert first == {(1, "a"), (1, "b")} and busy == set()

    second, busy = claims.take(client, [(1, "b"), (2, "b")], seconds=10)
    assert second == {(2, "b")} and busy == {(1, "b")}
    assert 0 < client.pttl(claims.claim_key(1, "b")) <= 10_000

    claims.release(client, first)
    third, busy = claims.take(client, [(1, "b")], seconds=10)
    assert third == {(1, "b")} and busy == set()


def test_commands_another_worker_is_applying_are_deferred_with_their_attempt_and_the_rest_applied(
        pg_url, redis_url):
    load_examples(pg_url)
    rt = Runtime(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url), OrgCache(30))
    free = _command("919800000001", "Applied")
    held = _command("919800000002", "Deferred")
    claims.take(rt.redis, [(1, held["request_id"])], seconds=10)  # as a concurrent worker would
    requeued: list[tuple[Message, float]] = []

    apply_messages(rt, [Message([free, held], attempt=2)], send_awards=lambda ids: None,
                   requeue=lambda msg, delay: requeued.append((msg, delay)))

    assert [(m.commands, m.attempt) for m, _ in requeued] == [([held], 2)]  # a deferral is not a retry
    assert 0 < requeued[0][1] <= 1
    with session_scope(pg_url) as session:
        recorded = set(session.scalars(select(t.CommandRecord.request_id)))
        assert recorded == {free["request_id"]}
        assert session.scalar(select(func.count()).select_from(t.Customer)
                              .where(t.Customer.lastname == "Deferred")) == 0
    # Its own claims are gone after commit; the other worker's stays until that worker releases it.
    assert not rt.redis.exists(claims.claim_key(1, free["request_id"]))
    assert rt.redis.exists(claims.claim_key(1, held["request_id"]))

    claims.release(rt.redis, [(1, held["request_id"])])
    apply_messages(rt, [requeued[0][0]], send_awards=lambda ids: None,
                   requeue=lambda msg, delay: requeued.append((msg, delay)))
    with session_scope(pg_url) as session:
        assert session.scalar(select(func.count()).select_from(t.CommandRecord)) == 2


def test_without_claims_configured_every_command_is_applied_at_once(pg_url, redis_url):
    load_examples(pg_url)
    rt = Runtime(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, worker_claim_seconds=0), OrgCache(30))
    held = _command("919800000002", "Anyway")
    claims.take(rt.redis, [(1, held["request_id"])], seconds=10)

    apply_messages(rt, [Message([held])], send_awards=lambda ids: None,
                   requeue=lambda msg, delay: (_ for _ in ()).throw(AssertionError("requeued")))

    with session_scope(pg_url) as session:
        assert session.scalar(select(func.count()).select_from(t.CommandRecord)) == 1


def test_a_chunk_whose_results_redis_refused_after_commit_is_requeued_with_its_claims_dropped(
        pg_url, redis_url, monkeypatch, caplog):
    load_examples(pg_url)
    rt = Runtime(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url), OrgCache(30))
    command = _command("919800000001", "Committed")
    requeued: list[tuple[Message, float]] = []

    def refused(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Redis went away after the commit")

    monkeypatch.setattr(worker_messages, "publish_batch", refused)
    with caplog.at_level("WARNING", logger="customer_updates.worker"):
        apply_messages(rt, [Message([command], attempt=1)], send_awards=lambda ids: None,
                       requeue=lambda msg, delay: requeued.append((msg, delay)))

    assert [(m.commands, m.attempt) for m, _ in requeued] == [([command], 1)]
    [line] = [r for r in caplog.records if r.getMessage() == "results not published; message requeued"]
    assert getattr(line, "commands", None) == 1
    # Committed, and its claim dropped after all, so that the requeued copy is not deferred behind it.
    assert not rt.redis.exists(claims.claim_key(1, command["request_id"]))
    assert read_result(rt.redis, 1, command["request_id"]) is None

    monkeypatch.undo()
    apply_messages(rt, [requeued[0][0]], send_awards=lambda ids: None,
                   requeue=lambda msg, delay: requeued.append((msg, delay)))
    assert len(requeued) == 1  # the second delivery is answered from the stored record, not deferred
    stored = read_result(rt.redis, 1, command["request_id"])
    assert stored is not None and stored["item_status"]["code"] == "1000"
    with session_scope(pg_url) as session:
        assert session.scalar(select(func.count()).select_from(t.CommandRecord)) == 1
