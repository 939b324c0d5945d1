"""Settled positions: projected from a finalize's events, and backfilled by migration 0008
from the tables of a database that settled before it, to the same rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ballast_exchange.domain import MarketStatus
from ballast_exchange.domain import commands as c
from ballast_exchange.store import Database
from ballast_exchange.store.schema import position_settlements
from tests.store.helpers import Recorder, random_session, scripted, store_in_batches


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        query = select(position_settlements).order_by(position_settlements.c.seq)
        return [dict(row) for row in conn.execute(query).mappings()]


def test_projection_and_backfill_agree(db_url: str) -> None:
    rec = Recorder()
    scripted(rec)
    random_session(rec, seed=19, steps=400)
    t = 10**12
    for market_id, value in (("m1", 0), ("m2", 61_700_000)):  # a binary NO, an index mid-range
        rec.run(c.ChangeMarketStatus(t, market_id, MarketStatus.CLOSED))
        rec.run(c.ProposeSettlement(t + 1, market_id, value, "c" * 64, "oracle"))
        rec.run(c.FinalizeSettlement(t + 2, market_id))
        t += 10
    db = Database(db_url)
    try:
        db.upgrade()
        store_in_batches(db, rec.items, [1, 7, 64])
        projected = _rows(db)
        paid = {
            (e.account_id, e.market_id)
            for item in rec.items
            if type(item.command).__name__ == "FinalizeSettlement"
            for e in item.events
            if type(e).__name__ == "PositionChanged"
        }
        assert {(r["account_id"], r["market_id"]) for r in projected} == paid
        assert {r["market_id"] for r in projected} == {"idx", "m1", "m2"}
        assert all(r["size"] != 0 for r in projected)
        for row in projected:  # the payout is the settled value on the side held
            assert row["payout"] >= 0 and row["cost"] >= 0

        db.downgrade("0007_ledger_refs")  # a database from before the table
        db.upgrade()  # 0008 backfills it from the ledger and the fills
        assert _rows(db) == projected
    finally:
        db.dispose()
