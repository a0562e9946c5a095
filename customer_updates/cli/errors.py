"""One line for a failed command: what went wrong and what to do, never a traceback, personal data or secret.

An exception's own text can carry SQL parameters (names, mobiles, password hashes) or a connection URL, so
only the text of errors this package raises on purpose, and of file errors, is shown; for the rest the
line names the kind of failure. `customer-updates --debug ...` lets the traceback through instead.
"""

from __future__ import annotations

import redis
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from customer_updates.errors import CustomerUpdatesError

_NO_SCHEMA = ("no such table", "does not exist", "undefinedtable")


def describe(exc: BaseException) -> str:
    """The one line for `exc`."""
    if isinstance(exc, CustomerUpdatesError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return "the file is not UTF-8 text"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    if isinstance(exc, sa_exc.DBAPIError):
        cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
        if any(mark in str(exc.orig).lower() or mark in cause.lower() for mark in _NO_SCHEMA):
            return f"the database has no schema ({cause}): run `customer-updates db upgrade` (DATABASE_URL)"
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return f"the database is not reachable ({cause}): check DATABASE_URL and that the server runs"
        return f"the database refused the command ({cause})"
    if isinstance(exc, sa_exc.ArgumentError):
        return "DATABASE_URL is not a valid database URL"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"Redis is not reachable ({type(exc).__name__}): check REDIS_URL and that the server runs"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]  # its loc and msg only: the error's own text repeats the input value
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid {exc.title}: {where}: {first['msg']} ({exc.error_count()} errors)"
    return f"unexpected {type(exc).__name__}"
