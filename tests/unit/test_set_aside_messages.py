"""Commands set aside because another transaction held their customer stay in their own messages, so that a
later retry or dead letter counts and names each message alone."""

from __future__ import annotations

from customer_updates.services.worker_messages import Message, _set_aside


def _command(n: int) -> dict[str, object]:
    return {"org_id": 3, "request_id": f"r-{n}", "customer": {"mobile": "919800000001"}}


def test_set_aside_commands_keep_the_attempt_and_task_of_their_own_message():
    first, second, third = [_command(1), _command(2)], [_command(3)], [_command(4)]
    chunk = [Message(first, 2, "task-a"), Message(second, 0, "task-b"), Message(third, 1, "task-c")]

    kept = _set_aside(chunk, [first[1], second[0]])

    assert kept == [Message([first[1]], 2, "task-a"), Message(second, 0, "task-b")]


def test_equal_commands_of_two_messages_are_told_apart_by_identity():
    same = _command(1)
    twin = dict(same)  # a redelivered copy: equal, but another message's
    chunk = [Message([same], 3, "task-a"), Message([twin], 0, "task-b")]
    assert _set_aside(chunk, [twin]) == [Message([twin], 0, "task-b")]


def test_nothing_set_aside_is_no_message():
    assert _set_aside([Message([_command(1)], 0, "task-a")], []) == []
