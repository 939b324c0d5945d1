"""Armed dead-man switches (POST /v1/heartbeat), so recovery honours a deadline that lapsed.

Revision ID: 0009_dead_man_switches
Revises: 0008_position_settlements
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_dead_man_switches"
down_revision: str | None = "0008_position_settlements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_man_switches",
        sa.Column("api_key", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("timeout_ms", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("api_key", name=op.f("pk_dead_man_switches")),
    )


def downgrade() -> None:
    op.drop_table("dead_man_switches")
