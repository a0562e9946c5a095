"""How the worker's main process hands batches to its pool process (no broker, no pool: fakes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery_batches import Batches

from customer_updates.worker import batching
from customer_updates.worker.batching import HandsOverRequest, PacedBatches, slim


def _request(n: int) -> Any:
    kwargs = {"commands": [{"org_id": 1, "request_id": f"r{n}"}]}
    return SimpleNamespace(
        id=f"id{n}", name="customer_updates.apply", _payload=((), kwargs, {}), hostname="w@h",
        ignore_result=False, argsrepr="()", kwargsrepr=repr(kwargs), root_id=None, parent_id=None,
        request_dict={"kwargsrepr": repr(kwargs), "retries": 0}, eta=None, expires=None,
        task=SimpleNamespace(acks_late=True),
        send_event=lambda kind, **fields: None)


def test_the_pool_process_gets_only_id_name_args_and_kwargs_of_a_request():
    request = slim(_request(1))

    assert (request.id, request.name, request.args, request.kwargs) == (
        "id1", "customer_updates.apply", (), {"commands": [{"org_id": 1, "request_id": "r1"}]})
    assert request.request_dict is None and request.delivery_info is None


def test_a_returned_batch_hands_over_the_next_one_before_its_messages_are_acknowledged(
        monkeypatch: pytest.MonkeyPatch):
    order: list[str] = []
    monkeypatch.setattr(batching, "acknowledge_all", lambda requests: order.append(f"ack {len(requests)}"))
    callbacks: dict[str, Any] = {}

    class Pool:
        def apply_async(self, fn: Any, args: Any, accept_callback: Any, callback: Any) -> None:
            callbacks["returned"] = callback

    class Task(PacedBatches):
        def batch_returned(self) -> None:
            order.append("next batch")

    task = Task()
    task._pool = Pool()
    task.flush([_request(1), _request(2)])
    callbacks["returned"](None)

    assert order == ["next batch", "ack 2"]


class _AfterApply(HandsOverRequest):
    batches_task = "apply"


def _returned_request(order: list[str], acks_late: bool = True, batches: Any = None) -> HandsOverRequest:
    """A request as Celery's main process holds it once its task ran (built without a message)."""
    if batches is None:
        batches = SimpleNamespace(batch_returned=lambda: order.append("next batch"))
    request = object.__new__(_AfterApply)
    request._task = SimpleNamespace(acks_late=acks_late, app=SimpleNamespace(tasks={"apply": batches}))
    request._on_ack = lambda logger, errors: order.append("ack")
    request._connection_errors = ()
    return request


def test_when_an_award_returns_the_waiting_batch_goes_to_the_freed_pool_process_before_the_ack():
    order: list[str] = []
    request = _returned_request(order)

    request.acknowledge()
    request.acknowledge()  # a second acknowledgement is a no-op, and hands over nothing either

    assert order == ["next batch", "ack"]


def test_a_task_acknowledged_when_it_starts_hands_over_nothing_since_it_still_holds_the_pool_process():
    order: list[str] = []

    _returned_request(order, acks_late=False).acknowledge()

    assert order == ["ack"]


def test_a_failed_hand_over_still_acknowledges_and_leaves_the_batch_to_the_flush_timer(
        caplog: pytest.LogCaptureFixture):
    order: list[str] = []

    def broken() -> None:
        raise RuntimeError("pool gone")

    _returned_request(order, batches=SimpleNamespace(batch_returned=broken)).acknowledge()

    assert order == ["ack"]
    assert "batch not handed over" in caplog.text


class _Hub:
    def __init__(self) -> None:
        self.soon: list[Any] = []

    def call_soon(self, callback: Any) -> None:
        self.soon.append(callback)

    def run(self) -> None:
        waiting, self.soon = self.soon, []
        for callback in waiting:
            callback()


class _Buffered(Batches):
    """What celery-batches' strategy does with a message: its request goes into the buffer."""

    def Strategy(self, task: Any, app: Any, consumer: Any) -> Any:
        return lambda request: self._buffer.put(request)


class _ArrivalBatches(PacedBatches, _Buffered):
    def __init__(self, busy: bool = False) -> None:
        super().__init__()
        self.flushes = 0
        self.busy = busy

    def _pool_busy(self) -> bool:
        return self.busy

    def _do_flush(self) -> None:
        self.flushes += 1


def _message(commands: int) -> Any:
    return SimpleNamespace(kwargs={"commands": [{"request_id": f"r{n}"} for n in range(commands)]})


def _receiving(batches: _ArrivalBatches, hub: _Hub) -> Any:
    return batches.Strategy(None, None, SimpleNamespace(hub=hub))


def test_a_hundred_update_message_goes_to_a_free_pool_process_once_its_delivery_is_over():
    hub = _Hub()
    batches = _ArrivalBatches()
    receive = _receiving(batches, hub)

    receive(_message(100))
    receive(_message(100))  # the same delivery: one check for both
    assert batches.flushes == 0 and len(hub.soon) == 1
    hub.run()

    assert batches.flushes == 1


def test_one_update_messages_wait_for_the_flush_timer_until_they_make_a_batch():
    hub = _Hub()
    batches = _ArrivalBatches()
    receive = _receiving(batches, hub)

    for _ in range(99):
        receive(_message(1))
    assert hub.soon == []
    receive(_message(1))
    hub.run()

    assert batches.flushes == 1


def test_messages_arriving_while_every_pool_process_is_busy_wait_for_one_to_return():
    hub = _Hub()
    batches = _ArrivalBatches(busy=True)
    receive = _receiving(batches, hub)

    receive(_message(100))
    hub.run()

    assert batches.flushes == 0
