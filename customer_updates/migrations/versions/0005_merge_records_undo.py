"""merge records: what moved per field, issued_at, undone by whom; a victim may be merged again

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00

An unmerge (SPEC §4) gives a victim back what the merge took; the record says per field what moved
(`moved`) and is then marked undone (`undone_at`, `undone_request_id`, `undone_user_context`). A victim
made active again can be merged again, so `victim_id` is no longer unique: the newest record is its merge.
Downgrading needs at most one record per victim (delete the undone ones first).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite's unique constraint from 0001 has no name; batch mode names it by this convention to drop it.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name() -> str:
    return "merges_victim_id_key" if op.get_bind().dialect.name == "postgresql" else "uq_merges_victim_id"


def upgrade() -> None:
    with op.batch_alter_table("merges", naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint(_unique_name(), type_="unique")
        batch_op.add_column(sa.Column("issued_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("moved", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("undone_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("undone_request_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("undone_user_context", sa.JSON(), nullable=True))
        batch_op.create_index("ix_merges_victim_id", ["victim_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("merges", naming_convention=_NAMES) as batch_op:
        batch_op.drop_index("ix_merges_victim_id")
        for name in ("undone_user_context", "undone_request_id", "undone_at", "moved", "issued_at"):
            batch_op.drop_column(name)
        batch_op.create_unique_constraint(_unique_name(), ["victim_id"])
