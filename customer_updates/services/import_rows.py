"""The database side of `customers import`: which identifiers a chunk's lines hold already, and loading rows.

On PostgreSQL a chunk's keys go by COPY into a temporary staging table, and each identifier column is
looked up by its own join, so each uses its own index: the time of a chunk does not grow with the table.
One query with `mobile IN (...) OR email IN (...)` could use none of them, and read the whole table for
each chunk. The customers themselves go by binary COPY. SQLite keeps plain statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import null, select, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from customer_updates.models import tables as t
from customer_updates.rules.state import IDENTIFIERS
from customer_updates.store.sql import insert_rows, is_postgres

# What a chunk's insert may fail with: SQLAlchemy's wrapped errors (INSERT) or psycopg's own (COPY).
REFUSED = (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError)

# (org_id, identifier name or "id", value) -> the user_id holding it.
Taken = dict[tuple[int, str, str], int]

STAGING = "import_keys"


@dataclass(frozen=True)
class Keys:
    """A valid line's keys: its org, its user_id if given, and its normalised identifiers."""

    org_id: int
    user_id: int | None
    idents: dict[str, str]


def taken(session: Session, keys: Iterable[Keys]) -> Taken:
    """The active customers already holding an identifier of the chunk, and the given user_ids that exist
    (in whichever org: the key is the org the id belongs to)."""
    keys = list(keys)
    if not keys:
        return {}
    rows = _taken_postgres(session, keys) if is_postgres(session) else _taken_sqlite(session, keys)
    found: Taken = {}
    for org_id, user_id, *values in rows:
        if values[0] is None and values[1] is None and values[2] is None:
            found[(org_id, "id", str(user_id))] = user_id
            continue
        for name, value in zip(IDENTIFIERS, values, strict=True):
            if value:
                found[(org_id, name, value)] = user_id
    return found


def _lookup(column: str, condition: str) -> str:
    # LATERAL with LIMIT 1 can only run as a loop over the staging rows with an index probe each, whatever
    # the statistics say: a plain join was planned as a hash join over the whole table while its statistics
    # lagged behind the import. At most one active customer holds a value, and one customer an id.
    return (f"SELECT c.org_id, c.user_id, {'c.mobile, c.email, c.external_id' if condition else 'NULL, NULL, NULL'} "
            f"FROM {STAGING} k CROSS JOIN LATERAL (SELECT org_id, user_id, mobile, email, external_id "
            f"FROM customers x WHERE x.{column} = k.{column}{condition} LIMIT 1) c WHERE k.{column} IS NOT NULL")


# One statement text for every chunk; the user_id lookup returns no identifiers, which is how `taken` tells
# its rows apart.
LOOKUP = " UNION ALL ".join([*(_lookup(name, " AND x.org_id = k.org_id AND x.active") for name in IDENTIFIERS),
                             _lookup("user_id", "")])


def _taken_postgres(session: Session, keys: list[Keys]) -> Iterable[Any]:
    # Emptied at each commit and kept by the connection: no table created and dropped for each chunk.
    session.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} (org_id integer, user_id bigint, "
                         "mobile text, email text, external_id text) ON COMMIT DELETE ROWS"))
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {STAGING} (org_id, user_id, mobile, email, external_id) FROM STDIN "
                     "(FORMAT BINARY)") as copy:
        copy.set_types(["integer", "bigint", "text", "text", "text"])
        for key in keys:
            copy.write_row([key.org_id, key.user_id, *(key.idents.get(name) for name in IDENTIFIERS)])
    return session.execute(text(LOOKUP)).all()


def _taken_sqlite(session: Session, keys: list[Keys]) -> Iterable[Any]:
    by_org: dict[int, dict[str, set[str]]] = {}
    ids: set[int] = set()
    for key in keys:
        values = by_org.setdefault(key.org_id, {name: set() for name in IDENTIFIERS})
        for name, value in key.idents.items():
            values[name].add(value)
        if key.user_id is not None:
            ids.add(key.user_id)
    columns = (t.Customer.org_id, t.Customer.user_id, t.Customer.mobile, t.Customer.email, t.Customer.external_id)
    rows: list[Any] = []
    for org_id, values in by_org.items():
        for name, wanted in values.items():
            if wanted:  # one query per column, each on its own index
                rows += session.execute(select(*columns).where(t.Customer.org_id == org_id, t.Customer.active,
                                                               getattr(t.Customer, name).in_(wanted)))
    if ids:
        rows += session.execute(select(t.Customer.org_id, t.Customer.user_id, null(), null(), null())
                                .where(t.Customer.user_id.in_(ids)))
    return rows


def insert_customers(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows (each with the same columns, or one more, `user_id`) and commit."""
    with_ids = [row for row in rows if "user_id" in row]
    without = [row for row in rows if "user_id" not in row]
    if with_ids:
        insert_rows(session, t.Customer, with_ids)
        if is_postgres(session):
            _sequence_past(session, max(row["user_id"] for row in with_ids))
    if without:
        insert_rows(session, t.Customer, without)
    session.commit()


def _sequence_past(session: Session, top: int) -> None:
    """Move the user_id sequence past an explicit id, which does not advance it, before any row takes a value
    from it; never backwards (nextval is only spent when the sequence is behind)."""
    session.execute(text("WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('customers', 'user_id')::regclass "
                         "AS seq) SELECT setval(s.seq, :top) FROM s WHERE nextval(s.seq) <= :top"), {"top": top})
