"""Pure parts of the worker's tuning: how many messages to reserve, and the JSON text it writes."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from customer_updates import jsontext
from customer_updates.worker.batching import prefetch_for, reserved_per_process


def test_one_update_messages_are_reserved_up_to_the_most_allowed():
    assert prefetch_for(1.0, reserved_commands=8000, most=1024, least=16) == 1024


def test_hundred_update_messages_are_reserved_by_the_commands_they_hold():
    assert prefetch_for(100.0, reserved_commands=8000, most=1024, least=16) == 80


def test_very_large_messages_still_get_the_least_reservation():
    assert prefetch_for(5000.0, reserved_commands=8000, most=1024, least=16) == 16


def test_json_text_is_the_compact_text_of_the_json_module_for_plain_data():
    value = {"name": "Zoë", "points": [1, 2.5, None, True], "nested": {"k": "v\n\"q\""}}
    assert jsontext.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_json_text_writes_datetimes_as_iso_and_decimals_and_sets_readably():
    text = jsontext.dumps({"at": datetime(2026, 3, 4, 5, 6, 7, 890123), "amount": Decimal("12.50"),
                           "fired": {"b", "a"}, 7: "int key"})
    assert json.loads(text) == {"at": "2026-03-04T05:06:07.890123", "amount": "12.50", "fired": ["a", "b"],
                                "7": "int key"}


def test_the_reservation_is_shared_by_the_pool_processes():
    assert reserved_per_process(4000, processes=1, batch_size=500) == 4000
    assert reserved_per_process(4000, processes=2, batch_size=500) == 2000


def test_each_pool_process_keeps_at_least_two_batches_reserved():
    assert reserved_per_process(4000, processes=8, batch_size=500) == 1000


def test_batches_end_with_a_young_collection_and_a_full_one_after_a_hundred_batches_and_ten_seconds(monkeypatch):
    from customer_updates.worker import celery_app as worker

    generations: list[int] = []
    now = [1000.0]

    def collect(generation: int = 2) -> int:
        generations.append(generation)
        return 0

    monkeypatch.setattr(worker.gc, "collect", collect)
    monkeypatch.setattr(worker, "monotonic", lambda: now[0])
    monkeypatch.setattr(worker, "_batches_since_full", 0)
    monkeypatch.setattr(worker, "_last_full", now[0])
    every = worker.FULL_COLLECTION_EVERY
    for _ in range(2 * every):  # large batches: a hundred take longer than the interval
        now[0] += worker.FULL_COLLECTION_SECONDS / every * 1.5
        worker.collect_after_batch()
    assert [i for i, g in enumerate(generations) if g == 2] == [every - 1, 2 * every - 1]
    generations.clear()
    for _ in range(5 * every):  # a quiet system's small batches: hundreds a second
        now[0] += 0.005
        worker.collect_after_batch()
    assert generations.count(2) == 0
    now[0] += worker.FULL_COLLECTION_SECONDS
    worker.collect_after_batch()
    assert generations[-1] == 2 and set(generations) == {1, 2}


def test_a_batch_leaves_no_reference_cycle_behind_after_its_collection():
    import gc
    import weakref

    from customer_updates.worker import celery_app as worker

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    gone = weakref.ref(a)
    del a, b
    gc.disable()  # no automatic collection may do the work
    try:
        worker.collect_after_batch()
    finally:
        gc.enable()
    assert gone() is None


def test_the_main_worker_process_gets_the_same_collection_threshold_as_pool_processes(monkeypatch):
    import gc

    from customer_updates.settings import get_settings
    from customer_updates.worker import celery_app as worker

    monkeypatch.setattr(gc, "freeze", lambda: None)  # the test process keeps its heap as it is
    before = gc.get_threshold()
    try:
        worker._main_process_gc()
        assert gc.get_threshold() == (get_settings().worker_gc_threshold, before[1], before[2])
    finally:
        gc.set_threshold(*before)
