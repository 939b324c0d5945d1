"""Market discovery: a category, tags, a series and an event on each market.

Descriptive columns like the name and question, written by the operator's API and the sandbox
catalogue (``upsert_market_details``), never by events. Existing markets start without them:
the sandbox fills its catalogue markets in at its next start, an operator through
``PATCH /v1/admin/markets/{id}``.

Revision ID: 0010_market_discovery
Revises: 0009_dead_man_switches
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_market_discovery"
down_revision: str | None = "0009_dead_man_switches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("category", "tags", "series_id", "series_title", "event_id", "event_title")


# Plain ALTER TABLE on both databases (SQLite >= 3.35 drops columns natively): a batch copy of
# `markets` would drop a table that orders and trades reference.
def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("markets", sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("markets", name)
