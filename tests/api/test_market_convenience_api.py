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

from tests.live_server import LiveServer, live_server
from tests.store.helpers import day_of_trades, write_history


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    write_history(database_url, day_of_trades(int(time.time() * 1000)))
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
    assert suez["volume_24h"] == 10  # the 0.45 and 0.55 trades

    fresh = listed["fresh"]
    assert (fresh["bid"], fresh["ask"], fresh["midpoint"]) == (0.41, None, None)
    assert fresh["last_price"] == 0.42 and fresh["change_24h"] is None

    empty = listed["empty"]
    assert (empty["midpoint"], empty["last_price"], empty["change_24h"]) == (None, None, None)

    one = httpx.get(f"{server.api}/markets/suez").json()
    assert {k: one[k] for k in ("midpoint", "last_price", "change_24h")} == {
        k: suez[k] for k in ("midpoint", "last_price", "change_24h")
    }
