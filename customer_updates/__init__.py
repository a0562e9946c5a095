"""customer-updates: the v1.1 "update customer details" behaviour as an event-driven Celery worker.

The public face is the producer library; everything else is reached through the CLI and the queue.
"""

from __future__ import annotations

from customer_updates.async_producer import AsyncProducer
from customer_updates.errors import (
    CustomerUpdatesError,
    EnqueueFailed,
    InvalidBody,
    NotFound,
    ProducerClosed,
    RequestIdConflict,
    UnknownOrg,
)
from customer_updates.producer import BatchReceipt, Producer

__all__ = ["AsyncProducer", "BatchReceipt", "CustomerUpdatesError", "EnqueueFailed", "InvalidBody", "NotFound",
           "Producer", "ProducerClosed", "RequestIdConflict", "UnknownOrg"]
__version__ = "0.1.0"
