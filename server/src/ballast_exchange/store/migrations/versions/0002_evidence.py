"""Settlement evidence kept by its hash, and the end of each proposal's dispute window.

Evidence moves out of ``markets`` and ``settlements`` into ``evidence``, keyed by the SHA-256
of its canonical form. It is stored before the proposal is journaled, so every published hash
can be checked against its evidence even after a crash between the two.

Revision ID: 0002_evidence
Revises: 0001_initial
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_evidence"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("evidence_hash", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("evidence_hash", name=op.f("pk_evidence")),
    )
    # Plain ALTER TABLE (SQLite ≥ 3.35 drops columns natively): a batch copy of `markets` would
    # drop a table that orders and trades reference.
    op.drop_column("markets", "evidence")
    op.drop_column("settlements", "evidence")
    op.add_column("settlements", sa.Column("final_after", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("settlements", "final_after")
    op.add_column("settlements", sa.Column("evidence", sa.Text(), nullable=True))
    op.add_column("markets", sa.Column("evidence", sa.Text(), nullable=True))
    op.drop_table("evidence")
