"""Small SQL helpers that keep PostgreSQL statements the same text from one batch to the next.

psycopg parses a statement's placeholders on the client and PostgreSQL plans it on the server; both are
cached by statement text. An `IN (...)` list or a multi-row `VALUES` grows with the batch, so its text is
new every time and was parsed again for each batch (a tenth of a worker's time, see bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter whatever the count."""
    values = list(values)
    if is_postgres(session):
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def next_ids(session: Session, table: str, column: str, count: int) -> list[int]:
    """`count` values of a PostgreSQL serial column's sequence, in one round trip (rows then go by COPY)."""
    rows = session.execute(text("SELECT nextval(pg_get_serial_sequence(:table, :column)) "
                                "FROM generate_series(1, :count)"),
                           {"table": table, "column": column, "count": count})
    return [int(row[0]) for row in rows]
