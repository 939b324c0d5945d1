"""Reads: pagination walks every item exactly once, filters, fills, candles, cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection

from ballast_exchange.domain import MarketKind, MarketStatus, Side
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import LedgerEntry, OrderAccepted, OrderClosed, Trade
from ballast_exchange.store import Database, Page
from ballast_exchange.store import queries as q

from .helpers import ACCOUNTS, FAR, USDC, Recorder, random_session, scripted, store_in_batches


@pytest.fixture(scope="module")
def session(module_db: Database) -> Recorder:
    """One random session stored once per backend; the tests using it only read."""
    rec = Recorder()
    random_session(rec, 7, 600)
    store_in_batches(module_db, rec.items, [100])
    return rec


def _walk(fetch: Callable[[str | None], Page]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        page = fetch(cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        assert page.items, "a page with a next cursor is never empty"
        cursor = page.next_cursor
    raise AssertionError("pagination did not end")


def _accepted(rec: Recorder) -> list[OrderAccepted]:
    return [e for e in rec.events if isinstance(e, OrderAccepted)]


def _final_status(rec: Recorder) -> dict[int, str]:
    status = {e.order_id: "open" for e in _accepted(rec)}
    status.update({e.order_id: e.status for e in rec.events if isinstance(e, OrderClosed)})
    return status


@pytest.mark.parametrize("limit", [1, 50])
def test_orders_walk_every_order_once_newest_first(
    module_db: Database, session: Recorder, limit: int
) -> None:
    with module_db.engine.connect() as conn:
        for account in ACCOUNTS[:2]:
            got = _walk(lambda cur, a=account: q.list_orders(conn, a, limit=limit, cursor=cur))
            want = sorted(
                (e.order_id for e in _accepted(session) if e.account_id == account), reverse=True
            )
            assert [o.order_id for o in got] == want
            assert len(want) > 20


@pytest.mark.parametrize("status", ["open", "filled", "canceled", "expired", "all", None])
def test_orders_filter_by_status(
    module_db: Database, session: Recorder, status: str | None
) -> None:
    final = _final_status(session)
    with module_db.engine.connect() as conn:
        got = _walk(lambda cur: q.list_orders(conn, "a1", status=status, limit=7, cursor=cur))
    want = sorted(
        (
            e.order_id
            for e in _accepted(session)
            if e.account_id == "a1" and status in (None, "all", final[e.order_id])
        ),
        reverse=True,
    )
    assert [o.order_id for o in got] == want
    if status == "open":
        assert {o.order_id for o in got} == {
            o.order_id for o in session.engine.orders.values() if o.account_id == "a1"
        }


def test_orders_filter_by_market_and_dates(module_db: Database, session: Recorder) -> None:
    accepted = [e for e in _accepted(session) if e.account_id == "a2"]
    times = sorted(e.time for e in accepted)
    start, end = times[len(times) // 4], times[3 * len(times) // 4]
    with module_db.engine.connect() as conn:
        got = _walk(
            lambda cur: q.list_orders(
                conn, "a2", market_id="m2", start_ms=start, end_ms=end, limit=4, cursor=cur
            )
        )
    want = sorted(
        (e.order_id for e in accepted if e.market_id == "m2" and start <= e.time < end),
        reverse=True,
    )
    assert [o.order_id for o in got] == want and want


def test_get_order_is_scoped_to_its_account(module_db: Database, session: Recorder) -> None:
    first = _accepted(session)[0]
    with module_db.engine.connect() as conn:
        row = q.get_order(conn, first.account_id, first.order_id)
        assert row is not None and row.order_id == first.order_id
        other = next(a for a in ACCOUNTS if a != first.account_id)
        assert q.get_order(conn, other, first.order_id) is None
        assert q.get_order(conn, first.account_id, 10**12) is None


def test_get_order_by_client_id(db: Database) -> None:
    rec = Recorder()
    scripted(rec)
    store_in_batches(db, rec.items, [50])
    with db.engine.connect() as conn:
        row = q.get_order_by_client_id(conn, "alice", "a-2")
        assert row is not None and (row.price, row.size) == (610, 50)
        assert q.get_order_by_client_id(conn, "bob", "a-2") is None


@pytest.mark.parametrize("limit", [2, 25])
def test_fills_walk_both_sides_with_the_accounts_own_fee(
    module_db: Database, session: Recorder, limit: int
) -> None:
    trade_events = [e for e in session.events if isinstance(e, Trade)]
    with module_db.engine.connect() as conn:
        for account in ACCOUNTS[:2]:
            got = _walk(lambda cur, a=account: q.list_fills(conn, a, limit=limit, cursor=cur))
            mine = [
                e
                for e in reversed(trade_events)
                if account in (e.maker_account_id, e.taker_account_id)
            ]
            assert [f.trade_id for f in got] == [e.trade_id for e in mine]
            for fill, e in zip(got, mine, strict=True):
                maker = e.maker_account_id == account
                assert fill.liquidity == ("maker" if maker else "taker")
                assert fill.fee == (e.maker_fee if maker else e.taker_fee)
                assert fill.order_id == (e.maker_order_id if maker else e.taker_order_id)
                opposite = "sell" if e.taker_side == "buy" else "buy"
                assert fill.side == (opposite if maker else e.taker_side)
            assert any(f.liquidity == "maker" for f in got)
            assert any(f.liquidity == "taker" for f in got)
            assert any(f.fee < 0 for f in got if f.market_id == "m1")  # maker rebates


def test_fills_filter_by_market_and_dates(module_db: Database, session: Recorder) -> None:
    mine = [
        e
        for e in session.events
        if isinstance(e, Trade) and "a0" in (e.maker_account_id, e.taker_account_id)
    ]
    start, end = mine[len(mine) // 3].time, mine[2 * len(mine) // 3].time
    with module_db.engine.connect() as conn:
        got = _walk(
            lambda cur: q.list_fills(
                conn, "a0", market_id="m1", start_ms=start, end_ms=end, limit=3, cursor=cur
            )
        )
    want = [e.trade_id for e in reversed(mine) if e.market_id == "m1" and start <= e.time < end]
    assert [f.trade_id for f in got] == want and want


def test_trades_walk_newest_first(module_db: Database, session: Recorder) -> None:
    with module_db.engine.connect() as conn:
        for market in ("m1", "m2"):
            got = _walk(lambda cur, m=market: q.list_trades(conn, m, limit=9, cursor=cur))
            want = [
                e.trade_id
                for e in reversed(session.events)
                if isinstance(e, Trade) and e.market_id == market
            ]
            assert [t.trade_id for t in got] == want and want


def test_ledger_walk_and_filters(module_db: Database, session: Recorder) -> None:
    entries = [e for e in session.events if isinstance(e, LedgerEntry)]

    def concerns(e: LedgerEntry, account: str) -> bool:
        keys = (f"cash:{account}", f"orders:{account}")
        return e.debit in keys or e.credit in keys

    with module_db.engine.connect() as conn:
        got = _walk(lambda cur: q.list_ledger(conn, "a3", limit=11, cursor=cur))
        assert [r["seq"] for r in got] == [e.seq for e in reversed(entries) if concerns(e, "a3")]
        fees = _walk(lambda cur: q.list_ledger(conn, "a3", kind="fee", limit=5, cursor=cur))
        assert fees and all(r["kind"] == "fee" and r["market_id"] in ("m1", "m2") for r in fees)
        assert [r["seq"] for r in fees] == [
            e.seq for e in reversed(entries) if concerns(e, "a3") and e.kind == "fee"
        ]
        start = entries[len(entries) // 2].time
        later = _walk(lambda cur: q.list_ledger(conn, "a3", start_ms=start, limit=5, cursor=cur))
        assert [r["seq"] for r in later] == [
            e.seq for e in reversed(entries) if concerns(e, "a3") and e.time >= start
        ]
        m2 = q.list_ledger(conn, "a3", market_id="m2", limit=1000).items
        assert m2 and all(r["market_id"] == "m2" for r in m2)


def _trade_at(rec: Recorder, time: int, price: int, size: int) -> None:
    rec.run(c.PlaceOrder(time, "maker", "m", Side.SELL, size, price))
    rec.run(c.PlaceOrder(time, "taker", "m", Side.BUY, size, price))


def test_candles_ohlcv(db: Database) -> None:
    rec = Recorder()
    for account in ("maker", "taker"):
        rec.run(c.CreateAccount(0, account))
        rec.run(c.Deposit(0, account, 100_000 * USDC))
    rec.run(c.CreateMarket(0, "m", MarketKind.BINARY, 1_000, 0, 1_000, FAR))
    rec.run(c.ChangeMarketStatus(0, "m", MarketStatus.OPEN))
    minute = 60_000
    for time, price, size in [
        (minute + 1, 500, 10),
        (minute + 5, 520, 5),
        (minute + 30_000, 490, 2),
        (minute + 59_999, 505, 1),
        (2 * minute, 510, 1),
        (4 * minute + 7, 530, 3),
        (4 * minute + 8, 530, 4),
    ]:
        _trade_at(rec, time, price, size)
    assert rec.rejected == 0
    store_in_batches(db, rec.items, [3])
    with db.engine.connect() as conn:
        got = q.candles(conn, "m", minute)
        assert got == [
            {
                "time": minute,
                "open": 500,
                "high": 520,
                "low": 490,
                "close": 505,
                "volume": 18,
                "trade_count": 4,
            },
            {
                "time": 2 * minute,
                "open": 510,
                "high": 510,
                "low": 510,
                "close": 510,
                "volume": 1,
                "trade_count": 1,
            },
            {
                "time": 4 * minute,
                "open": 530,
                "high": 530,
                "low": 530,
                "close": 530,
                "volume": 7,
                "trade_count": 2,
            },
        ]
        assert q.candles(conn, "m", minute, limit=2) == got[1:]  # the latest two, oldest first
        assert q.candles(conn, "m", minute, start_ms=2 * minute, end_ms=4 * minute) == [got[1]]
        hours = q.candles(conn, "m", 3_600_000)
        assert hours == [
            {
                "time": 0,
                "open": 500,
                "high": 530,
                "low": 490,
                "close": 530,
                "volume": 26,
                "trade_count": 7,
            }
        ]
        assert q.candles(conn, "nope", minute) == []
        with pytest.raises(ValueError):
            q.candles(conn, "m", 0)


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not base64 at all",
        "a" * 300,
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _cursor({"k": 1}),
        _cursor(["orders"]),
        _cursor(["trades", 5]),  # another list's cursor
        _cursor(["orders", -1]),
        _cursor(["orders", True]),
        _cursor(["orders", 1.5]),
        _cursor(["orders", "5"]),
    ],
)
def test_bad_cursor_raises_value_error(db: Database, cursor: str) -> None:
    with db.engine.connect() as conn, pytest.raises(ValueError):
        q.list_orders(conn, "a0", cursor=cursor)


def test_cursor_round_trip_and_bad_arguments(db: Database) -> None:
    token = q.encode_cursor("orders", 12345)
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token
    assert q.decode_cursor("orders", token) == 12345
    checks: list[Callable[[Connection], Any]] = [
        lambda conn: q.list_orders(conn, "a0", limit=0),
        lambda conn: q.list_orders(conn, "a0", limit=q.MAX_LIMIT + 1),
        lambda conn: q.list_orders(conn, "a0", status="bogus"),
        lambda conn: q.list_fills(conn, "a0", cursor=q.encode_cursor("orders", 3)),
        lambda conn: q.list_trades(conn, "m", cursor="%%%"),
        lambda conn: q.list_ledger(conn, "a0", cursor=q.encode_cursor("fills", 3)),
    ]
    with db.engine.connect() as conn:
        for check in checks:
            with pytest.raises(ValueError):
                check(conn)
        assert q.list_orders(conn, "nobody") == Page([], None)


def test_markets_and_settlements(db: Database) -> None:
    rec = Recorder()
    scripted(rec)
    store_in_batches(db, rec.items, [9])
    with db.engine.connect() as conn:
        assert [m["market_id"] for m in q.list_markets(conn)] == ["bin", "idx"]
        assert [m["market_id"] for m in q.list_markets(conn, status="settled")] == ["idx"]
        assert [m["market_id"] for m in q.list_markets(conn, kind="binary")] == ["bin"]
        assert q.list_markets(conn, status="open", kind="index") == []
        market = q.get_market(conn, "bin")
        assert market is not None and market["name"] == "bin" and market["status"] == "open"
        assert q.get_market(conn, "nope") is None
        assert [s["outcome"] for s in q.list_settlements(conn, "idx")] == [
            "overturned",
            "finalized",
        ]
        assert q.list_settlements(conn, "bin") == []


def test_volumes_since(module_db: Database, session: Recorder) -> None:
    trade_events = [e for e in session.events if isinstance(e, Trade)]
    since = trade_events[len(trade_events) // 2].time
    want: dict[str, int] = {}
    for e in trade_events:
        if e.time >= since:
            want[e.market_id] = want.get(e.market_id, 0) + e.size
    with module_db.engine.connect() as conn:
        assert q.volumes_since(conn, since) == want
        assert q.volumes_since(conn, 10**15) == {}
