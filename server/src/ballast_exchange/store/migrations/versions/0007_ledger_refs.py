"""Ledger refs name trades as the API does: ``trd_7``, not the engine's ``trd:7``.

The projector writes the API's form from now on (store/projection.py ``ledger_ref``); rows
projected before are rewritten here, so every reader sees one form. Reservation entries of
those rows keep their empty market and ref: only a replay of the journal could name their
order, and new ones are projected with both.

Revision ID: 0007_ledger_refs
Revises: 0006_snapshots
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_ledger_refs"
down_revision: str | None = "0006_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SUBSTR and || mean the same on SQLite and PostgreSQL; 'trd:' is four characters.
    op.execute("UPDATE ledger_entries SET ref = 'trd_' || SUBSTR(ref, 5) WHERE ref LIKE 'trd:%'")


def downgrade() -> None:
    # After the upgrade every trade ref has the underscore (LIKE's "_" matches it too).
    op.execute("UPDATE ledger_entries SET ref = 'trd:' || SUBSTR(ref, 5) WHERE ref LIKE 'trd_%'")
