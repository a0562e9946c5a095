"""Side effects as follow-on tasks (SPEC §5): awards, tier upgrades and events, through a real worker."""

from __future__ import annotations

import json

import redis as redis_lib
from sqlalchemy import func, select

from customer_updates import Producer
from customer_updates.models import tables as t
from customer_updates.settings import Settings
from customer_updates.store.db import session_scope
from tests.conftest import run_cli, wait_for_follow_on_work

STREAM = "customer_updates.events"


def _producer(db_url: str, redis_url: str, broker_url: str = "") -> Producer:
    return Producer(Settings(DATABASE_URL=db_url, REDIS_URL=redis_url, broker_url=broker_url))


def test_a_profile_completed_in_two_updates_is_rewarded_once_with_a_tier_upgrade(loaded_db, redis_url, broker_url,
                                                                                 start_worker):
    start_worker(loaded_db, redis_url, broker_url=broker_url)
    producer = _producer(loaded_db, redis_url, broker_url)
    # Asha (480 points, Bronze) lacks lastname and dob; the completion bonus (100) crosses Silver (500).
    first = producer.get_result(1, producer.enqueue_update(1, {"mobile": "919800000001", "lastname": "Rao"}),
                                timeout=60)
    assert first is not None and first["side_effects"]["effect"] == []
    second = producer.get_result(1, producer.enqueue_update(1, {
        "mobile": "919800000001", "extended_fields": {"field": [{"name": "dob", "value": "1990-04-12"}]}}),
        timeout=60)
    assert second is not None
    assert second["side_effects"]["effect"] == [
        {"type": "points", "awarded_points": 100, "total_points": 580, "rule": "profile_completion"},
        {"type": "slab", "previous_slab_name": "Bronze", "previous_slab_number": 1,
         "upgraded_slab_name": "Silver", "upgraded_slab_number": 2},
    ]
    # The same completing update again (a new request): nothing fires twice.
    third = producer.get_result(1, producer.enqueue_update(1, {
        "mobile": "919800000001", "extended_fields": {"field": [{"name": "dob", "value": "1990-04-13"}]}}),
        timeout=60)
    assert third is not None and third["side_effects"]["effect"] == []

    wait_for_follow_on_work(loaded_db)
    got = run_cli(["customer", "get", "--org", "1", "--mobile", "919800000001", "--json"], loaded_db, redis_url)
    item = json.loads(got.stdout)
    assert (item["loyalty_points"], item["lifetime_points"], item["current_slab"]) == (580, 580, "Silver")
    summary = item["points_summaries"]["points_summary"][0]
    assert (summary["loyaltyPoints"], summary["currentSlab"], summary["nextSlab"]) == ("580", "Silver", "Gold")
    assert item["tier_expiry_date"] != ""
    with session_scope(loaded_db) as session:
        ledger = session.scalars(select(t.PointsLedger)).all()
        audit = session.scalars(select(t.AuditEntry).where(t.AuditEntry.kind == "PointsAward")).all()
    assert [(e.points, e.reason) for e in ledger] == [(100, "profile_completion")]
    assert [(a.field, a.previous, a.new, a.user_id) for a in audit] == [
        ("profile_completion", "480", "580", ledger[0].user_id)]


def test_a_merged_survivor_gets_no_bonus_either_account_already_had(loaded_db, redis_url, start_worker):
    with session_scope(loaded_db) as session:  # Dana was rewarded for her email long ago
        dana = session.scalars(select(t.Customer).where(t.Customer.email == "dana@example.com")).one()
        dana.fired = ["first_fill:email"]
    start_worker(loaded_db, redis_url)
    producer = _producer(loaded_db, redis_url)
    # Ben's email goes from empty to set by merging Dana in: a first fill for Ben, but not for the person.
    merged = producer.get_result(1, producer.enqueue_update(1, {"mobile": "919800000002",
                                                               "email": "dana@example.com"}), timeout=60)
    assert merged is not None and merged["item_status"]["code"] == "1000"
    assert merged["side_effects"]["effect"] == []
    wait_for_follow_on_work(loaded_db)
    with session_scope(loaded_db) as session:
        ben = session.scalars(select(t.Customer).where(t.Customer.mobile == "919800000002")).one()
        ledger = session.scalar(select(func.count()).select_from(t.PointsLedger))
    assert "first_fill:email" in ben.fired
    assert ledger == 0


def test_events_reach_a_consumer_group_once_per_committed_change_and_never_for_failures(loaded_db, redis_url,
                                                                                        start_worker):
    client = redis_lib.Redis.from_url(redis_url)
    client.xgroup_create(STREAM, "crm-sync", id="0", mkstream=True)
    start_worker(loaded_db, redis_url)
    producer = _producer(loaded_db, redis_url)
    body = {"root": {"customer": [
        {"mobile": "919800000005", "firstname": "Elias"},  # a change
        {"mobile": "919800000005", "firstname": "Elias"},  # no change: no event
        {"mobile": "919800000002", "email": "dana@example.com"},  # a merge and a change
        {"mobile": "910000000000", "firstname": "Nobody"},  # fails: no event
    ]}}
    receipt = producer.enqueue_batch(1, body)
    assert producer.get_batch_result(1, receipt.batch_id, timeout=60) is not None
    wait_for_follow_on_work(loaded_db)

    events = []
    for _ in range(20):
        batch = client.xreadgroup("crm-sync", "reader-1", {STREAM: ">"}, count=100, block=200)
        if not batch:
            break
        for _stream, entries in batch:
            for entry_id, fields in entries:
                events.append({k.decode(): v.decode() for k, v in fields.items()})
                client.xack(STREAM, "crm-sync", entry_id)
    kinds = sorted(e["type"] for e in events)
    assert kinds == ["customer.merged", "customer.updated", "customer.updated"]
    updated = [json.loads(e["data"]) for e in events if e["type"] == "customer.updated"]
    request_ids = {u["request_id"] for u in updated}
    assert request_ids == {receipt.request_ids[0], receipt.request_ids[2]}
    first = next(u for u in updated if u["request_id"] == receipt.request_ids[0])
    assert first["changes"] == [{"field": "firstname", "previous": "Eli", "current": "Elias"}]
    merged = next(json.loads(e["data"]) for e in events if e["type"] == "customer.merged")
    assert merged["identifier"] == "email"
    assert len({e["event_id"] for e in events}) == len(events)
