"""The examples in sdk/python/examples run against a real server, configured as the README
says: BALLAST_BASE_URL, BALLAST_API_KEY and BALLAST_API_SECRET."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ballast import BallastClient
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, MarketFactory

EXAMPLES = Path(__file__).resolve().parents[2] / "sdk" / "python" / "examples"


def run(script: str, args: list[str], env: dict[str, str]) -> str:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_quoting_bot_and_watcher(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    env = {
        "BALLAST_BASE_URL": server.api,
        "BALLAST_API_KEY": account["api_key"],
        "BALLAST_API_SECRET": account["api_secret"],
    }
    with BallastClient(account["api_key"], account["api_secret"], base_url=server.api) as me:
        # Someone else's resting orders make a mid of 0.6.
        other = new_account()
        with BallastClient(other["api_key"], other["api_secret"], base_url=server.api) as them:
            them.place_order(market, "buy", price="0.5", size=1)
            them.place_order(market, "sell", price="0.7", size=1)

        output = run(
            "quoting_bot.py",
            [market, "--spread", "0.04", "--size", "7", "--rounds", "2", "--interval", "0"],
            env,
        )
        assert "quoted buy 7 @ 0.58" in output, output
        assert "quoted sell 7 @ 0.62" in output, output
        assert "canceled 2 quote(s)" in output, output
        orders = me.get_orders(status="all")
        assert sorted((str(o.price), o.side, o.status) for o in orders) == [
            ("0.58", "buy", "canceled"),
            ("0.62", "sell", "canceled"),
        ]

    watched = run(
        "orderbook_watcher.py",
        [market, "--count", "1", "--interval", "0"],
        {"BALLAST_BASE_URL": server.api},
    )
    assert market in watched
    assert "spread 0.2" in watched and "mid 0.6" in watched, watched
