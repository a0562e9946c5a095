"""What the worker logs about a committed batch: one line with counts, a line per command only where needed."""

from __future__ import annotations

import logging

import pytest

from customer_updates.services.apply import BatchOutcome
from customer_updates.services.worker_messages import _log_outcomes


def _outcome() -> BatchOutcome:
    outcome = BatchOutcome()
    outcome.outcomes = [("r1", 1, "applied", 1000), ("r2", 1, "applied", 1000), ("r3", 1, "applied", 1003),
                        ("r4", 1, "duplicate", 1000), ("r5", 1, "conflict", 409)]
    outcome.deferred = [{"request_id": "r6"}]
    return outcome


def _lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


def test_a_batch_is_one_info_line_with_how_its_commands_ended(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="customer_updates.worker"):
        _log_outcomes(_outcome(), 0.1234)
    [batch] = _lines(caplog, "batch")
    assert (batch.commands, batch.applied, batch.failed, batch.duplicate, batch.conflict,  # type: ignore[attr-defined]
            batch.deferred) == (5, 2, 1, 1, 1, 1)  # type: ignore[attr-defined]
    assert batch.duration_ms == 123.4  # type: ignore[attr-defined]


def test_only_commands_that_did_not_succeed_get_their_own_info_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="customer_updates.worker"):
        _log_outcomes(_outcome(), 0.1)
    assert [(r.request_id, r.code) for r in _lines(caplog, "command")] == [("r3", 1003), ("r5", 409)]  # type: ignore[attr-defined]


def test_at_debug_every_command_has_its_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="customer_updates.worker"):
        _log_outcomes(_outcome(), 0.1)
    assert [r.request_id for r in _lines(caplog, "command")] == ["r1", "r2", "r3", "r4", "r5"]  # type: ignore[attr-defined]


def test_a_command_the_rules_refused_is_failed_in_its_line_as_in_the_batch_line(
        caplog: pytest.LogCaptureFixture) -> None:
    outcome = BatchOutcome()
    outcome.outcomes = [("r1", 1, "applied", 1012), ("r2", 1, "applied", 1000), ("r3", 1, "duplicate", 1012)]
    with caplog.at_level(logging.DEBUG, logger="customer_updates.worker"):
        _log_outcomes(outcome, 0.1)
    [batch] = _lines(caplog, "batch")
    assert (batch.applied, batch.failed, batch.duplicate) == (1, 1, 1)  # type: ignore[attr-defined]
    said = {r.request_id: r.outcome for r in _lines(caplog, "command")}  # type: ignore[attr-defined]
    assert said == {"r1": "failed", "r2": "applied", "r3": "duplicate"}
