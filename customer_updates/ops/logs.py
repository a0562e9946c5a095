"""Structured logs: one JSON object per line. Callers pass ids and outcomes in `extra`, never personal
data (names, mobiles, emails stay out of logs; request ids and user ids are enough to trace)."""

from __future__ import annotations

import logging
import time
from typing import Any

from customer_updates import jsontext

# color_message: uvicorn's copy of the message with ANSI colour codes, for its own console formatter only.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["exc"] = self.formatException(record.exc_info)[-2000:]
        return jsontext.dumps(entry)


# kombu's and Celery's log lines that quote a whole message (its body, headers or an exception that
# holds them): the worker handles these messages itself, so only the line's first words are kept.
_QUOTES_MESSAGES = ("Could not restore message", "full contents of the message body", "Received unregistered task",
                    "Received invalid task message", "Can't decode message body", "Unrecoverable error")


class HideMessageBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.msg if isinstance(record.msg, str) else ""
        if any(part in text for part in _QUOTES_MESSAGES):
            record.msg = text.split(":", 1)[0].split("\n", 1)[0] + " (message not shown: it may hold personal data)"
            record.args = ()
            if record.exc_info and record.exc_info[0] is not None:
                record.__dict__["exc_type"] = record.exc_info[0].__name__
            record.exc_info, record.exc_text = None, None
        return True


# Celery's warning for each message sent with a countdown to a quorum queue behind a direct exchange: its
# native delayed delivery needs topic exchanges. The worker leaves that delivery out (worker/consumer.py) and
# holds such a message unacknowledged until it is due (celery-batches' ETA handling), so the three lines it
# adds to every retry would only alarm. tests/integration/test_delayed_delivery_warning.py checks that Celery
# still says it this way.
CELERY_DELAYED_DELIVERY_WARNING = "Direct exchanges are not supported with native delayed delivery"


class DropDelayedDeliveryWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(CELERY_DELAYED_DELIVERY_WARNING))


def configure(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(HideMessageBodies())
    handler.addFilter(DropDelayedDeliveryWarning())
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Warnings (Celery's SecurityWarning, deprecations) as log lines too, not as text on stderr.
    logging.captureWarnings(True)
