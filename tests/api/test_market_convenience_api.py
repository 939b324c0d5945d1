"""The market object's convenience reads over real HTTP: ``midpoint`` (the mid of the best bid
and ask), ``last_price`` and ``change_24h`` (against the last trade a day ago).

A day of history cannot be made through the API in a test, so the venue's journal is written
first, with commands stamped in the past, and a real server is started on it: it replays and
projects that history as it would after any restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ballast_exchange.domain import MarketKind, MarketStatus, Side
from ballast_exchange.domain import commands as c
from ballast_exchange.store import Database, write_batch
from tests.live_server import LiveServer, live_server
from tests.store.helpers import FAR, USDC, Recorder

HOUR = 3_600_000


def history(now: int) -> Recorder:
    rec = Recorder()
    t = now - 50 * HOUR
    for name in ("alice", "bob"):
        rec.run(c.CreateAccount(t, name))
        rec.run(c.Deposit(t, name, 10_000 * USDC))
    for market_id in ("suez", "fresh", "empty"):
        rec.run(c.CreateMarket(t, market_id, MarketKind.BINARY, 1_000, 0, 1_000, FAR))
        rec.run(c.ChangeMarketStatus(t, market_id, MarketStatus.OPEN))

    def trade(at: int, market_id: str, price: int) -> None:
        rec.run(c.PlaceOrder(at, "alice", market_id, Side.BUY, 5, price))
        rec.run(c.PlaceOrder(at, "bob", market_id, Side.SELL, 5, price))

    trade(now - 48 * HOUR, "suez", 300)
    trade(now - 30 * HOUR, "suez", 400)  # the reference: the last trade before a day ago
    trade(now - 2 * HOUR, "suez", 550)
    trade(now - 1 * HOUR, "fresh", 420)  # traded only within the day: no reference
    rec.run(c.PlaceOrder(now - HOUR, "alice", "suez", Side.BUY, 3, 500))
    rec.run(c.PlaceOrder(now - HOUR, "bob", "suez", Side.SELL, 4, 611))
    rec.run(c.PlaceOrder(now - HOUR, "alice", "fresh", Side.BUY, 3, 410))  # one side only
    assert rec.rejected == 0
    return rec


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    rec = history(int(time.time() * 1000))
    db = Database(database_url)
    try:
        db.upgrade()
        with db.engine.begin() as conn:
            write_batch(conn, rec.items)
    finally:
        db.dispose()
    with live_server(tmp_path / "var", database_url=database_url) as live:
        yield live


def markets(server: LiveServer) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{server.api}/markets")
    assert response.status_code == 200, response.text
    return {m["id"]: m for m in response.json()["markets"]}


def test_midpoint_last_price_and_change(server: LiveServer) -> None:
    listed = markets(server)
    suez = listed["suez"]
    assert (suez["bid"], suez["ask"], suez["midpoint"]) == (0.5, 0.611, 0.5555)
    assert suez["last_price"] == 0.55
    assert suez["change_24h"] == pytest.approx(0.15)  # 0.55 now, 0.40 a day ago
    assert suez["volume_24h"] == 5

    fresh = listed["fresh"]
    assert (fresh["bid"], fresh["ask"], fresh["midpoint"]) == (0.41, None, None)
    assert fresh["last_price"] == 0.42 and fresh["change_24h"] is None

    empty = listed["empty"]
    assert (empty["midpoint"], empty["last_price"], empty["change_24h"]) == (None, None, None)

    one = httpx.get(f"{server.api}/markets/suez").json()
    assert {k: one[k] for k in ("midpoint", "last_price", "change_24h")} == {
        k: suez[k] for k in ("midpoint", "last_price", "change_24h")
    }
