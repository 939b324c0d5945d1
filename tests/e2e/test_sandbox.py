"""The sandbox as ``ballast serve`` runs it, against real servers on SQLite.

- The catalogue (chokepoint binaries weekly and monthly, congestion indices, a throughput
  binary) is listed and open after start, described over ``GET /v1/markets``, on the calendar
  the catalogue documents (checked here against an independent reading of it).
- The liquidity bot keeps every book two-sided with several levels for 60 cycles (a minute of
  sandbox time, compressed: ``bot_interval_s`` is 50 ms here) and trades, so trades and candles
  are never empty; ``bot=False`` (``--no-bot``) leaves the books empty, also on a data dir
  the bot quoted before.
- A restart lists nothing twice and reuses the demo and bot accounts.
- With a compressed calendar (``sandbox_period_s``) a catalogue market closes, the next period
  is listed, the simulated feed proposes an outcome whose evidence hashes to the published
  hash, and after the (1 s) dispute window it settles with payouts booked; an operator's own
  market waits for the operator.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785

from ballast_exchange.cli import announce, build_parser, serve_settings
from ballast_exchange.sandbox.bot import LiquidityBot
from ballast_exchange.sandbox.catalogue import build_catalogue
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin, SignedClient

BOT_INTERVAL_S = 0.05  # one bot cycle: a sandbox "second", compressed
SANDBOX: dict[str, Any] = {
    "env": "sandbox",
    "demo": True,
    "bot_interval_s": BOT_INTERVAL_S,
    **NO_LIMITS,
}
CHOKEPOINTS = ("suez", "panama", "hormuz", "malacca", "bab-el-mandeb")
CONGESTION = ("shanghai-congestion", "singapore-congestion", "los-angeles-congestion")


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def markets(server: LiveServer) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.api}/markets")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["markets"]
    return result


def market(server: LiveServer, market_id: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{server.api}/markets/{market_id}").json()
    return result


def book(server: LiveServer, market_id: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{server.api}/markets/{market_id}/orderbook").json()
    return result


def the_bot(server: LiveServer) -> LiquidityBot:
    sandbox = server.runtime.sandbox
    assert sandbox is not None and sandbox.bot is not None
    return sandbox.bot


def wait_cycles(server: LiveServer, cycles: int) -> None:
    bot = the_bot(server)
    target = bot.cycles + cycles
    wait_for(lambda: bot.cycles >= target, 30 + cycles * BOT_INTERVAL_S * 4, "bot cycles")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- the calendar, read again


def expected_ids(now: datetime) -> set[str]:
    """Each series' current and next period, read from the catalogue's documented calendar:
    weekly closes Friday 16:00 UTC, monthly closes on the last day at 23:59 UTC."""
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
    close = (monday + timedelta(days=4)).replace(hour=16, minute=0, second=0, microsecond=0)
    if close <= now:
        close += timedelta(days=7)
    weeks = [close.isocalendar(), (close + timedelta(days=7)).isocalendar()]
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_close = (first + timedelta(days=32)).replace(day=1) - timedelta(minutes=1)
    if month_close <= now:
        first = (first + timedelta(days=32)).replace(day=1)
    second = (first + timedelta(days=32)).replace(day=1)
    months = [f"{first:%Y-%m}", f"{second:%Y-%m}"]
    ids = {f"{c}-w{y}-{w:02d}" for c in CHOKEPOINTS for y, w, _ in weeks}
    ids |= {f"{c}-{m}" for c in (*CHOKEPOINTS, *CONGESTION, "rotterdam-teu") for m in months}
    return ids


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 4, 15, 59, 59, tzinfo=UTC),  # Friday, a second before the close
        datetime(2026, 12, 4, 16, 0, tzinfo=UTC),  # the weekly close: the next week is current
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),  # the monthly close, and ISO week 53
        datetime(2027, 2, 28, 23, 58, tzinfo=UTC),
        datetime(2027, 3, 1, 0, 0, tzinfo=UTC),
    ],
)
def test_calendar_lists_the_current_and_next_period_of_every_series(now: datetime) -> None:
    catalogue = build_catalogue()
    listings = catalogue.listings(int(now.timestamp() * 1000))
    ids = [listing.market_id for listing in listings]
    assert len(ids) == len(set(ids)) == 28
    assert set(ids) == expected_ids(now)
    for listing in listings:
        assert listing.period.close_ms > now.timestamp() * 1000
        assert catalogue.lookup(listing.market_id) == listing
    assert catalogue.lookup("suez-apr2025") is None
    assert catalogue.lookup("suez-w2026-99") is None


def test_compressed_calendar_rolls_every_period() -> None:
    catalogue = build_catalogue(4)
    now = int(datetime(2026, 12, 4, 15, 0, 1, tzinfo=UTC).timestamp() * 1000)
    ids = [listing.market_id for listing in catalogue.listings(now)]
    assert ids[:4] == [
        "suez-w20261204t150004",
        "suez-w20261204t150008",
        "suez-m20261204t150016",
        "suez-m20261204t150032",
    ]
    later = [listing.market_id for listing in catalogue.listings(now + 3_000)]
    assert later[:2] == ["suez-w20261204t150008", "suez-w20261204t150012"]
    found = catalogue.lookup("suez-w20261204t150008")
    assert found is not None and found.period.close_ms == now + 7_000
    assert catalogue.lookup("suez-w20261204t150009") is None  # not on the period grid


def test_serve_flags() -> None:
    parser = build_parser()
    assert serve_settings(parser.parse_args(["serve", "--no-bot"])).bot is False
    defaults = serve_settings(parser.parse_args(["serve"]))
    assert defaults.env == "sandbox" and defaults.demo and defaults.bot
    production = serve_settings(parser.parse_args(["serve", "--env", "production"]))
    assert not production.bot and not production.demo


# ---------------------------------------------------------------- on the real calendar


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("sandbox") / "var"
    with live_server(data_dir, **SANDBOX) as server:
        wait_cycles(server, 2)
        yield server


def test_catalogue_is_listed_open_and_described(sandbox: LiveServer) -> None:
    listed = {m["id"]: m for m in markets(sandbox)}
    assert set(listed) == expected_ids(datetime.now(UTC))
    for market_id, m in listed.items():
        assert m["status"] == "open", m
        assert m["name"] and m["name"] != market_id
        assert m["question"].endswith("?")
        description = m["description"]
        assert len(description) > 200, m
        assert "Resolves YES" in description or "Settles to" in description, m
        assert "dispute window" in description and "simulated data feed" in description
        assert m["resolution_source"]
        assert m["settlement_date"] == m["close_time"]
        close = parse(m["close_time"])
        if "-w" in market_id:  # weekly: Friday 16:00 UTC
            assert (close.weekday(), close.hour, close.minute) == (4, 16, 0), m
        else:  # monthly: the last minute of the month
            assert (close + timedelta(minutes=1)).day == 1 and close.hour == 23, m
        rules = m["rules"]
        assert (rules["maker_fee_bps"], rules["taker_fee_bps"]) == (-5, 20)
        if "congestion" in market_id:
            assert m["type"] == "index"
            assert (rules["tick_size"], rules["floor"], rules["cap"]) == (0.1, 0.0, 100.0)
            assert "congestion index" in m["question"]
        else:
            assert m["type"] == "binary"
            assert (rules["tick_size"], rules["floor"], rules["cap"]) == (0.001, 0.0, 1.0)
    rotterdam = next(m for i, m in listed.items() if i.startswith("rotterdam-teu-"))
    assert "more than 1.2M TEU" in rotterdam["question"]
    suez = next(m for i, m in listed.items() if i.startswith("suez-w"))
    assert "Suez Canal" in suez["question"] and "Suez Canal Authority" in suez["resolution_source"]


def test_demo_account_is_funded_and_announced(
    sandbox: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = sandbox.runtime.demo
    assert demo is not None
    client = SignedClient(sandbox.api, demo["api_key"], demo["api_secret"])
    try:
        balance = client.get("/account/balance").json()
    finally:
        client.close()
    assert balance["total_balance"] == 100_000
    announce(sandbox.runtime)
    banner = capsys.readouterr().out
    assert demo["api_key"] in banner and demo["api_secret"] in banner
    assert "from ballast import BallastClient" in banner and f"curl {sandbox.api}" in banner
    assert "Sandbox: 28 catalogue markets open" in banner and "--no-bot" in banner


def test_bot_keeps_every_book_two_sided_and_trades(sandbox: LiveServer) -> None:
    bot = the_bot(sandbox)
    soon = datetime.now(UTC) + timedelta(minutes=2)
    ids = [m["id"] for m in markets(sandbox) if parse(m["close_time"]) > soon]
    assert len(ids) >= 20
    first = {i: book(sandbox, i) for i in ids}
    start = bot.cycles
    samples = 0
    # An upper bound for a loaded machine, not a guess at the pace: the loop waits on cycles.
    deadline = time.monotonic() + 600
    # A minute of sandbox time, and at least three looks at every book: on a loaded machine one
    # look at all of them can take as long as many bot cycles.
    while bot.cycles < start + 60 or samples < 3:
        assert time.monotonic() < deadline and bot.running, "the bot stopped cycling"
        for market_id in ids:
            seen = book(sandbox, market_id)
            bids, asks = seen["bids"], seen["asks"]
            assert len(bids) >= 3 and len(asks) >= 3, (market_id, seen)
            assert bids[0]["price"] < asks[0]["price"], (market_id, seen)
        samples += 1
    assert samples >= 3
    assert bot.running and bot.cycles >= start + 60
    # The fair values wandered, and the quotes followed them.
    moved = [i for i in ids if book(sandbox, i)["bids"][0] != first[i]["bids"][0]]
    assert len(moved) >= len(ids) // 4, moved
    for market_id in ids:
        trades = httpx.get(f"{sandbox.api}/markets/{market_id}/trades").json()["trades"]
        assert trades, market_id
        candles = httpx.get(f"{sandbox.api}/markets/{market_id}/candles?interval=1m").json()
        assert candles["candles"] and candles["candles"][-1]["volume"] > 0, market_id
    # Binaries inside (0.02, 0.98), indices inside their range.
    for market_id in ids:
        fair = bot.fair[market_id]  # ticks: 0.001 of a binary, 0.1 of an index point
        low, high = (0, 1_000) if "congestion" in market_id else (20, 980)
        assert low < fair < high, (market_id, fair)


# ---------------------------------------------------------------- restarts and --no-bot


def test_no_bot_sandbox_lists_the_catalogue_with_empty_books(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", **{**SANDBOX, "bot": False}) as server:
        listed = markets(server)
        assert len(listed) == 28 and all(m["status"] == "open" for m in listed)
        for m in listed:
            seen = book(server, m["id"])
            assert seen["bids"] == [] and seen["asks"] == [], m["id"]
        assert server.runtime.sandbox is not None and server.runtime.sandbox.bot is None
        assert not (tmp_path / "var" / "sandbox-bot.json").exists()


def test_restart_lists_nothing_twice_and_no_bot_pulls_the_quotes(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with live_server(data_dir, **SANDBOX) as server:
        wait_cycles(server, 3)
        first = sorted(m["id"] for m in markets(server))
        demo = server.runtime.demo
        accounts = set(server.runtime.exchange.engine.accounts)
        bots = json.loads((data_dir / "sandbox-bot.json").read_text())
    assert len(accounts) == 3 and set(bots.values()) < accounts
    with live_server(data_dir, **SANDBOX) as server:
        again = sorted(m["id"] for m in markets(server))
        assert again == first
        assert server.runtime.demo == demo
        assert set(server.runtime.exchange.engine.accounts) == accounts
        wait_cycles(server, 3)
        for market_id in first:
            seen = book(server, market_id)
            assert len(seen["bids"]) >= 3 and len(seen["asks"]) >= 3, market_id
    assert json.loads((data_dir / "sandbox-bot.json").read_text()) == bots
    with live_server(data_dir, **{**SANDBOX, "bot": False}) as server:
        assert sorted(m["id"] for m in markets(server)) == first
        for market_id in first:
            seen = book(server, market_id)
            assert seen["bids"] == [] and seen["asks"] == [], market_id


# ---------------------------------------------------------------- rolling and settling


def ledger(server: LiveServer, market_id: str) -> dict[str, int]:
    """Sums over the engine's ledger, read on the server's loop (one consistent moment)."""

    async def read() -> dict[str, int]:
        engine = server.runtime.exchange.engine
        balances = engine.ledger.balances

        def total(prefix: str, suffix: str = "") -> int:
            return sum(
                v for k, v in balances.items() if k.startswith(prefix) and k.endswith(suffix)
            )

        return {
            "accounts": sum(engine.total_balance(a) for a in engine.accounts),
            "fees": total("fees:"),
            "clearing": total("clearing:"),
            "deposits": -balances.get("external", 0),
            "market_clearing": balances.get(f"clearing:{market_id}", 0),
            "market_collateral": total("collateral:", f":{market_id}"),
        }

    result: dict[str, int] = server.call(read())
    return result


def test_markets_roll_and_settle_themselves(tmp_path: Path) -> None:
    period_s = 4
    settings = {**SANDBOX, "sandbox_period_s": period_s, "dispute_window_s": 1}
    with live_server(tmp_path / "var", **settings) as server:
        demo = server.runtime.demo
        assert demo is not None
        client = SignedClient(server.api, demo["api_key"], demo["api_secret"])
        admin = Admin(server.api, server.admin_token)
        # An operator's own market, closing in 2 s: it waits for the operator to settle it.
        admin.market("manual-close", close_time=int(time.time() * 1000) + 2_000)

        # The next weekly Suez period (closing in 3-8 s): buy 10 from the bot's ask.
        def next_week() -> dict[str, Any] | None:
            weekly = [m for m in markets(server) if m["id"].startswith("suez-w")]
            latest = max(weekly, key=lambda m: m["close_time"])
            soon = datetime.now(UTC) + timedelta(seconds=3)
            ready = parse(latest["close_time"]) > soon and latest["status"] == "open"
            return latest if ready else None  # listed, then opened: two commands

        chosen = wait_for(next_week, 2 * period_s, "a weekly market closing in 3 s or more")
        target = chosen["id"]
        assert chosen["status"] == "open"
        earlier = [
            m["id"]
            for m in markets(server)
            if m["id"].startswith("suez-w") and m["close_time"] < chosen["close_time"]
        ]
        assert earlier
        ask = wait_for(lambda: book(server, target)["asks"], 10, "the bot's asks")[0]["price"]
        placed = client.post(
            "/orders",
            {
                "market_id": target,
                "side": "buy",
                "type": "limit",
                "price": round(min(ask + 0.02, 0.999), 3),
                "size": 10,
                "time_in_force": "IOC",
            },
        )
        assert placed.status_code == 201 and placed.json()["filled_size"] == 10, placed.text
        before = client.get("/account/balance").json()["total_balance"]
        position = next(
            p for p in client.get("/positions").json()["positions"] if p["market_id"] == target
        )
        assert position["size"] == 10

        # It closes, the feed proposes (RESOLVING, evidence published), and it settles.
        statuses: list[str] = []

        def settled() -> bool:
            status = market(server, target)["status"]
            if not statuses or statuses[-1] != status:
                statuses.append(status)
            return status == "settled"

        wait_for(settled, 2 * period_s + 10, f"{target} to settle")
        assert statuses[0] == "open" and "resolving" in statuses, statuses

        record = httpx.get(f"{server.api}/markets/{target}/settlement").json()
        assert record["status"] == "settled"
        [proposal] = record["proposals"]
        evidence = proposal["evidence"]
        assert hashlib.sha256(rfc8785.dumps(evidence)).hexdigest() == proposal["evidence_hash"]
        assert record["current"]["evidence_hash"] == proposal["evidence_hash"]
        assert proposal["proposer"] == "sandbox-feed" and proposal["outcome"] == "finalized"
        assert evidence["simulated"] is True and "not real data" in evidence["note"]
        assert evidence["market_id"] == target and target.endswith(evidence["period"])
        assert evidence["series"] == "suez-weekly" and evidence["observed_at"]
        assert evidence["reading"] in (0, 1) and evidence["outcome"] in ("yes", "no")
        value = proposal["value"]
        assert value == evidence["reading"]
        published = market(server, target)["settlement"]
        assert published["final"] and published["evidence_hash"] == proposal["evidence_hash"]

        # Payouts booked: the demo desk's 10 contracts paid 10 x value for their collateral.
        after = client.get("/account/balance").json()
        assert after["total_balance"] == pytest.approx(
            before - position["margin_used"] + 10 * value, abs=1e-6
        )
        left = [p for p in client.get("/positions").json()["positions"] if p["market_id"] == target]
        assert all(p["size"] == 0 for p in left)
        # Money is conserved: accounts + fee income + open clearing = deposits; the settled
        # market holds nothing any more.
        sums = ledger(server, target)
        assert sums["accounts"] + sums["fees"] + sums["clearing"] == sums["deposits"], sums
        assert sums["market_clearing"] == 0 and sums["market_collateral"] == 0, sums

        # The catalogue rolled: the series lists later periods, open; earlier ones settle.
        close = parse(chosen["close_time"])

        def later_open() -> list[dict[str, Any]] | None:
            # Periods after the settled one that are not due yet (short test periods keep closing).
            after = max(close, datetime.now(UTC))
            later = [
                m
                for m in markets(server)
                if m["id"].startswith("suez-w") and parse(m["close_time"]) > after
            ]
            # A period just listed opens a moment after it appears (created, described, opened).
            return later if len(later) >= 2 and all(m["status"] == "open" for m in later) else None

        wait_for(later_open, 60, "later periods listed and open")
        for market_id in earlier:
            assert market(server, market_id)["status"] in ("resolving", "settled"), market_id

        # The operator's market closed and waits: no proposal from the feed.
        manual = httpx.get(f"{server.api}/markets/manual-close/settlement").json()
        assert manual["status"] == "closed" and manual["proposals"] == []

        # Markets closed under the bot; it carried on.
        bot = the_bot(server)
        cycles = bot.cycles
        wait_for(lambda: bot.cycles > cycles + 2, 10, "more bot cycles")
        assert bot.running
        client.close()
