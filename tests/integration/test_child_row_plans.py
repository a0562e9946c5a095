"""A batch's fields and subscriptions are looked up by index whatever PostgreSQL's statistics say.

PostgreSQL plans a prepared statement once for any parameters after a few executions, from the
statistics it has then. Statistics taken while a table was empty (a new deployment, a bench run) stay
until autoanalyze comes round; the lookup must not read the whole table meanwhile (store/sql.rows_of).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql

from customer_updates.models import tables as t
from customer_updates.store.db import get_engine, session_scope
from customer_updates.store.sql import child_rows_statement, insert_rows, rows_of

WHEN = datetime(2026, 1, 2, 3, 4, 5)
CUSTOMERS = 4_000


def _fill(url: str) -> None:
    with session_scope(url) as session:
        session.execute(insert(t.Org), [{"id": 1, "name": "Org"}])
        session.execute(insert(t.Customer), [{"user_id": i, "org_id": 1, "mobile": f"9190{i:08d}"}
                                             for i in range(1, CUSTOMERS + 1)])
        insert_rows(session, t.CustomerField, [
            {"user_id": i, "kind": "custom", "name": f"f{n}", "value": str(n), "issued_at": WHEN}
            for i in range(1, CUSTOMERS + 1) for n in range(6)])
        insert_rows(session, t.Subscription, [
            {"user_id": i, "channel": "SMS", "priority": "TRANS", "scope": "ALL", "status": 1, "issued_at": WHEN}
            for i in range(1, CUSTOMERS + 1)])


def _generic_plan(url: str, query: Any, ids: list[int]) -> str:
    """The plan PostgreSQL would keep for the prepared statement, whatever the parameters."""
    sql = str(query.compile(dialect=postgresql.psycopg.dialect())).replace("%(ids)s", "$1")
    with get_engine(url).connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE lookup(bigint[]) AS {sql}")
        rows = conn.exec_driver_sql(f"EXPLAIN EXECUTE lookup('{{{','.join(map(str, ids))}}}')").all()
        plan = "\n".join(str(row[0]) for row in rows)
        conn.exec_driver_sql("DEALLOCATE lookup")
        conn.exec_driver_sql("RESET plan_cache_mode")
    return plan


def test_fields_are_looked_up_by_index_with_statistics_taken_while_the_tables_were_empty(pg_url):
    with get_engine(pg_url).begin() as conn:
        conn.execute(text("ANALYZE customer_fields, subscriptions"))
    _fill(pg_url)
    fields, subs = t.CustomerField.__table__.c, t.Subscription.__table__.c
    field_query = child_rows_statement(fields.user_id, (fields.user_id, fields.name, fields.value), True)
    sub_query = child_rows_statement(subs.user_id, (subs.user_id, subs.channel, subs.status), True)

    for table, query in (("customer_fields", field_query), ("subscriptions", sub_query)):
        plan = _generic_plan(pg_url, query, list(range(1, 500)))
        assert f"Seq Scan on {table}" not in plan, plan
        assert "Index" in plan, plan


def test_child_rows_of_repeated_ids_come_back_once(pg_url):
    _fill(pg_url)
    fields = t.CustomerField.__table__.c
    with session_scope(pg_url) as session:
        rows = rows_of(session, fields.user_id, (fields.user_id, fields.name), [7, 7, 9, 7])
    assert sorted(rows) == sorted((uid, f"f{n}") for uid in (7, 9) for n in range(6))
