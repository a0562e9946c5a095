"""Messages on the queue (the wire contract of DESIGN §3): protocol 2, JSON, kwargs {"commands": [...]}.

`kwargsrepr` is what Flower and worker logs show of a message: it is masked, so no mobile, email or
name leaves the payload itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import Celery

from customer_updates.worker import APPLY_TASK, AWARD_TASK, SIDE_EFFECTS_QUEUE, UPDATES_QUEUE, app

PERSONAL = ("mobile", "email", "firstname", "lastname", "external_id")


def mask_value(name: str, value: Any) -> str:
    text = str(value)
    if name == "email" and "@" in text:
        return "***@" + text.split("@", 1)[1][:40]
    if name == "mobile":
        return "*" * max(0, len(text) - 2) + text[-2:]
    return "***"


def mask_customer(customer: Any) -> Any:
    if not isinstance(customer, dict):
        return "<not an object>"
    masked: dict[str, Any] = {}
    for key, value in customer.items():
        if key in PERSONAL and value not in (None, ""):
            masked[key] = mask_value(key, value)
        elif key in ("custom_fields", "extended_fields"):
            masked[key] = "<fields>"
        else:
            masked[key] = value
    return masked


def masked_repr(commands: Iterable[Any]) -> str:
    shown = []
    for command in commands:
        if isinstance(command, dict):
            shown.append({"org_id": command.get("org_id"), "request_id": command.get("request_id"),
                          "customer": mask_customer(command.get("customer"))})
        else:
            shown.append("<not an object>")
    return repr({"commands": shown})[:1024]


def send_apply(commands: list[Any], attempt: int = 0, countdown: float | None = None,
               producer: Any = None, celery: Celery | None = None) -> None:
    kwargs: dict[str, Any] = {"commands": commands}
    if attempt:
        kwargs["attempt"] = attempt
    (celery or app).send_task(APPLY_TASK, kwargs=kwargs, queue=UPDATES_QUEUE, countdown=countdown,
                  kwargsrepr=masked_repr(commands), argsrepr="()", producer=producer)


def send_awards(outbox_ids: list[int]) -> None:
    with app.producer_or_acquire() as producer:
        for outbox_id in outbox_ids:
            app.send_task(AWARD_TASK, args=(outbox_id,), queue=SIDE_EFFECTS_QUEUE, producer=producer)


def publish_many(messages: list[list[Any]], celery: Celery | None = None) -> None:
    """Publish several apply messages over one broker connection."""
    celery = celery or app
    with celery.producer_or_acquire() as producer:
        for commands in messages:
            send_apply(commands, producer=producer, celery=celery)
