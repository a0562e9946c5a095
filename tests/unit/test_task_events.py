"""Task events of a consumer-side batch: made at once, sent as grouped messages (no broker: fakes)."""

from __future__ import annotations

import copy
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery.events.event import Event
from kombu.clocks import LamportClock
from kombu.serialization import loads

from customer_updates.worker import batching, task_events
from customer_updates.worker.batching import PacedBatches
from customer_updates.worker.task_events import EVENTS_PER_MESSAGE, TaskEvents, batch_events, publish_events


class _Producer:
    def __init__(self, fails: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fails = fails

    def publish(self, body: Any, **options: Any) -> None:
        if self.fails:
            raise ConnectionError("broker gone")
        # Decoded as an event receiver decodes it (kombu.serialization.loads).
        # A copy of a body not encoded yet: Celery's dispatcher empties its buffer list after the publish.
        decoded = loads(body, options["content_type"], options["content_encoding"]) if options.get("content_type") \
            else copy.deepcopy(body)
        self.sent.append({"body": decoded, **options})


def _dispatcher(enabled: bool = True, groups: set[str] | None = None, fails: bool = False) -> Any:
    return SimpleNamespace(hostname="worker@host", pid=4242, clock=LamportClock(), enabled=enabled,
                           groups=groups or set(), mutex=threading.Lock(), producer=_Producer(fails),
                           exchange=SimpleNamespace(name="celeryev"), serializer="json",
                           headers={"hostname": "worker@host"}, delivery_mode=1)


def _request(n: int) -> Any:
    return SimpleNamespace(id=f"task-{n}", name="customer_updates.apply_updates", argsrepr="()",
                           kwargsrepr="{'commands': [...]}", root_id=None, parent_id=None,
                           request_dict={"retries": 2}, eta=None, expires=None)


def test_each_request_gets_the_event_celery_would_send_for_it_with_its_own_clock_tick():
    dispatcher = _dispatcher()

    events = batch_events(dispatcher, [_request(1), _request(2)], "task-received", task_events._received_fields)

    # What EventDispatcher.send(type, uuid=..., **fields) builds for one request.
    celerys = Event("task-received", hostname="worker@host", utcoffset=events[0]["utcoffset"], pid=4242,
                    clock=events[0]["clock"], uuid="task-1", **task_events._received_fields(_request(1)))
    assert set(events[0]) == set(celerys)
    assert {k: v for k, v in events[0].items() if k != "timestamp"} == {
        k: v for k, v in celerys.items() if k != "timestamp"}
    assert events[0]["retries"] == 2 and events[1]["uuid"] == "task-2"
    assert events[1]["clock"] == events[0]["clock"] + 1


def test_events_go_out_as_grouped_task_messages_of_a_bounded_size():
    dispatcher = _dispatcher()
    events = batch_events(dispatcher, [_request(n) for n in range(450)], "task-started")

    publish_events(dispatcher, events)

    sent = dispatcher.producer.sent
    assert [len(message["body"]) for message in sent] == [EVENTS_PER_MESSAGE, EVENTS_PER_MESSAGE, 50]
    assert {message["routing_key"] for message in sent} == {"task.multi"}
    assert {message["exchange"] for message in sent} == {"celeryev"}
    assert [event["uuid"] for message in sent for event in message["body"]] == [f"task-{n}" for n in range(450)]
    assert {message["content_type"] for message in sent} == {"application/json"}  # made by orjson, not kombu
    assert sent[0]["body"][0] == events[0]


def test_a_broker_error_loses_the_events_with_a_warning_and_raises_nothing(caplog: pytest.LogCaptureFixture):
    dispatcher = _dispatcher(fails=True)

    with caplog.at_level(logging.WARNING, logger="customer_updates.worker.task_events"):
        publish_events(dispatcher, batch_events(dispatcher, [_request(1)], "task-started"))

    assert "task events not sent" in caplog.text


def _events(dispatcher: Any, send_events: bool = True) -> TaskEvents:
    return TaskEvents(dispatcher, SimpleNamespace(send_events=send_events))


@pytest.mark.parametrize("events", [
    _events(_dispatcher(enabled=False)),
    _events(_dispatcher(groups={"worker"})),
    _events(_dispatcher(), send_events=False),
    _events(None),
], ids=["events off", "task group not sent", "task sends none", "no dispatcher"])
def test_no_events_are_made_when_the_worker_or_the_task_sends_none(events: TaskEvents):
    events.started([_request(1)])

    assert events.dispatcher is None or events.dispatcher.producer.sent == []


def test_a_batch_sends_received_started_and_succeeded_for_every_message(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(batching, "acknowledge_all", lambda requests: None)
    dispatcher = _dispatcher()
    callbacks: dict[str, Any] = {}

    class Pool:
        def apply_async(self, fn: Any, args: Any, accept_callback: Any, callback: Any) -> None:
            callbacks.update(accepted=accept_callback, returned=callback)

    batches = PacedBatches()
    batches.observer = _events(dispatcher)
    batches._pool = Pool()
    requests = [SimpleNamespace(**vars(_request(n)), _payload=((), {"commands": []}, {}), hostname="w@h",
                                ignore_result=False, task=SimpleNamespace(acks_late=True)) for n in range(3)]

    batches.flush(requests)
    callbacks["accepted"](1234, 0.0)
    callbacks["returned"](None)

    kinds = [(event["type"], event["uuid"]) for message in dispatcher.producer.sent for event in message["body"]]
    assert kinds == [(kind, f"task-{n}") for kind in ("task-received", "task-started", "task-succeeded")
                     for n in range(3)]
    succeeded = dispatcher.producer.sent[-1]["body"][0]
    assert succeeded["result"] == "None" and succeeded["runtime"] >= 0


def test_a_batching_task_sends_its_events_over_the_dispatcher_of_the_consumer_it_serves():
    dispatcher = _dispatcher()

    class Buffering(PacedBatches):
        pass

    batches = Buffering()
    assert isinstance(batches.observer, task_events.NoTaskEvents)  # not consuming yet: nothing to send over
    consumer = SimpleNamespace(event_dispatcher=dispatcher, pool=SimpleNamespace(apply_async=None), hostname="w@h",
                               connection_errors=(),
                               timer=None)
    batches.Strategy(batches, Celery("events", set_as_current=False), consumer)

    assert isinstance(batches.observer, TaskEvents) and batches.observer.dispatcher is dispatcher
    batches.observer.started([_request(1)])
    assert [event["uuid"] for event in dispatcher.producer.sent[0]["body"]] == ["task-1"]


def _with_commands(n: int, commands: int) -> Any:
    return SimpleNamespace(**vars(_request(n)), kwargs={"commands": [{}] * commands})


def test_each_message_gets_its_share_of_the_batch_runtime_by_its_commands():
    requests = [_with_commands(1, 1), _with_commands(2, 3), _with_commands(3, 0)]

    shares = task_events.runtime_shares(requests, {"task-2": {"commands": 3}}, runtime=0.5)

    assert shares == pytest.approx({"task-1": 0.1, "task-2": 0.3, "task-3": 0.1})
    assert sum(shares.values()) == pytest.approx(0.5)


def test_a_dead_lettered_message_is_a_failed_task_and_the_others_succeed_with_their_report():
    dispatcher = _dispatcher()
    requests = [_with_commands(1, 2), _with_commands(2, 2)]
    reports = {"task-1": {"commands": 2, "applied": 1, "failed": 1, "codes": {"1000": 1, "1012": 1}},
               "task-2": {"commands": 2, "applied": 0, "failed": 2, "codes": {"9001": 2},
                          "dead_letter": "OperationalError"}}

    _events(dispatcher).succeeded(requests, reports, 0.2)

    events = {event["uuid"]: event for message in dispatcher.producer.sent for event in message["body"]}
    assert events["task-1"]["type"] == "task-succeeded" and events["task-2"]["type"] == "task-failed"
    assert events["task-1"]["result"] == repr(reports["task-1"])
    assert events["task-2"]["exception"] == "DeadLettered('OperationalError')"
    assert events["task-1"]["runtime"] == pytest.approx(0.1) and events["task-2"]["runtime"] == pytest.approx(0.1)


def test_flowers_state_shows_a_dead_lettered_message_as_failure_and_counts_it_failed():
    from celery.events.state import State

    dispatcher = _dispatcher()
    events_of = _events(dispatcher)
    requests = [_with_commands(1, 1), _with_commands(2, 1)]
    events_of.received(requests)
    events_of.started(requests)
    events_of.succeeded(requests, {"task-2": {"commands": 1, "dead_letter": "InvalidMessage"}}, 0.01)

    state = State()
    for message in dispatcher.producer.sent:
        for event in message["body"]:
            state.event({**event, "local_received": event["timestamp"]})  # as the receiver adds it

    assert state.tasks["task-1"].state == "SUCCESS" and state.tasks["task-2"].state == "FAILURE"
    assert state.tasks["task-2"].exception == "DeadLettered('InvalidMessage')"
    assert state.tasks["task-1"].runtime == pytest.approx(0.005)


def test_events_made_within_the_delay_share_one_round_trip_when_the_timer_fires():
    dispatcher = _dispatcher()
    timers: list[tuple[float, Any]] = []
    events = TaskEvents(dispatcher, SimpleNamespace(send_events=True),
                        call_later=lambda delay, callback: timers.append((delay, callback)))

    events.received([_request(1)])
    events.started([_request(1)])
    events.succeeded([_request(1)], {}, 0.01)
    events.received([_request(2)])

    assert dispatcher.producer.sent == []  # nothing sent before the timer fires
    assert [delay for delay, _ in timers] == [task_events.EVENTS_DELAY]  # one timer for the whole window
    timers[0][1]()
    sent = dispatcher.producer.sent
    assert len(sent) == 1
    assert [(e["type"], e["uuid"]) for e in sent[0]["body"]] == [
        ("task-received", "task-1"), ("task-started", "task-1"), ("task-succeeded", "task-1"),
        ("task-received", "task-2")]


def test_the_next_event_after_a_flush_starts_a_new_timer():
    timers: list[Any] = []
    events = TaskEvents(_dispatcher(), SimpleNamespace(send_events=True),
                        call_later=lambda delay, callback: timers.append(callback))
    events.started([_request(1)])
    timers[0]()
    events.started([_request(2)])
    assert len(timers) == 2


def test_the_consumer_step_sends_the_waiting_events_before_the_dispatcher_closes():
    dispatcher = _dispatcher()
    task = SimpleNamespace(send_events=True)
    task.observer = TaskEvents(dispatcher, task, call_later=lambda delay, callback: None)
    task.observer.started([_request(1)])
    consumer = SimpleNamespace(app=SimpleNamespace(tasks={"customer_updates.apply_updates": task}))

    step = task_events.FlushTaskEvents.__new__(task_events.FlushTaskEvents)  # no blueprint needed
    step.shutdown(consumer)

    assert [e["uuid"] for message in dispatcher.producer.sent for e in message["body"]] == ["task-1"]
    assert "celery.worker.consumer.events:Events" in task_events.FlushTaskEvents.requires


def test_the_worker_app_runs_the_flushing_step_in_its_consumer():
    from customer_updates.worker.celery_app import app

    assert task_events.FlushTaskEvents in app.steps["consumer"]


def _celery_dispatcher(flushed_at_once: list[int]) -> Any:
    """Celery's own event dispatcher as the worker's consumer makes it: task events buffered, and a callback
    (here one that counts) for each event buffered."""
    app = Celery(broker="memory://", set_as_current=False)
    connection = app.connection_for_write()
    dispatcher = app.events.Dispatcher(connection, hostname="worker@host", enabled=True, buffer_group=["task"],
                                       on_send_buffered=lambda: flushed_at_once.append(1))
    dispatcher.producer = _Producer()
    return dispatcher


def test_celerys_own_buffered_task_events_go_out_together_after_the_delay():
    flushed_at_once: list[int] = []
    dispatcher = _celery_dispatcher(flushed_at_once)
    timers: list[tuple[float, Any]] = []
    consumer = SimpleNamespace(event_dispatcher=dispatcher,
                               hub=SimpleNamespace(call_later=lambda delay, cb: timers.append((delay, cb))))
    step = task_events.FlushTaskEvents.__new__(task_events.FlushTaskEvents)
    step.start(consumer)

    for n in range(3):  # what Celery's request of an award task sends
        dispatcher.send("task-received", uuid=f"award-{n}")
        dispatcher.send("task-succeeded", uuid=f"award-{n}")

    assert flushed_at_once == [] and dispatcher.producer.sent == []  # Celery's next-turn flush is replaced
    assert [delay for delay, _ in timers] == [task_events.EVENTS_DELAY]
    timers[0][1]()
    [message] = dispatcher.producer.sent
    assert [(e["type"], e["uuid"]) for e in message["body"]] == [
        (kind, f"award-{n}") for n in range(3) for kind in ("task-received", "task-succeeded")]
    dispatcher.send("task-received", uuid="award-3")
    assert len(timers) == 2  # the next event starts a new timer


def test_celerys_buffered_task_events_still_waiting_go_out_when_the_consumer_stops():
    dispatcher = _celery_dispatcher([])
    consumer = SimpleNamespace(event_dispatcher=dispatcher, app=SimpleNamespace(tasks={}),
                               hub=SimpleNamespace(call_later=lambda delay, cb: None))
    step = task_events.FlushTaskEvents.__new__(task_events.FlushTaskEvents)
    step.start(consumer)
    dispatcher.send("task-succeeded", uuid="award-1")
    step.shutdown(consumer)
    assert [e["uuid"] for message in dispatcher.producer.sent for e in message["body"]] == ["award-1"]
