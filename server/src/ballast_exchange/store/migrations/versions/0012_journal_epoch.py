"""The sequencer lease's epoch on each journal row.

Revision ID: 0012_journal_epoch
Revises: 0011_order_groups
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_journal_epoch"
down_revision: str | None = "0011_order_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before this revision, and every row on SQLite, carry no epoch.
    op.add_column("journal", sa.Column("epoch", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("epoch")
