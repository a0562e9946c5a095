"""custom and extended fields and subscriptions in the customer's row

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:00:00

A batch locks and rewrites the rows of the customers it touches. Their fields and subscriptions were rows
of two tables of their own: two more queries to load them and two upserts to write them, a row version
(and its WAL) for every changed field: a large share of PostgreSQL's time for a batch (bench/HISTORY.md).
Now they are three JSON columns of `customers`, read and written with the row:

- `custom_fields`, `extended_fields`: name -> [value, ISO issued_at of the change that set it, or null]
- `subscriptions`: "CHANNEL:PRIORITY" -> [status, scope, ISO issued_at or null]

The rows of `customer_fields` and `subscriptions` are copied into them, then the tables are dropped.
The downgrade makes the tables again and copies the values back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("custom_fields", "extended_fields", "subscriptions")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# PostgreSQL: one pass over each table, grouped by customer.
_PG_FIELDS = """
UPDATE customers AS c SET custom_fields = f.custom, extended_fields = f.extended
FROM (SELECT user_id,
             json_object_agg(name, json_build_array(value, {stamp})) FILTER (WHERE kind = 'custom') AS custom,
             json_object_agg(name, json_build_array(value, {stamp})) FILTER (WHERE kind = 'extended') AS extended
      FROM customer_fields GROUP BY user_id) AS f
WHERE c.user_id = f.user_id
"""
_PG_SUBSCRIPTIONS = """
UPDATE customers AS c SET subscriptions = s.subs
FROM (SELECT user_id, json_object_agg(channel || ':' || priority, json_build_array(status, scope, {stamp})) AS subs
      FROM subscriptions GROUP BY user_id) AS s
WHERE c.user_id = s.user_id
"""
_PG_STAMP = """to_char(issued_at, 'YYYY-MM-DD"T"HH24:MI:SS.US')"""

# SQLite keeps timestamps as text ("2026-01-02 03:04:05.000000"), which datetime.fromisoformat reads.
_SQLITE_FIELDS = """
UPDATE customers SET {column} = (
    SELECT json_group_object(name, json_array(value, issued_at)) FROM customer_fields AS f
    WHERE f.user_id = customers.user_id AND f.kind = '{kind}')
WHERE user_id IN (SELECT user_id FROM customer_fields WHERE kind = '{kind}')
"""
_SQLITE_SUBSCRIPTIONS = """
UPDATE customers SET subscriptions = (
    SELECT json_group_object(channel || ':' || priority, json_array(status, scope, issued_at))
    FROM subscriptions AS s WHERE s.user_id = customers.user_id)
WHERE user_id IN (SELECT user_id FROM subscriptions)
"""


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("customers", sa.Column(column, sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FIELDS.format(stamp=_PG_STAMP))
        op.execute(_PG_SUBSCRIPTIONS.format(stamp=_PG_STAMP))
    else:
        op.execute(_SQLITE_FIELDS.format(column="custom_fields", kind="custom"))
        op.execute(_SQLITE_FIELDS.format(column="extended_fields", kind="extended"))
        op.execute(_SQLITE_SUBSCRIPTIONS)
    op.drop_table("subscriptions")
    op.drop_table("customer_fields")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "customer_fields",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=250), nullable=True),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["customers.user_id"]),
        sa.PrimaryKeyConstraint("user_id", "kind", "name"),
        postgresql_with={"fillfactor": 90},
    )
    op.create_table(
        "subscriptions",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["customers.user_id"]),
        sa.PrimaryKeyConstraint("user_id", "channel", "priority"),
        postgresql_with={"fillfactor": 90},
    )
    if postgres:
        for column, kind in (("custom_fields", "custom"), ("extended_fields", "extended")):
            op.execute(f"INSERT INTO customer_fields (user_id, kind, name, value, issued_at) "
                       f"SELECT c.user_id, '{kind}', e.key, e.value->>0, (e.value->>1)::timestamp "
                       f"FROM customers AS c, json_each(c.{column}) AS e WHERE c.{column} IS NOT NULL")
        op.execute("INSERT INTO subscriptions (user_id, channel, priority, scope, status, issued_at) "
                   "SELECT c.user_id, split_part(e.key, ':', 1), split_part(e.key, ':', 2), e.value->>1, "
                   "(e.value->>0)::integer, (e.value->>2)::timestamp "
                   "FROM customers AS c, json_each(c.subscriptions) AS e WHERE c.subscriptions IS NOT NULL")
    else:
        # Back to SQLAlchemy's text form of a timestamp (a space, not a "T", between date and time).
        for column, kind in (("custom_fields", "custom"), ("extended_fields", "extended")):
            op.execute(f"INSERT INTO customer_fields (user_id, kind, name, value, issued_at) "
                       f"SELECT c.user_id, '{kind}', e.key, json_extract(e.value, '$[0]'), "
                       f"replace(json_extract(e.value, '$[1]'), 'T', ' ') "
                       f"FROM customers AS c, json_each(c.{column}) AS e WHERE c.{column} IS NOT NULL")
        op.execute("INSERT INTO subscriptions (user_id, channel, priority, scope, status, issued_at) "
                   "SELECT c.user_id, substr(e.key, 1, instr(e.key, ':') - 1), substr(e.key, instr(e.key, ':') + 1), "
                   "json_extract(e.value, '$[1]'), json_extract(e.value, '$[0]'), "
                   "replace(json_extract(e.value, '$[2]'), 'T', ' ') "
                   "FROM customers AS c, json_each(c.subscriptions) AS e WHERE c.subscriptions IS NOT NULL")
    for column in COLUMNS:
        if postgres:
            op.drop_column("customers", column)
        else:  # SQLite 3.35 and later drop a plain column in place (a batch would copy the table)
            op.execute(f"ALTER TABLE customers DROP COLUMN {column}")
