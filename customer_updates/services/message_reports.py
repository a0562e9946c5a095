"""What became of each message of a batch, for its task events: counts by outcome, or why it was dead-lettered.

The batching task returns these reports, keyed by task id, and the worker's main process sends them to Flower
(worker/task_events.py). A message is FAILURE only when it is dead-lettered as a whole (retries used up, or a
body that is not of the wire contract); a message some of whose commands were refused (a bad mobile, a
conflicting request id) is SUCCESS with the failed count and codes in its result, because the worker did its
job and the producer reads each command's result.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from customer_updates.messaging.masking import looks_personal
from customer_updates.rules.codes import Code

_Key = tuple[Any, Any]  # (org_id, request_id) of a command


@dataclass
class MessageReport:
    commands: int
    applied: int = 0
    duplicate: int = 0
    failed: int = 0
    requeued: int = 0  # retried or deferred: a later message carries them
    codes: Counter[int] = field(default_factory=Counter)
    dead_letter: str | None = None  # why the whole message went to the dead-letter list

    def as_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {"commands": self.commands, "applied": self.applied, "failed": self.failed,
                                  "codes": {str(code): n for code, n in sorted(self.codes.items())}}
        if self.duplicate:
            report["duplicate"] = self.duplicate
        if self.requeued:
            report["requeued"] = self.requeued
        if self.dead_letter is not None:
            report["dead_letter"] = self.dead_letter
        return report


def _key(raw: Any) -> _Key | None:
    if isinstance(raw, dict):
        return raw.get("org_id"), raw.get("request_id")
    return None


def safe_error(error: str) -> str:
    """An error's text without personal data: its first line, and only its type when that line looks personal
    (a database's message can quote a value)."""
    kind, _, text = error.partition(":")
    text = text.strip().splitlines()[0][:200] if text.strip() else ""
    if not text or looks_personal(text):
        return kind
    return f"{kind}: {text}"


class MessageReports:
    """Reports of the messages of one batch, filled in as the batch is applied."""

    def __init__(self) -> None:
        self.by_task: dict[str, MessageReport] = {}
        self._task_of: dict[_Key, deque[str]] = defaultdict(deque)

    def add(self, task_id: str | None, commands: list[Any] | None) -> None:
        if task_id is None:
            return
        self.by_task[task_id] = MessageReport(len(commands) if commands is not None else 1)
        for raw in commands or []:
            key = _key(raw)
            if key is not None:
                self._task_of[key].append(task_id)

    def _report_of(self, key: _Key | None, take: bool = True) -> MessageReport | None:
        tasks = self._task_of.get(key) if key is not None else None
        if not tasks:
            return None
        # A request id twice in one batch: each outcome goes to the next message that carried it.
        task_id = tasks.popleft() if take and len(tasks) > 1 else tasks[0]
        return self.by_task.get(task_id)

    def outcomes(self, outcomes: Iterable[tuple[str, int, str, int]]) -> None:
        for request_id, org_id, kind, code in outcomes:
            report = self._report_of((org_id, request_id))
            if report is None:
                continue
            report.codes[int(code)] += 1
            if code != Code.SUCCESS:
                report.failed += 1
            elif kind == "duplicate":
                report.duplicate += 1
            else:
                report.applied += 1

    def commands_failed(self, commands: Iterable[Any], code: int) -> None:
        for raw in commands:
            report = self._report_of(_key(raw))
            if report is not None:
                report.failed += 1
                report.codes[code] += 1

    def requeued(self, commands: Iterable[Any]) -> None:
        for raw in commands:
            report = self._report_of(_key(raw), take=False)
            if report is not None:
                report.requeued += 1

    def dead_lettered(self, task_id: str | None, commands: Iterable[Any], error: str) -> None:
        """A message (or a part of one) went to the dead-letter list as a whole."""
        commands = list(commands)
        reports = {id(r): r for r in (self._report_of(_key(raw), take=False) for raw in commands) if r}
        if task_id is not None and task_id in self.by_task:
            reports[id(self.by_task[task_id])] = self.by_task[task_id]
        for report in reports.values():
            report.dead_letter = safe_error(error)
        self.commands_failed(commands, Code.DEAD_LETTERED)

    def as_result(self) -> dict[str, dict[str, Any]]:
        return {task_id: report.as_dict() for task_id, report in self.by_task.items()}
