"""The ledger names things as the rest of the API does, over real HTTP on both databases: a
fill's entries carry its trade id (``trd_7``, as ``/fills`` shows it, never the engine's
``trd:7``), and a reservation or its release names its market and its order (``ord_…``).
Rows stored before this rule are rewritten by migration 0007 and read the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import insert

from ballast_exchange.store import Database, queries
from ballast_exchange.store.schema import ledger_entries
from tests.databases import fresh_database
from tests.live_server import LiveServer
from tests.signed_client import Admin, SignedClient


def ledger(client: SignedClient, kind: str | None = None) -> list[dict[str, Any]]:
    response = client.get("/account/ledger?limit=1000" + (f"&kind={kind}" if kind else ""))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_fills_and_reservations_name_their_trade_order_and_market(
    server: LiveServer, admin: Admin
) -> None:
    admin.market("refs", taker_fee_bps=20)
    maker, taker = admin.account("maker"), admin.account("taker")
    resting = maker.post(
        "/orders", {"market_id": "refs", "side": "buy", "type": "limit", "price": "0.4", "size": 5}
    )
    assert resting.status_code == 201, resting.text
    order_id = resting.json()["order_id"]
    (reserve,) = [e for e in ledger(maker) if e["kind"] == "reserve"]
    assert (reserve["market_id"], reserve["ref"]) == ("refs", order_id)

    taken = taker.post(
        "/orders", {"market_id": "refs", "side": "sell", "type": "limit", "price": "0.4", "size": 2}
    )
    assert taken.status_code == 201, taken.text
    (fill,) = taker.get("/fills").json()["fills"]
    trade_id = fill["trade_id"]
    assert trade_id.startswith("trd_")
    moved = [e for e in ledger(taker) if e["kind"] in ("collateral_lock", "fee")]
    assert {e["kind"] for e in moved} == {"collateral_lock", "fee"}
    assert all((e["ref"], e["market_id"]) == (trade_id, "refs") for e in moved), moved
    assert {e["ref"] for e in ledger(maker, kind="collateral_lock")} == {trade_id}

    canceled = maker.delete(f"/orders/{order_id}")
    assert canceled.status_code == 200, canceled.text
    releases = ledger(maker, kind="release")
    assert releases and all((e["market_id"], e["ref"]) == ("refs", order_id) for e in releases)
    # No entry of either account is left without its market and ref.
    for entry in ledger(maker) + ledger(taker):
        if entry["kind"] not in ("deposit", "withdrawal"):
            assert entry["market_id"] == "refs" and entry["ref"], entry
            assert ":" not in entry["ref"], entry


def test_rows_stored_before_are_rewritten_by_the_migration(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        db = Database(url)
        try:
            command.upgrade(db.alembic_config(), "0006_snapshots")
            row = {
                "account_id": "acc_old",
                "market_id": "old",
                "debit": "cash:acc_old",
                "credit": "fees:old",
                "amount": 10,
                "kind": "fee",
                "created_at": 1,
            }
            with db.engine.begin() as conn:
                conn.execute(
                    insert(ledger_entries),
                    [{**row, "seq": 1, "ref": "trd:41"}, {**row, "seq": 2, "ref": "admin"}],
                )
            db.upgrade()
            with db.engine.connect() as conn:
                page = queries.list_ledger(conn, "acc_old", limit=10)
            assert [entry["ref"] for entry in page.items] == ["admin", "trd_41"]
        finally:
            db.dispose()
