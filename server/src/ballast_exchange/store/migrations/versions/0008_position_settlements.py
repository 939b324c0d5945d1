"""Settled positions per account, so a position stays in the account's history once paid out.

New finalizations are projected from their events (store/projection.py). A database that has
finalized settlements already is backfilled here from what its tables hold: the finalize's
``settlement`` and ``settlement_pnl`` ledger entries (ref ``settle:<market>``) give each paid
account, its returned collateral and its payout; its fills give the size it held; its
``realized_pnl`` and ``settlement_pnl`` entries in that market give its realized PnL. The one
position this cannot see is one that moved no money (collateral 0 and payout 0: a long bought
at the floor that settled there); a re-projection from the journal includes it.

Revision ID: 0008_position_settlements
Revises: 0007_ledger_refs
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_position_settlements"
down_revision: str | None = "0007_ledger_refs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "position_settlements",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("payout", sa.BigInteger(), nullable=False),
        sa.Column("realized_pnl", sa.BigInteger(), nullable=False),
        sa.Column("settled_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.market_id"],
            name=op.f("fk_position_settlements_market_id_markets"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_position_settlements")),
        sa.UniqueConstraint(
            "account_id", "market_id", name=op.f("uq_position_settlements_account_id_market_id")
        ),
    )
    op.create_index(
        "ix_position_settlements_account", "position_settlements", ["account_id", "seq"]
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index("ix_position_settlements_account", table_name="position_settlements")
    op.drop_table("position_settlements")


# One statement, so the offline SQL script (``alembic upgrade --sql``) carries it too. Per
# account and finalized market: its settlement entries (the PositionChanged that zeroed the
# position follows its last one, hence seq + 1), its net fills, its realized PnL in the market.
BACKFILL = """
INSERT INTO position_settlements
    (seq, account_id, market_id, value, size, cost, payout, realized_pnl, settled_at)
SELECT
    paid.seq + 1, paid.account_id, paid.market_id, s.value,
    COALESCE((
        SELECT SUM(CASE WHEN (t.taker_account_id = paid.account_id) = (t.taker_side = 'buy')
                   THEN t.size ELSE -t.size END)
        FROM trades t
        WHERE t.market_id = paid.market_id
          AND (t.taker_account_id = paid.account_id OR t.maker_account_id = paid.account_id)
    ), 0),
    paid.cost, paid.cost + paid.gain,
    COALESCE((
        SELECT SUM(CASE WHEN l.credit = 'cash:' || l.account_id THEN l.amount ELSE -l.amount END)
        FROM ledger_entries l
        WHERE l.account_id = paid.account_id AND l.market_id = paid.market_id
          AND l.kind IN ('realized_pnl', 'settlement_pnl')
    ), 0),
    s.decided_at
FROM (
    SELECT e.account_id, f.market_id, MAX(e.seq) AS seq,
        SUM(CASE WHEN e.kind = 'settlement' THEN e.amount ELSE 0 END) AS cost,
        SUM(CASE WHEN e.kind = 'settlement' THEN 0
                 WHEN e.credit = 'cash:' || e.account_id THEN e.amount
                 ELSE -e.amount END) AS gain
    FROM ledger_entries e
    JOIN settlements f ON f.outcome = 'finalized' AND e.ref = 'settle:' || f.market_id
    WHERE e.kind IN ('settlement', 'settlement_pnl') AND e.account_id IS NOT NULL
    GROUP BY e.account_id, f.market_id
) paid
JOIN settlements s ON s.market_id = paid.market_id AND s.outcome = 'finalized'
"""
