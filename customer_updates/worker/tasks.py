"""Thin Celery tasks: translate a message into a call of a service, nothing else."""

from __future__ import annotations

from typing import Any

from celery_batches import SimpleRequest

from customer_updates.messaging import sending
from customer_updates.messaging.dead_letters import purge_dead_letters
from customer_updates.messaging.names import APPLY_TASK, AWARD_TASK, PURGE_TASK, RELAY_TASK
from customer_updates.models.commands import utcnow
from customer_updates.services import resources, worker_messages
from customer_updates.services.publish import relay
from customer_updates.settings import get_settings
from customer_updates.store.db import session_scope
from customer_updates.store.records import purge_records, retention_cutoff
from customer_updates.worker.batching import HandsOverRequest, PacedBatches
from customer_updates.worker.celery_app import app, collect_after_batch


def send_awards(outbox_ids: list[int], parent_id: str | None = None) -> None:
    sending.send_awards(outbox_ids, celery=app, parent_id=parent_id)


def send_apply(commands: list[Any], attempt: int = 0, countdown: float | None = None) -> None:
    sending.send_apply(commands, celery=app, attempt=attempt, countdown=countdown)


class _ApplyBatches(PacedBatches):
    """Consumer-side batching: the messages a worker reserved are applied in one transaction (with
    per-message task events, which celery-batches does not send and Flower needs)."""

    # From the settings the worker process starts with (the class is made when tasks are imported).
    flush_every = get_settings().worker_flush_every
    flush_interval = get_settings().worker_flush_interval


class _AfterBatches(HandsOverRequest):
    batches_task = APPLY_TASK


@app.task(name=APPLY_TASK, base=_ApplyBatches, acks_late=True, reject_on_worker_lost=True)
def apply_updates(requests: list[SimpleRequest]) -> dict[str, dict[str, Any]]:
    """At least once: acked after the batch returns; idempotency records make redelivery apply nothing.

    Returns each message's report by task id, which the worker's main process sends as its task event."""
    rt = resources.current()
    try:
        return worker_messages.apply_requests(rt, requests, send_awards=send_awards, send_apply=send_apply)
    finally:
        if rt.settings.worker_gc_threshold > 0:
            # With rare automatic collections (celery_app.tune_gc) the cycles a batch leaves would pile up.
            collect_after_batch()


# max_retries=None: Celery would stop at its default of 3 retries; `may_retry` (the retry budget) decides.
@app.task(name=AWARD_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None,
          Request=_AfterBatches)
def award_points(self: Any, outbox_id: int | None = None, outbox_ids: list[int] | None = None) -> Any:
    """At least once; safe because the outbox rows are marked done in the awards' own transaction.

    `outbox_ids` carries the awards of one update transaction; `outbox_id` (one award) is still accepted
    from messages sent before awards travelled together.

    Transient errors retry with backoff: a failed task is acked, and the relay would republish it only
    minutes later (it waits that long before it treats a published award as lost).
    """
    rt = resources.current()
    try:
        return worker_messages.award(rt, list(outbox_ids or []) + ([outbox_id] if outbox_id is not None else []))
    except worker_messages.TRANSIENT as exc:
        retries = self.request.retries or 0
        if not worker_messages.may_retry(rt.settings, retries):
            raise  # acked as failed; the relay republishes awards still not done, minutes later
        delay = worker_messages.backoff(rt.settings.retry_backoff_base, rt.settings.retry_backoff_max, retries)
        raise self.retry(exc=exc, countdown=delay) from exc


@app.task(name=RELAY_TASK, acks_late=True, Request=_AfterBatches)
def relay_outbox() -> int:
    """Republishes outbox rows a worker committed but did not confirm; repeating it is harmless."""
    rt = resources.current()
    with session_scope(rt.settings.database_url) as session:
        return relay(session, rt.redis, rt.settings, send_awards, utcnow())


@app.task(name=PURGE_TASK, acks_late=True, Request=_AfterBatches)
def purge_old_records() -> int:
    rt = resources.current()
    with session_scope(rt.settings.database_url) as session:
        purged = purge_records(session, retention_cutoff(utcnow(), rt.settings.idempotency_retention_days))
    if rt.settings.dead_letter_retention_days > 0:
        purge_dead_letters(rt.redis, rt.settings.dead_letter_key, rt.settings.dead_letter_retention_days * 86400)
    return purged
