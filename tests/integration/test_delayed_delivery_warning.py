"""A retry sent with a countdown to RabbitMQ's quorum queues: Celery warns about its native delayed delivery,
which the worker leaves out on purpose, and the worker's log drops that warning (ops/logs.py)."""

from __future__ import annotations

import json
import logging

import pytest

from customer_updates.messaging.broker import producer_app
from customer_updates.messaging.sending import send_apply
from customer_updates.ops import logs
from customer_updates.ops.logs import CELERY_DELAYED_DELIVERY_WARNING, DropDelayedDeliveryWarning
from customer_updates.settings import Settings


def test_celery_still_warns_in_the_words_the_log_filter_drops(rabbitmq_url: str, pg_url: str, redis_url: str,
                                                              caplog: pytest.LogCaptureFixture):
    celery = producer_app(Settings(DATABASE_URL=pg_url, REDIS_URL=redis_url, broker_url=rabbitmq_url))
    with caplog.at_level(logging.WARNING, logger="celery"):
        send_apply([{"org_id": 1, "request_id": "r-1"}], celery=celery, attempt=1, countdown=0.5)
    warnings = [r for r in caplog.records if r.name.startswith("celery") and r.levelno == logging.WARNING]
    # If an upgrade of Celery rewords the warning or stops giving it, this fails: check ops/logs.py's filter.
    assert [r.getMessage().startswith(CELERY_DELAYED_DELIVERY_WARNING) for r in warnings] == [True]
    assert not DropDelayedDeliveryWarning().filter(warnings[0])


def test_the_log_filter_keeps_every_other_line():
    record = logging.LogRecord("celery.app.base", logging.WARNING, __file__, 1, "Direct exchanges are %s", ("fine",),
                               None)
    assert DropDelayedDeliveryWarning().filter(record)


def test_the_worker_log_drops_the_warning_and_keeps_its_neighbours(capsys: pytest.CaptureFixture[str]):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("INFO", as_json=True)
        celery_log = logging.getLogger("celery.app.base")
        celery_log.warning(CELERY_DELAYED_DELIVERY_WARNING + ".\ncustomer_updates is a direct exchange")
        celery_log.warning("another warning")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["another warning"]
