"""room for in-place (HOT) updates of customers and their fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:00:00

A batch rewrites the customers it touches. When the new row version fits on the page of the old one and
no indexed column changed, PostgreSQL updates in place ("HOT"): no new entry in any of the customer's
seven indexes. Tables filled to 100% leave no such room, so many updates went through every index
(bench/HISTORY.md). Pages written from now on keep 20% (customers) or 10% (fields, subscriptions) free;
existing pages get the room when rewritten (VACUUM FULL or pg_repack, at the operator's choice).
SQLite has no such setting: nothing to do there.

Also in models/tables.py (`postgresql_with`), so that a schema created from the models matches.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FILLFACTORS = {"customers": 80, "customer_fields": 90, "subscriptions": 90}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, fillfactor in FILLFACTORS.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in FILLFACTORS:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
