"""Order groups with a contract limit, and the group each order was placed in.

Revision ID: 0011_order_groups
Revises: 0010_market_discovery
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_order_groups"
down_revision: str | None = "0010_market_discovery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_groups",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("max_filled_size", sa.BigInteger(), nullable=False),
        sa.Column("window_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("triggered_at", sa.BigInteger(), nullable=True),
        sa.Column("reset_at", sa.BigInteger(), nullable=True),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_order_groups")),
    )
    op.create_index("ix_order_groups_account", "order_groups", ["account_id", "created_at"])
    # Plain ALTER TABLE on both databases: a batch copy of `orders` would drop a referenced table.
    # Orders placed before this revision were in no group.
    op.add_column("orders", sa.Column("order_group_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "order_group_id")
    op.drop_index("ix_order_groups_account", table_name="order_groups")
    op.drop_table("order_groups")
