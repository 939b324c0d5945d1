"""Engine snapshots: recovery restores the latest one and replays only the journal after it.

Revision ID: 0006_snapshots
Revises: 0005_projection_state
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_snapshots"
down_revision: str | None = "0005_projection_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("command_no", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("engine", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("command_no", name=op.f("pk_snapshots")),
    )
    op.create_table(
        "snapshot_chunks",
        sa.Column("command_no", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chunk_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("command_no", "chunk_no", name=op.f("pk_snapshot_chunks")),
    )


def downgrade() -> None:
    op.drop_table("snapshot_chunks")
    op.drop_table("snapshots")
