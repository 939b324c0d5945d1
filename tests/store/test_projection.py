"""Group commit: replaying the journal rebuilds the engine exactly, and the projected tables say
what the engine says (orders, trades, fees, ledger, markets, settlements)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from ballast_exchange.domain import (
    Engine,
    MarketKind,
    MarketStatus,
    SelfTradePrevention,
    Side,
    digest,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import (
    LedgerEntry,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    Trade,
)
from ballast_exchange.service.exchange import Exchange
from ballast_exchange.store import Database, journal_head, load_commands, write_batch
from ballast_exchange.store import journal as journal_module
from ballast_exchange.store.projection import ledger_ref, projected_through, write_journal
from ballast_exchange.store.schema import (
    accounts,
    ledger_entries,
    markets,
    orders,
    settlements,
    trades,
)

from .helpers import FAR, USDC, Recorder, random_session, scripted, store_in_batches


def _rows(db: Database, table: Any, key: Any) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(key)).mappings()]


def _replay(db: Database) -> Engine:
    engine = Engine()
    with db.engine.connect() as conn:
        for _, command in load_commands(conn):
            engine.execute(command)
    return engine


def _expected_orders(rec: Recorder) -> dict[int, dict[str, Any]]:
    """Each order as the engine reports it: live ones from its state, closed ones from their
    OrderClosed event, static fields from OrderAccepted, price/size from the last amend."""
    out: dict[int, dict[str, Any]] = {}
    for e in rec.events:
        if isinstance(e, OrderAccepted):
            out[e.order_id] = {
                "order_id": e.order_id,
                "account_id": e.account_id,
                "market_id": e.market_id,
                "side": e.side,
                "order_type": e.order_type,
                "price": e.price,
                "size": e.size,
                "time_in_force": e.time_in_force,
                "expire_at": e.expire_at,
                "post_only": e.post_only,
                "reduce_only": e.reduce_only,
                "client_order_id": e.client_order_id,
                "stp": e.stp,
                "created_at": e.time,
                "reason": None,
            }
        elif isinstance(e, OrderAmended):
            out[e.order_id].update(price=e.price, size=e.size)
        elif isinstance(e, OrderClosed):
            out[e.order_id].update(
                status=e.status, reason=e.reason, filled=e.filled, remaining=e.remaining
            )
    for order_id, order in rec.engine.orders.items():
        out[order_id].update(
            status="open",
            price=order.price,
            size=order.size,
            filled=order.filled,
            remaining=order.remaining,
        )
    return out


def check_projection(db: Database, rec: Recorder) -> None:
    engine = rec.engine
    # Orders.
    stored = {r["order_id"]: r for r in _rows(db, orders, orders.c.order_id)}
    expected = _expected_orders(rec)
    assert stored.keys() == expected.keys()
    for order_id, want in expected.items():
        got = stored[order_id]
        assert {k: got[k] for k in want} == want, order_id
        assert got["filled"] + got["remaining"] == got["size"]
    # Trades, fees included.
    trade_events = [e for e in rec.events if isinstance(e, Trade)]
    stored_trades = _rows(db, trades, trades.c.trade_id)
    assert [{k: v for k, v in r.items() if k != "created_at"} for r in stored_trades] == [
        {
            "trade_id": e.trade_id,
            "market_id": e.market_id,
            "price": e.price,
            "size": e.size,
            "taker_side": e.taker_side,
            "maker_order_id": e.maker_order_id,
            "taker_order_id": e.taker_order_id,
            "maker_account_id": e.maker_account_id,
            "taker_account_id": e.taker_account_id,
            "maker_fee": e.maker_fee,
            "taker_fee": e.taker_fee,
        }
        for e in trade_events
    ]
    assert [r["created_at"] for r in stored_trades] == [e.time for e in trade_events]
    # Ledger: every entry, and each account's own entries add up to its ledger balances.
    entries = [e for e in rec.events if isinstance(e, LedgerEntry)]
    stored_ledger = _rows(db, ledger_entries, ledger_entries.c.seq)
    assert [(r["seq"], r["debit"], r["credit"], r["amount"], r["kind"]) for r in stored_ledger] == [
        (e.seq, e.debit, e.credit, e.amount, e.kind) for e in entries
    ]
    # Refs as the API names things; a reservation names its order and market.
    for r, e in zip(stored_ledger, entries, strict=True):
        if e.kind in ("reserve", "release"):
            order = stored[int(r["ref"].removeprefix("ord_"))]
            assert r["market_id"] == order["market_id"] and order["account_id"] == r["account_id"]
        else:
            assert r["ref"] == (ledger_ref(e.ref) or ""), (r, e)
    for account_id in engine.accounts:
        mine = (f"cash:{account_id}", f"orders:{account_id}", f"collateral:{account_id}:")
        balances: dict[str, int] = {}
        for r in stored_ledger:
            if r["account_id"] == account_id:
                balances[r["debit"]] = balances.get(r["debit"], 0) - r["amount"]
                balances[r["credit"]] = balances.get(r["credit"], 0) + r["amount"]
        got = {k: v for k, v in balances.items() if k.startswith(mine) and v}
        want = {k: v for k, v in engine.ledger.balances.items() if k.startswith(mine) and v}
        assert got == want, account_id
    for r in stored_ledger:  # entries naming no trader move money between house accounts
        if r["account_id"] is None:
            assert not any(
                r[s].startswith(("cash:", "orders:", "collateral:")) for s in ("debit", "credit")
            )
    # Accounts and markets.
    assert [r["account_id"] for r in _rows(db, accounts, accounts.c.account_id)] == sorted(
        engine.accounts
    )
    for r in _rows(db, markets, markets.c.market_id):
        market = engine.markets[r["market_id"]]
        assert r["status"] == market.status.value
        for name in (
            "tick_value",
            "floor",
            "cap",
            "close_time",
            "min_size",
            "max_order_size",
            "max_position",
            "maker_fee_bps",
            "taker_fee_bps",
        ):
            assert r[name] == getattr(market, name), name
        assert r["kind"] == market.kind.value


@pytest.mark.parametrize("sizes", [[1], [3, 7, 50], [10_000]], ids=["one", "mixed", "all"])
def test_scripted_session_replays_and_projects(
    db: Database, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    scripted(rec)
    assert rec.rejected == 0  # the script is meant to be valid throughout
    store_in_batches(db, rec.items, sizes)
    monkeypatch.setattr(journal_module, "LOAD_CHUNK", 5)
    rebuilt = _replay(db)
    assert digest(rebuilt) == digest(rec.engine)
    with db.engine.connect() as conn:
        assert journal_head(conn) == (len(rec.items), rec.engine.seq)
    check_projection(db, rec)


def test_replay_reproduces_every_event(db: Database) -> None:
    rec = Recorder()
    scripted(rec)
    store_in_batches(db, rec.items, [4])
    engine = Engine()
    with db.engine.connect() as conn:
        for (number, command), item in zip(load_commands(conn), rec.items, strict=True):
            assert number == item.command_no
            assert engine.execute(command) == item.events


def test_settlement_history_and_market_columns(db: Database) -> None:
    rec = Recorder()
    scripted(rec)
    store_in_batches(db, rec.items, [2])
    history = _rows(db, settlements, settlements.c.id)
    assert [
        (
            h["market_id"],
            h["value"],
            h["evidence_hash"],
            h["proposer"],
            h["outcome"],
            h["decided_by"],
        )
        for h in history
    ] == [
        ("idx", 47_300_000, "a" * 64, "oracle", "overturned", "operator"),
        ("idx", 52_100_000, "b" * 64, "oracle", "finalized", None),
    ]
    assert all(h["decided_at"] is not None for h in history)
    idx = {r["market_id"]: r for r in _rows(db, markets, markets.c.market_id)}["idx"]
    assert idx["status"] == "settled"
    assert idx["settlement_value"] == 52_100_000
    assert idx["evidence_hash"] == "b" * 64
    assert idx["settled_at"] == history[1]["decided_at"]
    assert idx["tick_size"] == "0.1"
    assert (idx["min_size"], idx["max_order_size"], idx["max_position"]) == (2, 500, 5_000)
    binary = {r["market_id"]: r for r in _rows(db, markets, markets.c.market_id)}["bin"]
    assert (binary["tick_size"], binary["maker_fee_bps"], binary["taker_fee_bps"]) == (
        "0.001",
        -5,
        20,
    )
    assert binary["settlement_value"] is None and binary["status"] == "open"


def test_overturn_of_a_proposal_from_an_earlier_batch(db: Database) -> None:
    rec = Recorder()
    scripted(rec)
    # One command per batch: each decision updates a proposal committed before it.
    store_in_batches(db, rec.items, [1])
    history = _rows(db, settlements, settlements.c.id)
    assert [h["outcome"] for h in history] == ["overturned", "finalized"]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_session_replays_and_projects(db: Database, seed: int) -> None:
    rec = Recorder()
    random_session(rec, seed, 800)
    store_in_batches(db, rec.items, [200, 1, 37])
    assert digest(_replay(db)) == digest(rec.engine)
    check_projection(db, rec)


def test_a_big_batch_is_a_handful_of_statements(db: Database) -> None:
    """One executemany per table, whatever the batch holds (DESIGN §6 group commit)."""
    rec = Recorder()
    random_session(rec, 3, 1_000)
    head, tail = rec.items[:20], rec.items[20:]
    with db.engine.begin() as conn:
        write_batch(conn, head)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.engine.begin() as conn:
            write_batch(conn, tail)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert sum(len(item.events) for item in tail) > 3_000
    # journal, orders insert, orders update, trades, ledger, the projection's watermark
    # (+ BEGIN on SQLite).
    assert len([s for s in statements if not s.startswith("BEGIN")]) <= 7, statements
    check_projection(db, rec)


def test_empty_batch_writes_nothing(db: Database) -> None:
    with db.engine.begin() as conn:
        write_batch(conn, [])
        assert journal_head(conn) == (0, 0)


def test_failed_batch_leaves_nothing(db: Database) -> None:
    rec = Recorder()
    scripted(rec)
    store_in_batches(db, rec.items[:5], [5])
    with pytest.raises(Exception), db.engine.begin() as conn:  # noqa: B017 - any DB error
        write_batch(conn, rec.items[3:10])  # command_no 4 and 5 again: primary key clash
    with db.engine.connect() as conn:
        assert journal_head(conn)[0] == 5
    assert len(_rows(db, accounts, accounts.c.account_id)) == 3


def test_decrement_shrinks_the_resting_order_row(db: Database) -> None:
    rec = Recorder()
    rec.run(c.CreateAccount(1, "a"))
    rec.run(c.Deposit(1, "a", 1_000 * USDC))
    rec.run(c.CreateMarket(1, "m", MarketKind.BINARY, 1_000, 0, 1_000, FAR))
    rec.run(c.ChangeMarketStatus(1, "m", MarketStatus.OPEN))
    rec.run(c.PlaceOrder(2, "a", "m", Side.SELL, 10, 500))
    rec.run(c.PlaceOrder(3, "a", "m", Side.BUY, 4, 500, stp=SelfTradePrevention.DECREMENT))
    store_in_batches(db, rec.items, [10])
    assert rec.engine.orders[1].remaining == 6
    row = _rows(db, orders, orders.c.order_id)[0]
    assert (row["size"], row["remaining"]) == (6, 6)


def test_projection_resumes_from_its_watermark(db: Database) -> None:
    """The durable commit writes journal rows only; the projection may trail it. After a crash
    with the tail unprojected, the exchange projects from the stored watermark at start, and
    the tables equal those of a projection that never fell behind."""
    rec = Recorder()
    scripted(rec)
    split = len(rec.items) // 2
    store_in_batches(db, rec.items[:split], [7])  # journaled and projected
    with db.engine.begin() as conn:
        write_journal(conn, rec.items[split:])  # journaled only: the projector never ran
        assert projected_through(conn) == rec.items[split - 1].command_no
    exchange = Exchange(db.engine)  # recovery: replay, then project the tail
    with db.engine.connect() as conn:
        assert projected_through(conn) == rec.items[-1].command_no
    assert exchange.projected_through == rec.items[-1].command_no
    check_projection(db, rec)
