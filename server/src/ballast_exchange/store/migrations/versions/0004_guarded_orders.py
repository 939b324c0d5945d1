"""Orders under cancel-on-disconnect, stored with the order so recovery can cancel them.

Revision ID: 0004_guarded_orders
Revises: 0003_dashboard_users
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_guarded_orders"
down_revision: str | None = "0003_dashboard_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guarded_orders",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_guarded_orders")),
    )


def downgrade() -> None:
    op.drop_table("guarded_orders")
