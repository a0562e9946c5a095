"""Exceptions raised to callers of the library and the CLI.

    CustomerUpdatesError
    ├── InvalidBody        the body or envelope given to the producer is not of the contract
    ├── RequestIdConflict  409: a request id whose stored result was made for another payload
    ├── UnknownOrg         a command names an org that is not loaded
    ├── NotFound           a customer, result or batch does not exist (yet)
    ├── ProducerClosed     a send on a closed producer
    └── EnqueueFailed      buffered commands that did not reach the broker

Rule failures are not exceptions for callers: they are stored results with a SPEC code.
"""

from __future__ import annotations


class CustomerUpdatesError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidBody(CustomerUpdatesError, ValueError):
    pass


class RequestIdConflict(CustomerUpdatesError):
    """409 (SPEC §6): the request id was already used with a different payload. Nothing was enqueued."""

    def __init__(self, org_id: int, request_ids: list[str]) -> None:
        self.org_id = org_id
        self.request_ids = request_ids
        shown = ", ".join(request_ids[:5]) + (" ..." if len(request_ids) > 5 else "")
        super().__init__(f"409 Conflict: request id already used with a different payload (org {org_id}: "
                         f"{shown}); nothing was enqueued")


class UnknownOrg(CustomerUpdatesError):
    pass


class NotFound(CustomerUpdatesError):
    pass


class ProducerClosed(CustomerUpdatesError, RuntimeError):
    """The producer was closed: it sends nothing more."""


class EnqueueFailed(CustomerUpdatesError):
    """Buffered commands that did not reach Redis (raised by `flush()` or `close()`): none of them was
    enqueued; `request_ids` names them and `__cause__` (or `errors`) says why."""

    def __init__(self, request_ids: list[str], errors: list[BaseException]) -> None:
        self.request_ids = request_ids
        self.errors = errors
        shown = ", ".join(request_ids[:5]) + (" ..." if len(request_ids) > 5 else "")
        super().__init__(f"{len(request_ids)} buffered command(s) not enqueued ({shown}): {errors[0]!r}")
