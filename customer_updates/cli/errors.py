"""One line for a failed command: what went wrong and what to do, never a traceback, personal data or secret.

An exception's own text can carry SQL parameters (names, mobiles, password hashes) or a connection URL, so
only the text of errors this package raises on purpose, and of file errors, is shown; for the rest the
line names the kind of failure. `customer-updates --debug ...` lets the traceback through instead.
"""

from __future__ import annotations

import sys

import redis
from pydantic import ValidationError

from customer_updates.errors import CustomerUpdatesError

_NO_SCHEMA = ("no such table", "does not exist", "undefinedtable")

# The extra that installs each optional top-level module (pyproject.toml): a bare install is the producer.
EXTRA_OF_MODULE = {
    "sqlalchemy": "worker", "alembic": "worker", "yaml": "worker", "celery_batches": "worker", "re2": "worker",
    "prometheus_client": "worker", "psycopg": "postgres", "fastapi": "web", "starlette": "web",
    "uvicorn": "web", "limits": "web", "xmltodict": "web", "defusedxml": "web", "fastapi_offline": "web",
    "flower": "flower",
    "fakeredis": "demo", "lupa": "demo",
}


def missing_extra(exc: BaseException) -> str | None:
    """The line for a module of an extra that is not installed, or None."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    extra = EXTRA_OF_MODULE.get(exc.name.split(".")[0])
    if extra is None:
        return None
    return (f"this command needs the `{extra}` extra ({exc.name} is not installed): "
            f"pip install 'customer-updates[{extra}]'")


def describe(exc: BaseException) -> str:
    """The one line for `exc`."""
    if isinstance(exc, CustomerUpdatesError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return "the file is not UTF-8 text"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    needs = missing_extra(exc)
    if needs is not None:
        return needs
    database = _database_error(exc) if "sqlalchemy" in sys.modules else None  # none in a producer-only install
    if database is not None:
        return database
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"Redis is not reachable ({type(exc).__name__}): check REDIS_URL and that the server runs"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]  # its loc and msg only: the error's own text repeats the input value
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid {exc.title}: {where}: {first['msg']} ({exc.error_count()} errors)"
    return f"unexpected {type(exc).__name__}"


def _database_error(exc: BaseException) -> str | None:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError):
        cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
        text = str(exc.orig).lower()
        if "database" in text and "does not exist" in text and "relation" not in text:
            return (f"the database does not exist ({cause}): create it (e.g. `createdb customer_updates`), "
                    "then run `customer-updates db upgrade` (DATABASE_URL)")
        if any(mark in text or mark in cause.lower() for mark in _NO_SCHEMA):
            return f"the database has no schema ({cause}): run `customer-updates db upgrade` (DATABASE_URL)"
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return f"the database is not reachable ({cause}): check DATABASE_URL and that the server runs"
        return f"the database refused the command ({cause})"
    if isinstance(exc, sa_exc.ArgumentError):
        return "DATABASE_URL is not a valid database URL"
    return None
