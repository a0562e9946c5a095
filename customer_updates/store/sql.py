"""Small SQL helpers that keep PostgreSQL statements the same text from one batch to the next.

psycopg parses a statement's placeholders on the client and PostgreSQL plans it on the server; both are
cached by statement text. An `IN (...)` list or a multi-row `VALUES` grows with the batch, so its text is
new every time and was parsed again for each batch, a cost paid by every batch for nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, ColumnElement, Table, any_, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from customer_updates import jsontext
from customer_updates.models import tables as t

# Fewer rows than this go by one INSERT rather than COPY or ids drawn first (store/records.py), and a batch
# of fewer commands writes all its rows in one statement (write_few, services/apply.py).
FEW_ROWS = 8


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@functools.cache
def insert_statement(table: Table, postgres: bool, returning_id: bool = False,
                     skip_conflicts: bool = False) -> Any:
    """`INSERT INTO table`, made once per process and shape: a quiet system's batches of a command or two
    insert a few rows each, and making the construct again (with its cache key) cost more than its rows.
    `returning_id`: RETURNING the ids in the rows' order; `skip_conflicts`: ON CONFLICT DO NOTHING."""
    statement: Any = (pg_insert if postgres else sqlite_insert)(table)
    if skip_conflicts:
        statement = statement.on_conflict_do_nothing()
    if returning_id:
        statement = statement.returning(table.c.id, sort_by_parameter_order=True)
    return statement


def in_param(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """`column IN (:name)` for a statement made once and run with any list: on PostgreSQL
    `column = ANY(:name)` (one array parameter), elsewhere an expanding IN."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


# Made once: `text()` parses its bind parameters with a regular expression on every call.
_NEXT_IDS = text("WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(:table, :column)::regclass "
                 "AS seq) SELECT nextval(s.seq) FROM s, generate_series(1, :count)")


def next_ids(session: Session, table: str, column: str, count: int) -> list[int]:
    """`count` values of a PostgreSQL serial column's sequence, in one round trip (rows then go by COPY).

    The sequence is looked up once per call (a MATERIALIZED CTE), not once per value: the planner otherwise
    folds `nextval(pg_get_serial_sequence(...))` into every row, a catalog lookup each."""
    rows = session.execute(_NEXT_IDS, {"table": table, "column": column, "count": count})
    return [int(row[0]) for row in rows]


def _recordset(table: str, param: str = "rows") -> str:
    # The rows travel as one JSON parameter and become records of the table's own row type.
    return f'json_populate_recordset(NULL::"{table}", CAST(:{param} AS json))'


def update_rows(session: Session, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: UPDATE many rows by `key` in one statement (every row with the same columns). A JSON
    column given as None keeps its stored value: a row need not send (nor PostgreSQL parse) JSON that did
    not change.

    One round trip and one statement text, where an executemany sends a statement per row."""
    session.execute(_update_statement(table, key, tuple(rows[0])), {"rows": jsontext.dumps(rows)})


@functools.cache
def _update_statement(table: Table, key: str, names: tuple[str, ...]) -> Any:
    return text(_update_sql(table, key, names))


@functools.cache
def _update_sql(table: Table, key: str, names: tuple[str, ...], param: str = "rows") -> str:
    kept = _json_columns(table)
    assignments = ", ".join(f'"{name}" = COALESCE(v."{name}", t."{name}")' if name in kept
                            else f'"{name}" = v."{name}"' for name in names if name != key)
    source = _recordset(table.name, param)
    return f'UPDATE "{table.name}" AS t SET {assignments} FROM {source} AS v WHERE t."{key}" = v."{key}"'


@functools.cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(column.name for column in table.columns if isinstance(column.type, JSON))


def insert_rows(session: Session, model: type[t.Base], rows: list[dict[str, Any]]) -> None:
    """Append rows (audit, merges, idempotency records). On PostgreSQL with COPY, in the session's
    transaction: one round trip and no SQL to parse, where an INSERT per row (or a multi-row INSERT
    psycopg has to split into placeholders) was the largest cost of a batch.

    COPY's binary format: the values go as they are in memory (no text to format, none for PostgreSQL
    to parse), which costs both sides less than the text format."""
    if not rows:
        return
    table: Table = model.__table__  # type: ignore[assignment]
    # COPY costs two round trips (start, then end): for a row or two an INSERT is cheaper.
    if not is_postgres(session) or len(rows) < FEW_ROWS:
        session.execute(insert_statement(table, is_postgres(session)), [_plain(row) for row in rows])
        return
    columns = tuple(rows[0])
    types = copy_types(table, columns)
    wrap = [name == "json" for name in types]
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    names = ", ".join(f'"{name}"' for name in columns)
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row([_json(row.get(name)) if is_json else row.get(name)
                            for name, is_json in zip(columns, wrap, strict=True)])


def write_few(session: Session, update: tuple[Table, str, list[dict[str, Any]]],
              inserts: Sequence[tuple[Table, list[dict[str, Any]]]],
              returning: tuple[Table, list[dict[str, Any]]]) -> list[int]:
    """PostgreSQL: update a few rows by key (`update_rows`) and insert a few rows into several tables, in one
    statement and one round trip; returns the ids `returning`'s rows were given, in their order.

    A quiet system's batch of a command or two writes its customer, audit, idempotency and outbox rows: a
    statement each was four, and each statement's client-side cost was more than its rows'. Each table's rows
    travel as one JSON parameter (data-modifying CTEs, all on the transaction's snapshot, so the parts must
    not depend on each other); the statement's text depends only on the tables and columns, so it is
    prepared once."""
    updated_table, key, updated = update
    present = [(table, rows) for table, rows in (*inserts, returning) if rows]
    if not present and not updated:
        return []
    shapes = tuple((table, _columns(rows)) for table, rows in present)
    params = {f"rows{i}": jsontext.dumps_rows(rows) for i, (_, rows) in enumerate(present)}
    changes: tuple[Table, str, tuple[str, ...]] | None = None
    if updated:
        changes = (updated_table, key, tuple(updated[0]))
        params["updated"] = jsontext.dumps(updated)
    result = session.execute(_few_rows_statement(changes, shapes, bool(returning[1])), params)
    # Ids are drawn in the rows' order (ORDER BY ordinality), so ascending ids are the rows in order.
    return sorted(result.scalars()) if returning[1] else []


def _columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return tuple(names)


@functools.cache
def _few_rows_statement(changes: tuple[Table, str, tuple[str, ...]] | None,
                        shapes: tuple[tuple[Table, tuple[str, ...]], ...], returning: bool) -> Any:
    def insert(index: int, table: Table, columns: tuple[str, ...], order: bool) -> str:
        names = ", ".join(f'"{name}"' for name in columns)
        values = ", ".join(f'v."{name}"' for name in columns)
        source = _recordset(table.name, f"rows{index}")
        if order:
            return (f'INSERT INTO "{table.name}" ({names}) SELECT {values} FROM {source} WITH ORDINALITY AS v '
                    f'ORDER BY v.ordinality RETURNING "{table.name}".id')
        return f'INSERT INTO "{table.name}" ({names}) SELECT {values} FROM {source} AS v'

    parts = [_update_sql(*changes, param="updated")] if changes else []
    last = len(shapes) - 1
    parts += [insert(i, table, columns, returning and i == last) for i, (table, columns) in enumerate(shapes)]
    *first, final = parts
    ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(first))
    return text(f"WITH {ctes} {final}" if ctes else final)


@functools.cache
def copy_types(table: Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    """PostgreSQL's names of the columns' types, which a binary COPY must be told: `integer`, `bigint`,
    `varchar`, `timestamp without time zone`, `json`... (the table's DDL, without lengths)."""
    dialect = postgresql.dialect()
    return tuple(table.c[name].type.compile(dialect=dialect).split("(")[0].lower() for name in columns)


def _json(value: Any) -> Any:
    """A JSON column's value for COPY: text made already is written as it is."""
    if value is None:
        return None
    # Imported here: psycopg is the `postgres` extra, and SQLite deployments run without it.
    from psycopg.types.json import Json

    if isinstance(value, jsontext.Dumped):
        return Json(value.text, dumps=_as_is)
    return Json(value, dumps=jsontext.dumps)


def _as_is(text: str) -> str:
    return text


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """The row for SQLAlchemy, whose JSON type serialises values itself."""
    return {name: value.value if isinstance(value, jsontext.Dumped) else value for name, value in row.items()}
