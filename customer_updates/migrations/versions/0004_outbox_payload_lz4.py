"""outbox payloads compressed with lz4 (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 08:00:00

A batch's events are one outbox row (`events`, store/records.insert_outbox): a large JSON value,
which PostgreSQL compresses as it moves it out of line. lz4 does that in less of the server's time than
its default method, pglz (bench/HISTORY.md). Only values written from now on use it; the old ones stay
readable.

Servers built without lz4 (or before PostgreSQL 14) keep pglz: the change is skipped with a notice.
SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _set_compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
DO $$
BEGIN
  ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION {method};
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'outbox.payload keeps its compression: %', SQLERRM;
END $$""")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("default")
