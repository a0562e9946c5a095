"""What a worker does with the messages it took: apply, publish, retry or dead-letter.

Delivery is at least once (acks_late); every step here is safe to repeat, so a message redelivered
after a crash at any point ends in the same stored state.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc

from customer_updates.messaging import claims, receipts
from customer_updates.messaging.after_commit import publish_batch
from customer_updates.messaging.dead_letters import push_dead_letter
from customer_updates.messaging.results import store_results
from customer_updates.models.commands import payload_hash, utcnow
from customer_updates.models.results import failed_item
from customer_updates.ops import worker_metrics
from customer_updates.rules.codes import Code, message
from customer_updates.services import awards as award_service
from customer_updates.services import failpoints
from customer_updates.services.apply import BatchApplier, BatchOutcome, StoredResult
from customer_updates.services.message_reports import MessageReports
from customer_updates.services.publish import confirm_receipts, send_award_rows, stream_events
from customer_updates.services.resources import Runtime
from customer_updates.settings import Settings
from customer_updates.store.customers import LockOrderConflict
from customer_updates.store.db import session_scope, statement_scope

log = logging.getLogger("customer_updates.worker")

# Errors worth another try: the database or broker went away, a deadlock or serialization failure, a
# customer that could not be locked in order (store/customers.py), or a unique index refusing what a
# concurrent worker just committed (the retry sees it and merges).
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.IntegrityError, sa_exc.TimeoutError,
             ConnectionError, TimeoutError, LockOrderConflict)


@dataclass
class Message:
    """One queue message: its commands and how often it was tried already."""

    commands: list[Any]
    attempt: int = 0
    task_id: str | None = None  # the Celery task of the queue message (None: not known)


def as_commands(kwargs: Any) -> list[Any] | None:
    """The commands of a message's kwargs, or None when the body is not of the wire contract."""
    if not isinstance(kwargs, dict):
        return None
    commands = kwargs.get("commands")
    if isinstance(commands, dict):
        commands = [commands]
    return commands if isinstance(commands, list) else None


def _bound(settings_base: float, settings_max: float, attempt: int) -> float:
    # The exponent is capped: `attempt` comes from the message, and 2.0 ** 1100 overflows a float.
    return min(settings_max, settings_base * 2 ** min(max(attempt, 0), 30))


def backoff(settings_base: float, settings_max: float, attempt: int) -> float:
    """Exponential backoff with equal jitter: a delay between half its bound and the bound.

    The jitter spreads the retries of many workers after a common outage; the lower half-bound lets
    `may_retry` know how long a message's retries have surely waited without a clock in the message."""
    bound = _bound(settings_base, settings_max, attempt)
    return random.uniform(bound / 2, bound)


def may_retry(settings: Settings, attempt: int) -> bool:
    """Whether a message that failed transiently `attempt` times before gets another try: until its
    retries have surely waited `retry_budget_seconds` (so that a database restart or failover is outlasted),
    and at most `max_retries` times."""
    if attempt >= settings.max_retries:
        return False
    waited = 0.0
    for earlier in range(max(attempt, 0)):
        waited += _bound(settings.retry_backoff_base, settings.retry_backoff_max, earlier) / 2
        if waited >= settings.retry_budget_seconds:
            return False
    return True


def apply_messages(rt: Runtime, messages: list[Message], send_awards: Callable[[list[int]], None],
                   requeue: Callable[[Message, float], None], reports: MessageReports | None = None) -> None:
    """Apply messages in transactions of at most `worker_batch_size` commands, message boundaries kept.

    Commands set aside because another worker's transaction held one of their customers go with the next
    chunk (by then that transaction has mostly committed); after the last chunk they get a transaction of
    their own that waits for the customers, so that every command is applied before the messages are acked.

    A message larger than a transaction is applied in parts of `worker_batch_size` commands, in order: one
    transaction per message let a raw producer force one as large as it liked (and the memory with it).
    Each command has its own request id, so a part that is retried or dead-lettered affects only itself."""
    chunk: list[Message] = []
    size = 0
    set_aside: list[Message] = []
    for msg in _parts(messages, max(1, rt.settings.worker_batch_size)):
        if chunk and size + len(msg.commands) > rt.settings.worker_batch_size:
            set_aside = _apply_chunk(rt, set_aside + chunk, send_awards, requeue, reports)
            chunk, size = [], 0
        chunk.append(msg)
        size += len(msg.commands)
    if chunk:
        set_aside = _apply_chunk(rt, set_aside + chunk, send_awards, requeue, reports)
    if set_aside:
        _apply_chunk(rt, set_aside, send_awards, requeue, reports, wait_for_locks=True)


def _parts(messages: list[Message], most: int) -> Iterator[Message]:
    for msg in messages:
        if len(msg.commands) <= most:
            yield msg
            continue
        for start in range(0, len(msg.commands), most):
            yield Message(msg.commands[start:start + most], msg.attempt, msg.task_id)


def _apply_chunk(rt: Runtime, chunk: list[Message], send_awards: Callable[[list[int]], None],
                 requeue: Callable[[Message, float], None], reports: MessageReports | None = None,
                 wait_for_locks: bool = False) -> list[Message]:
    """Apply a chunk in one transaction. Returns the commands it set aside, untouched, because another
    transaction held one of their customers (none with `wait_for_locks`)."""
    started = time.perf_counter()
    chunk, claimed = _claim(rt, chunk, requeue)
    if not chunk:
        return []
    commands = [c for m in chunk for c in m.commands]
    try:
        with session_scope(rt.settings.database_url) as session:
            outcome = BatchApplier(session, rt.orgs, wait_for_locks=wait_for_locks).run(commands)
    except Exception as exc:
        _release(rt, claimed)
        if not isinstance(exc, TRANSIENT):
            log.exception("unexpected error applying a message")
        if len(chunk) > 1:
            # One message may be the cause (or just unlucky): try each alone before backing off.
            return [left for msg in chunk
                    for left in _apply_chunk(rt, [msg], send_awards, requeue, reports, wait_for_locks)]
        _retry_or_dead_letter(rt, chunk[0], exc, requeue, reports)
        return []
    failpoints.hit("after_commit")
    try:
        _after_commit(rt, outcome, claimed, _awards_of(chunk, send_awards), time.perf_counter() - started, reports)
    except Exception as exc:
        # Committed, but the results did not reach Redis: a second delivery applies nothing and
        # publishes the stored results again (the batch task acks its messages whatever happens).
        log.warning("results not published; message requeued",
                    extra={"error": type(exc).__name__, "commands": sum(len(m.commands) for m in chunk)})
        for msg in chunk:  # the set-aside commands with them
            requeue(msg, backoff(rt.settings.retry_backoff_base, rt.settings.retry_backoff_max, msg.attempt))
        return []
    finally:
        _release(rt, claimed)  # unless released after commit; before the set-aside commands claim them again
    return _set_aside(chunk, outcome.deferred)


def _set_aside(chunk: list[Message], deferred: list[Any]) -> list[Message]:
    """The deferred commands, each in its own message again: a message keeps its attempt count and task id, so
    that a later retry or dead letter is of that message alone."""
    if not deferred:
        return []
    held = {id(raw) for raw in deferred}  # the very objects of the chunk's messages (BatchApplier keeps them)
    out = []
    for msg in chunk:
        mine = [raw for raw in msg.commands if id(raw) in held]
        if mine:
            out.append(Message(mine, msg.attempt, msg.task_id))
    return out


def _claim(rt: Runtime, chunk: list[Message],
           requeue: Callable[[Message, float], None]) -> tuple[list[Message], set[claims.Key]]:
    """Claim the chunk's request ids; commands another worker is applying go back to the queue for a moment
    (a deferral, not a retry: their message keeps its attempt count). Returns what to apply now."""
    seconds = rt.settings.worker_claim_seconds
    if seconds <= 0:
        return chunk, set()
    keyed = [[claims.key_of(raw) for raw in msg.commands] for msg in chunk]
    try:
        claimed, busy = claims.take(rt.redis, (key for keys in keyed for key in keys if key is not None), seconds)
    except Exception:  # only a hint: without Redis the unique key still keeps a request to one commit
        log.warning("request ids not claimed", exc_info=True)
        return chunk, set()
    if not busy:
        return chunk, claimed
    now: list[Message] = []
    for msg, keys in zip(chunk, keyed, strict=True):
        if busy.isdisjoint(keys):
            now.append(msg)
            continue
        later = [raw for raw, key in zip(msg.commands, keys, strict=True) if key in busy]
        requeue(Message(later, msg.attempt, msg.task_id), random.uniform(CLAIM_WAIT / 2, CLAIM_WAIT))
        rest = [raw for raw, key in zip(msg.commands, keys, strict=True) if key not in busy]
        if rest:
            now.append(Message(rest, msg.attempt, msg.task_id))
    log.info("deferred requests another worker is applying", extra={"commands": len(busy)})
    return now, claimed


CLAIM_WAIT = 0.5  # seconds a deferred request waits at most: about one batch's transaction


def _release(rt: Runtime, claimed: set[claims.Key]) -> None:
    if not claimed:
        return
    try:
        claims.release(rt.redis, claimed)
    except Exception:  # they expire on their own
        log.warning("request id claims not released", exc_info=True)


def _awards_of(chunk: list[Message], send_awards: Callable[..., None]) -> Callable[[list[int]], None]:
    """`send_awards` with the chunk's first task as the awards' parent, so that Flower shows them under it."""
    parent = next((msg.task_id for msg in chunk if msg.task_id is not None), None)
    if parent is None:
        return send_awards
    return lambda outbox_ids: send_awards(outbox_ids, parent_id=parent)


def _after_commit(rt: Runtime, outcome: BatchOutcome, claimed: set[claims.Key],
                  send_awards: Callable[[list[int]], None], duration: float,
                  reports: MessageReports | None = None) -> None:
    """Results, events, receipts of the published event rows and the claims' release in one Redis round
    trip, then the award tasks and their receipts. Raises when the results did not reach Redis; an outbox row
    left without a receipt is the relay's to publish again."""
    events = [e.id for e in outcome.outbox if e.kind != "award"]
    waiting = publish_batch(rt.redis, outcome.results, rt.settings.result_ttl_seconds, rt.settings.events_stream,
                            rt.settings.events_maxlen, stream_events(outcome.outbox), claimed, events)
    claimed.clear()  # released by that call
    awards = [e.id for e in outcome.outbox if e.kind == "award"]
    if awards:
        try:
            send_award_rows(send_awards, outcome.outbox)
        except Exception:
            log.warning("award tasks deferred to relay", exc_info=True)
        else:
            try:  # receipts only once sent: the relay sends what has none
                waiting = receipts.add(rt.redis, awards)
            except Exception:  # sent without receipts: the relay sends them again, which awards dedupe
                log.warning("award receipts not left", exc_info=True)
    if waiting >= receipts.DRAIN_AT:
        _drain_receipts(rt)
    if reports is not None:
        reports.outcomes(outcome.outcomes)
    for raw, error in outcome.undecodable:
        _dead_letter_raw(rt, raw, error, attempts=1)
        if reports is not None:
            reports.commands_failed([raw], Code.DEAD_LETTERED)
    _log_outcomes(outcome, duration)
    worker_metrics.commands(outcome.outcomes, len(outcome.deferred), worker_metrics.merges_in(outcome.outbox),
                            duration)


def _drain_receipts(rt: Runtime) -> None:
    """Mark published the rows of the receipts waiting in Redis, in one statement, so that the set stays
    small where beat's relay runs seldom or not at all."""
    try:
        with statement_scope(rt.settings.database_url) as session:
            confirm_receipts(session, rt.redis, utcnow())
    except Exception:  # the receipts went back, or the relay publishes those rows again
        log.warning("outbox receipts not confirmed", exc_info=True)


def _log_outcomes(outcome: BatchOutcome, duration: float) -> None:
    """One line per batch; one per command only at DEBUG, or when the command did not succeed.

    A line per command costs the worker CPU on every update, and as many log lines as updates is more than
    operators read. Failures stay traceable by request id."""
    counts = Counter(kind for _, _, kind, _ in outcome.outcomes)
    failed = sum(1 for _, _, kind, code in outcome.outcomes if kind == "applied" and code != Code.SUCCESS)
    log.info("batch", extra={"commands": len(outcome.outcomes), "applied": counts["applied"] - failed,
                             "failed": failed, "duplicate": counts["duplicate"], "conflict": counts["conflict"],
                             "deferred": len(outcome.deferred), "duration_ms": round(duration * 1000, 1)})
    every = log.isEnabledFor(logging.DEBUG)
    for request_id, org_id, kind, code in outcome.outcomes:
        if every or code != Code.SUCCESS:
            # The same words as the batch line: a command the rules refused is "failed", not "applied".
            said = "failed" if kind == "applied" and code != Code.SUCCESS else kind
            log.log(logging.DEBUG if code == Code.SUCCESS else logging.INFO, "command",
                    extra={"org_id": org_id, "request_id": request_id, "outcome": said, "code": code})


def _retry_or_dead_letter(rt: Runtime, msg: Message, exc: BaseException,
                          requeue: Callable[[Message, float], None], reports: MessageReports | None = None) -> None:
    error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    if may_retry(rt.settings, msg.attempt):
        delay = backoff(rt.settings.retry_backoff_base, rt.settings.retry_backoff_max, msg.attempt)
        log.warning("retrying message", extra={"attempt": msg.attempt + 1, "delay_s": round(delay, 3),
                                               "commands": len(msg.commands), "error": type(exc).__name__})
        requeue(Message(msg.commands, msg.attempt + 1, msg.task_id), delay)
        worker_metrics.retried()
        return
    _dead_letter_raw(rt, {"commands": msg.commands}, error, attempts=msg.attempt + 1, task_id=msg.task_id)
    if reports is not None:
        reports.dead_lettered(msg.task_id, msg.commands, error)
    # Results say so, so that a waiting producer is not left guessing; a replay overwrites them.
    results = []
    for raw in msg.commands:
        if isinstance(raw, dict) and isinstance(raw.get("request_id"), str) and isinstance(raw.get("org_id"), int):
            results.append(StoredResult(raw["org_id"], raw["request_id"], payload_hash(raw.get("customer")),
                                        failed_item(raw.get("customer"), Code.DEAD_LETTERED,
                                                    message(Code.DEAD_LETTERED))))
    try:
        store_results(rt.redis, results, rt.settings.result_ttl_seconds)
    except Exception:
        log.warning("could not store dead-letter results", exc_info=True)


def _dead_letter_raw(rt: Runtime, raw: Any, error: str, attempts: int, task_id: str | None = None) -> None:
    log.error("dead letter", extra={"error": error[:300], "attempts": attempts, "task_id": task_id})
    push_dead_letter(rt.redis, rt.settings.dead_letter_key, raw, error, attempts, task_id=task_id)
    worker_metrics.dead_lettered()


def dead_letter_body(rt: Runtime, raw: Any, error: str, task_id: str | None = None) -> None:
    """A message whose body is not of the wire contract: it can never succeed, so no retry."""
    _dead_letter_raw(rt, raw, error, attempts=1, task_id=task_id)


def award(rt: Runtime, outbox_ids: list[int]) -> int:
    with session_scope(rt.settings.database_url) as session:
        return award_service.award_many(session, rt.orgs, outbox_ids, utcnow())


def apply_requests(rt: Runtime, requests: list[Any], send_awards: Callable[..., None],
                   send_apply: Callable[..., None]) -> dict[str, dict[str, Any]]:
    """Entry point of the apply task: `requests` are celery-batches SimpleRequests (kwargs of each).

    Returns what became of each message, by task id (services/message_reports.py), for its task events."""
    reports = MessageReports()
    messages = []
    for request in requests:
        task_id = getattr(request, "id", None)
        commands = as_commands(request.kwargs)
        reports.add(task_id, commands)
        if commands is None:
            error = "message body is not {'commands': [...]}"
            dead_letter_body(rt, {"args": request.args, "kwargs": request.kwargs}, error, task_id=task_id)
            reports.dead_lettered(task_id, [], f"InvalidMessage: {error}")
            continue
        attempt = request.kwargs.get("attempt", 0)
        messages.append(Message(commands, attempt if isinstance(attempt, int) else 0, task_id))

    def requeue(msg: Message, delay: float) -> None:
        send_apply(msg.commands, attempt=msg.attempt, countdown=delay)
        reports.requeued(msg.commands)

    apply_messages(rt, messages, send_awards, requeue, reports)
    return reports.as_result()
