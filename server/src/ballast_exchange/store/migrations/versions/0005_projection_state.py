"""The projection's watermark: the query tables are projected behind the journal.

An existing database was projected in the same transactions as its journal, so it starts
projected through its last command.

Revision ID: 0005_projection_state
Revises: 0004_guarded_orders
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_projection_state"
down_revision: str | None = "0004_guarded_orders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("command_no", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_state")),
    )
    op.execute(
        "INSERT INTO projection_state (id, command_no) "
        "SELECT 1, COALESCE(MAX(command_no), 0) FROM journal"
    )


def downgrade() -> None:
    op.drop_table("projection_state")
