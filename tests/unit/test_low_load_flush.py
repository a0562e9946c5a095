"""A buffered message goes to a free pool process at once when waiting could not fill the batch (issue 28)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from customer_updates.worker.batching import flush_at_once
from tests.unit.test_batch_hand_over import _ArrivalBatches, _Hub, _message

FLUSH_AT = 100


@pytest.mark.parametrize(("pool_free", "in_hand", "waiting", "expected"), [
    (True, 0, 1, True),  # low load: one message, nothing else taken, a process idles
    (True, 0, 99, True),
    (True, 5, 1, False),  # more of this delivery to come: they join the batch
    (True, None, 1, False),  # a transport that cannot tell: the flush timer gathers
    (True, 5, FLUSH_AT, True),  # worth a transaction of its own anyway
    (True, None, FLUSH_AT, True),
    (False, 0, 1, False),  # every process busy: the batch grows
    (False, 0, 10_000, False),
    (True, 0, 0, False),  # nothing waits
])
def test_a_batch_goes_at_once_only_to_a_free_process_when_waiting_cannot_fill_it(
        pool_free: bool, in_hand: int | None, waiting: int, expected: bool):
    assert flush_at_once(pool_free, in_hand, waiting, FLUSH_AT) is expected


def _consumer(hub: _Hub, channel: Any) -> Any:
    return SimpleNamespace(hub=hub, task_consumer=SimpleNamespace(channel=channel))


def test_a_lone_one_update_message_goes_to_a_free_pool_process_once_its_delivery_is_over():
    hub, channel = _Hub(), SimpleNamespace(messages_in_hand=0)
    batches = _ArrivalBatches()
    receive = batches.Strategy(None, None, _consumer(hub, channel))

    receive(_message(1))
    assert batches.flushes == 0 and len(hub.soon) == 1
    hub.run()

    assert batches.flushes == 1


def test_messages_of_one_delivery_go_together_after_its_last_one():
    hub, channel = _Hub(), SimpleNamespace(messages_in_hand=2)
    batches = _ArrivalBatches()
    receive = batches.Strategy(None, None, _consumer(hub, channel))

    for left in (2, 1, 0):
        channel.messages_in_hand = left
        receive(_message(1))
    assert len(hub.soon) == 1  # one check for the whole delivery
    hub.run()

    assert batches.flushes == 1


def test_a_lone_message_waits_for_a_pool_process_when_all_are_busy():
    hub, channel = _Hub(), SimpleNamespace(messages_in_hand=0)
    batches = _ArrivalBatches(busy=True)
    receive = batches.Strategy(None, None, _consumer(hub, channel))

    receive(_message(1))
    hub.run()

    assert batches.flushes == 0
