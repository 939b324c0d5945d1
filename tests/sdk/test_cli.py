"""The trader's ``ballast`` command, for real: each command runs as its own process
(``python -m ballast.cli``) against the SDK tests' live server, configured by environment
variables, a profile file or flags, and what it prints is checked against the REST API.

Every process gets an empty ``XDG_CONFIG_HOME`` unless a test writes a profile there, so a
developer's own ``~/.config/ballast/credentials`` never leaks in.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import ballast.cli as ballast_cli
from ballast.cli import main
from ballast.cli.config import ConfigError, credentials_path, read_profile, resolve
from ballast.cli.jsonout import dumps
from ballast.cli.numbers import chance_text, money_text, no_price, yes_no_text
from tests.live_server import LiveServer, free_port
from tests.sdk.conftest import AccountFactory, MarketFactory
from tests.signed_client import SignedClient

CLI = [sys.executable, "-m", "ballast.cli"]
SCRIPT = str(Path(sys.executable).with_name("ballast"))


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out, parse_float=Decimal)


def clean_env(config_home: Path, **values: str) -> dict[str, str]:
    """The test's environment without any BALLAST_* setting, with its own config home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_") and k != "COLUMNS"}
    env["XDG_CONFIG_HOME"] = str(config_home)
    env.update(values)
    return env


def ballast(*args: str, env: dict[str, str]) -> Run:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)
    return Run(done.returncode, done.stdout, done.stderr)


def ok(run: Run) -> Run:
    assert run.code == 0, run
    assert "Traceback" not in run.err, run
    return run


def failed(run: Run, code: int, first_line: str) -> None:
    """A clean failure: the exit status, the message first on stderr, no traceback."""
    assert run.code == code, run
    assert run.out == "", run
    assert run.err.startswith(first_line), run
    assert "Traceback" not in run.err, run


def rest(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)


@dataclass
class Trader:
    account: dict[str, Any]
    env: dict[str, str]
    rest: SignedClient

    @property
    def key(self) -> str:
        return str(self.account["api_key"])

    @property
    def secret(self) -> str:
        return str(self.account["api_secret"])


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    home = tmp_path / "config"
    home.mkdir()
    return home


@pytest.fixture
def public_env(server: LiveServer, config_home: Path) -> dict[str, str]:
    """Only the server's URL: no key."""
    return clean_env(config_home, BALLAST_BASE_URL=server.api)


@pytest.fixture
def make_trader(
    server: LiveServer, new_account: AccountFactory, config_home: Path
) -> Iterator[Any]:
    """A funded account, with an environment that points the command at it."""
    made: list[SignedClient] = []

    def make(deposit: float = 10_000) -> Trader:
        account = new_account(deposit)
        env = clean_env(
            config_home,
            BALLAST_BASE_URL=server.api,
            BALLAST_API_KEY=account["api_key"],
            BALLAST_API_SECRET=account["api_secret"],
        )
        signed = SignedClient(server.api, account["api_key"], account["api_secret"])
        made.append(signed)
        return Trader(account, env, signed)

    yield make
    for client in made:
        client.close()


def two_sided_market(new_market: MarketFactory, make_trader: Any) -> tuple[str, Trader, Trader]:
    """A market with a trade at 0.5 and a book of 0.48/0.5 bids and 0.55/0.6 asks."""
    market = new_market(taker_fee_bps=20)
    maker, taker = make_trader(), make_trader()
    for side, price, size in (
        ("buy", "0.5", 10),
        ("buy", "0.48", 5),
        ("sell", "0.55", 3),
        ("sell", "0.6", 8),
    ):
        placed = maker.rest.post(
            "/orders",
            {"market_id": market, "side": side, "type": "limit", "price": price, "size": size},
        )
        assert placed.status_code == 201, placed.text
    taken = taker.rest.post(
        "/orders",
        {"market_id": market, "side": "sell", "type": "limit", "price": "0.5", "size": 4},
    )
    assert taken.status_code == 201 and taken.json()["status"] == "filled", taken.text
    return market, maker, taker


# ---------------------------------------------------------------- usage


def test_help_and_the_server_commands(config_home: Path) -> None:
    env = clean_env(config_home)
    shown = ok(ballast("--help", env=env))
    for command in ("markets", "book", "trades", "order", "cancel", "orders", "positions"):
        assert command in shown.out
    assert "BALLAST_API_KEY" in shown.out and "credentials" in shown.out

    # The console script is the SDK's; the server adds its commands through entry points.
    assert "ballast.cli" in Path(SCRIPT).read_text()
    assert set(ballast_cli.plugin_commands()) >= {"serve", "admin"}
    for command in ("serve", "admin"):
        done = subprocess.run(
            [SCRIPT, command, "--help"], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 0, done.stderr
        assert f"usage: ballast {command}" in done.stdout


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        ([], "usage: ballast"),
        (["order", "buy", "m", "--size", "1"], "ballast order: error: a limit order needs --price"),
        (["order", "buy", "m", "--price", "x", "--size", "1"], "usage: ballast order"),
        (["order", "buy", "m", "--price", "0.5", "--size", "0"], "usage: ballast order"),
        (["order", "buy", "m", "--price", "0.5", "--size", "1", "--expire-at", "soon"], "usage:"),
        (["cancel"], "ballast cancel: error: give an ORDER_ID"),
        (["book", "m", "--depth", "101"], "usage: ballast book"),
        (["orders", "--status", "sleeping"], "usage: ballast orders"),
    ],
)
def test_usage_errors(
    args: list[str],
    first_line: str,
    config_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused before anything is sent (in this process: argparse's checks need no server)."""
    for name in [k for k in os.environ if k.startswith("BALLAST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code  # type: ignore[assignment]
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(first_line), captured.err


def test_server_commands_without_the_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if ballast-exchange were not installed: nothing in the entry-point group.
    monkeypatch.setattr(ballast_cli, "entry_points", lambda group: [])
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "ballast serve" in err and "not installed" in err and "ballast-exchange" in err


# ---------------------------------------------------------------- market data


def test_markets(
    server: LiveServer, new_market: MarketFactory, make_trader: Any, public_env: dict[str, str]
) -> None:
    market, _, _ = two_sided_market(new_market, make_trader)
    named = new_market("index", name="Port [congestion] index")

    as_json = ok(ballast("markets", "--json", env=public_env))
    assert as_json.json() == rest(httpx.get(f"{server.api}/markets"))
    assert ok(ballast("--json", "markets", "--type", "index", env=public_env)).json() == rest(
        httpx.get(f"{server.api}/markets", params={"type": "index"})
    )

    table = ok(ballast("markets", env=public_env)).out
    row = next(line for line in table.splitlines() if market in line)
    for value in ("binary", "open", "0.5", "0.55", "0.001"):
        assert value in row, row
    assert "Port [congestion] index" in table and named in table  # not read as markup
    # A binary's last price is also the chance of YES; an index has no such reading.
    assert "YES 50.0% / NO 50.0%" in row, row
    assert "YES" not in next(line for line in table.splitlines() if named in line)


def test_book_once_shows_what_rest_shows(
    server: LiveServer, new_market: MarketFactory, make_trader: Any, public_env: dict[str, str]
) -> None:
    market, _, _ = two_sided_market(new_market, make_trader)
    expected = rest(httpx.get(f"{server.api}/markets/{market}/orderbook", params={"depth": 10}))
    assert [(b["price"], b["size"]) for b in expected["bids"]] == [
        (Decimal("0.5"), 6),
        (Decimal("0.48"), 5),
    ]

    book = ok(ballast("book", market, "--once", "--json", env=public_env)).json()
    assert book["market_id"] == market
    assert (book["bids"], book["asks"]) == (expected["bids"], expected["asks"])
    assert book["seq"] == expected["seq"]  # nothing happened in between

    top = ok(ballast("book", market, "--once", "--json", "--depth", "1", env=public_env)).json()
    assert (top["bids"], top["asks"]) == (expected["bids"][:1], expected["asks"][:1])

    table = ok(ballast("book", market, "--once", env=public_env)).out
    assert market in table and "spread 0.05" in table and "mid 0.525" in table
    # A binary's book reads its mid as the chance of YES, and says what YES and NO cost.
    lines = table.splitlines()
    assert lines[1] == "YES 52.5% / NO 47.5% (mid)  buy YES at 0.550  buy NO at 0.500"
    rows = [line.split() for line in lines[2:] if "0.4" in line or "0.5" in line]
    # Running totals, sizes and prices a side (at the tick's precision), best first.
    assert rows == [
        ["6", "6", "0.500", "0.550", "3", "3"],
        ["11", "5", "0.480", "0.600", "8", "11"],
    ]

    failed(
        ballast("book", "no-such-market", "--once", env=public_env), 1, "error: MARKET_NOT_FOUND:"
    )


def test_book_follows_the_stream(
    server: LiveServer, new_market: MarketFactory, make_trader: Any, public_env: dict[str, str]
) -> None:
    market = new_market()
    trader = make_trader()
    process = subprocess.Popen(
        [*CLI, "book", market, "--json", "--depth", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=public_env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=120), parse_float=Decimal)
        assert (first["market_id"], first["bids"], first["asks"]) == (market, [], [])
        placed = trader.rest.post(
            "/orders",
            {"market_id": market, "side": "buy", "type": "limit", "price": "0.41", "size": 9},
        )
        assert placed.status_code == 201, placed.text
        update = json.loads(lines.get(timeout=120), parse_float=Decimal)
        assert update["bids"] == [{"price": Decimal("0.41"), "size": 9}]
        assert update["seq"] > first["seq"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 130
    assert process.stderr is not None and "Traceback" not in process.stderr.read()


def test_trades(
    server: LiveServer, new_market: MarketFactory, make_trader: Any, public_env: dict[str, str]
) -> None:
    market, _, _ = two_sided_market(new_market, make_trader)
    expected = rest(httpx.get(f"{server.api}/markets/{market}/trades", params={"limit": 50}))
    (trade,) = expected["trades"]
    assert ok(ballast("trades", market, "--json", env=public_env)).json() == expected

    table = ok(ballast("trades", market, env=public_env)).out
    row = next(line for line in table.splitlines() if trade["trade_id"] in line)
    assert "0.5" in row and " 4 " in row and "sell" in row
    failed(ballast("trades", "no-such-market", env=public_env), 1, "error: MARKET_NOT_FOUND:")


# ---------------------------------------------------------------- trading


def test_place_list_and_cancel(new_market: MarketFactory, make_trader: Any) -> None:
    market = new_market()
    trader = make_trader()

    placed = ok(
        ballast("order", "buy", market, "--price", "0.420", "--size", "7", "--json", env=trader.env)
    ).json()
    order_id = placed["order_id"]
    assert (placed["status"], placed["price"], placed["size"], placed["side"]) == (
        "open",
        Decimal("0.42"),
        7,
        "buy",
    )
    assert placed["client_order_id"].startswith("py-")  # retry-safe, as the SDK places orders
    stored = rest(trader.rest.get(f"/orders/{order_id}"))
    assert {k: v for k, v in placed.items() if k != "fills"} == stored

    listed = ok(ballast("orders", "--json", env=trader.env)).json()
    assert listed == rest(trader.rest.get("/orders?status=open&limit=100"))
    assert [o["order_id"] for o in listed["orders"]] == [order_id]

    table = ok(ballast("orders", env=trader.env)).out
    row = next(line for line in table.splitlines() if order_id in line)
    for value in (market, "buy", "limit", "0.42", "7", "open", "GTC"):
        assert value in row, row

    # A table of the placed order, then its cancel.
    second = ok(ballast("order", "sell", market, "--price", "0.9", "--size", "2", env=trader.env))
    assert second.out.startswith("placed ord_") and "sell 2" in second.out and "@ 0.9" in second.out
    second_id = second.out.split()[1]

    canceled = ok(ballast("cancel", order_id, env=trader.env)).out
    assert canceled.startswith(f"canceled {order_id}") and "canceled" in canceled.split()[2:]
    assert rest(trader.rest.get(f"/orders/{order_id}"))["status"] == "canceled"
    remaining = ok(ballast("orders", "--json", env=trader.env)).json()["orders"]
    assert [o["order_id"] for o in remaining] == [second_id]
    history = ok(
        ballast("orders", "--status", "canceled", "--market", market, "--json", env=trader.env)
    )
    assert [o["order_id"] for o in history.json()["orders"]] == [order_id]

    again = ballast("cancel", order_id, env=trader.env)
    failed(again, 1, "error: ORDER_NOT_CANCELABLE:")

    as_json = ok(ballast("cancel", second_id, "--json", env=trader.env)).json()
    assert as_json == rest(trader.rest.get(f"/orders/{second_id}"))
    assert ok(ballast("orders", env=trader.env)).out.strip() == "no open orders"


def test_cancel_all(new_market: MarketFactory, make_trader: Any) -> None:
    first, second = new_market(), new_market()
    trader = make_trader()
    ids: dict[str, list[str]] = {}
    for market in (first, second, second):
        response = trader.rest.post(
            "/orders",
            {"market_id": market, "side": "buy", "type": "limit", "price": "0.3", "size": 1},
        )
        ids.setdefault(market, []).append(response.json()["order_id"])

    failed(ballast("cancel", "ord_1", "--all", env=trader.env), 2, "ballast cancel: error:")
    failed(ballast("cancel", "--market", first, env=trader.env), 2, "ballast cancel: error:")
    only_first = ok(ballast("cancel", "--all", "--market", first, "--json", env=trader.env))
    assert only_first.json() == {"canceled": ids[first], "count": 1}
    rest_of_them = ok(ballast("cancel", "--all", env=trader.env)).out.splitlines()
    assert rest_of_them[0] == "canceled 2 orders"
    assert sorted(line.strip() for line in rest_of_them[1:]) == sorted(ids[second])
    assert rest(trader.rest.get("/orders?status=open"))["orders"] == []


def test_order_options(new_market: MarketFactory, make_trader: Any) -> None:
    market = new_market()
    trader, other = make_trader(), make_trader()
    assert (
        other.rest.post(
            "/orders",
            {"market_id": market, "side": "sell", "type": "limit", "price": "0.6", "size": 5},
        ).status_code
        == 201
    )

    gtd = ok(
        ballast(
            *("order", "buy", market, "--price", "0.2", "--size", "1", "--tif", "GTD"),
            *("--expire-at", "+1h", "--client-order-id", "mine-1", "--post-only", "--json"),
            env=trader.env,
        )
    ).json()
    assert (gtd["time_in_force"], gtd["client_order_id"], gtd["post_only"]) == (
        "GTD",
        "mine-1",
        True,
    )
    assert gtd["expire_at"] is not None and gtd["status"] == "open"
    # The same client_order_id again answers with that order: nothing new is placed.
    same = ("order", "buy", market, "--price", "0.21", "--size", "1", "--client-order-id", "me-2")
    first = ok(ballast(*same, "--json", env=trader.env)).json()
    assert ok(ballast(*same, "--json", env=trader.env)).json()["order_id"] == first["order_id"]
    assert len(rest(trader.rest.get("/orders?status=open"))["orders"]) == 2

    taken = ok(
        ballast(
            *("order", "buy", market, "--type", "market", "--size", "2", "--price", "0.7"),
            env=trader.env,
        )
    ).out
    assert "filled 2, remaining 0" in taken and "0.6" in taken  # with its fill's table
    assert "trd_" in taken

    failed(
        ballast(
            "order", "buy", market, "--price", "0.7", "--size", "1", "--post-only", env=trader.env
        ),
        1,
        "error: POST_ONLY_WOULD_CROSS:",
    )
    failed(
        ballast(
            "order", "buy", market, "--price", "0.1", "--size", "9", "--reduce-only", env=trader.env
        ),
        1,
        "error: REDUCE_ONLY_WOULD_INCREASE:",
    )
    failed(
        ballast(
            "order", "buy", market, "--price", "0.1", "--size", "1", "--tif", "GTD", env=trader.env
        ),
        2,
        "ballast order: error: --tif GTD needs --expire-at",
    )


def test_api_errors(server: LiveServer, new_market: MarketFactory, make_trader: Any) -> None:
    market = new_market()
    trader = make_trader(deposit=100)

    unknown = ballast(
        "order", "buy", "no-such-market", "--price", "0.5", "--size", "1", env=trader.env
    )
    failed(unknown, 1, "error: MARKET_NOT_FOUND: ")

    broke = ballast("order", "buy", market, "--price", "0.5", "--size", "1000", env=trader.env)
    failed(broke, 1, "error: INSUFFICIENT_BALANCE: ")
    assert "required: 500.0" in broke.err and "available: 100.0" in broke.err

    off_grid = ballast("order", "sell", market, "--price", "0.5001", "--size", "1", env=trader.env)
    failed(off_grid, 1, "error: INVALID_PRICE: ")
    failed(ballast("cancel", "ord_nope", env=trader.env), 1, "error: ORDER_NOT_FOUND: ")
    failed(
        ballast("orders", "--market", "no-such-market", env=trader.env),
        1,
        "error: MARKET_NOT_FOUND:",
    )

    wrong_secret = {**trader.env, "BALLAST_API_SECRET": "bmkt_secret_wrong"}
    failed(ballast("balance", env=wrong_secret), 1, "error: INVALID_SIGNATURE: ")

    # (A REST call to nowhere: see the credentials test.)
    nobody_home = {**trader.env, "BALLAST_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    failed(ballast("book", market, "--once", env=nobody_home), 1, "error: NETWORK_ERROR: ")
    assert rest(trader.rest.get("/orders?status=all"))["orders"] == []


# ---------------------------------------------------------------- account


def test_positions_balance_and_fills(new_market: MarketFactory, make_trader: Any) -> None:
    market, maker, taker = two_sided_market(new_market, make_trader)

    positions = ok(ballast("positions", "--json", env=taker.env)).json()
    assert positions == rest(taker.rest.get("/positions"))
    balance = ok(ballast("balance", "--json", env=taker.env)).json()
    assert balance == rest(taker.rest.get("/account/balance"))
    fills = ok(ballast("fills", "--json", env=taker.env)).json()
    assert fills == rest(taker.rest.get("/fills?limit=50"))
    assert ok(ballast("fills", "--json", "--limit", "1", env=maker.env)).json() == rest(
        maker.rest.get("/fills?limit=1")
    )
    (position,) = positions["positions"]
    assert (position["market_id"], position["size"]) == (market, -4)
    (fill,) = fills["fills"]
    assert (fill["side"], fill["price"], fill["fee"]) == ("sell", Decimal("0.5"), Decimal("0.004"))

    table = ok(ballast("positions", env=taker.env)).out
    row = next(line for line in table.splitlines() if market in line)
    assert " -4 " in row and "0.5" in row
    table = ok(ballast("balance", env=taker.env)).out
    assert "USDC" in table
    for label, key in (("Total balance", "total_balance"), ("Available", "available")):
        row = next(line for line in table.splitlines() if label in line)
        assert row.split()[-1] == money_text(balance[key]), row  # 9,999.996: USDC, grouped
    table = ok(ballast("fills", "--market", market, env=taker.env)).out
    row = next(line for line in table.splitlines() if fill["trade_id"] in line)
    for value in (fill["order_id"], market, "sell", "0.5", "taker", "0.004"):
        assert str(value) in row, row

    assert ok(ballast("positions", env=make_trader().env)).out.strip() == "no positions"


# ---------------------------------------------------------------- credentials


def write_profiles(config_home: Path, profiles: dict[str, dict[str, str]]) -> Path:
    path = config_home / "ballast" / "credentials"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) + "\n"
            for name, values in profiles.items()
        )
    )
    path.chmod(0o600)
    return path


def test_credentials_from_profiles_environment_and_flags(
    server: LiveServer, make_trader: Any, config_home: Path
) -> None:
    a, b, c = make_trader(1111), make_trader(2222), make_trader(3333)

    def profile(trader: Trader, **more: str) -> dict[str, str]:
        return {"api_key": trader.key, "api_secret": trader.secret, "base_url": server.api, **more}

    write_profiles(config_home, {"default": profile(a), "other": profile(c)})
    bare = clean_env(config_home)

    def total(run: Run) -> Decimal:
        value: Decimal = ok(run).json()["total_balance"]
        return value

    # The default profile, key and server alike.
    assert total(ballast("balance", "--json", env=bare)) == Decimal(1111)
    # A named profile, by flag or by BALLAST_PROFILE.
    assert total(ballast("balance", "--json", "--profile", "other", env=bare)) == Decimal(3333)
    assert total(ballast("balance", "--json", env={**bare, "BALLAST_PROFILE": "other"})) == 3333
    # The environment over the profile.
    env_b = {**bare, "BALLAST_API_KEY": b.key, "BALLAST_API_SECRET": b.secret}
    assert total(ballast("balance", "--json", env=env_b)) == Decimal(2222)
    # Flags over the environment.
    flags_c = ["--api-key", c.key, "--api-secret", c.secret]
    assert total(ballast("balance", "--json", *flags_c, env=env_b)) == Decimal(3333)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    failed(
        ballast("balance", "--base-url", dead, env={**env_b, "BALLAST_BASE_URL": server.api}),
        1,
        "error: NETWORK_ERROR:",
    )

    failed(
        ballast("balance", "--profile", "missing", env=bare),
        2,
        "ballast balance: error: no profile 'missing'",
    )
    nothing = clean_env(config_home / "elsewhere", BALLAST_BASE_URL=server.api)
    failed(
        ballast("balance", env=nothing),
        2,
        "ballast balance: error: `ballast balance` needs an API key",
    )
    failed(
        ballast("orders", env={**nothing, "BALLAST_API_KEY": a.key}),
        2,
        "ballast orders: error: an API key without its secret",
    )
    # Market data needs no key.
    assert ok(ballast("markets", "--json", env=nothing)).json()["markets"]


def test_resolve_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "xdg"
    path = write_profiles(
        home,
        {
            "default": {"api_key": "k-p", "api_secret": "s-p", "environment": "sandbox"},
            "local": {"base_url": "http://h:1/v1", "stream_url": "ws://h:1/stream", "x": "1"},
        },
    )
    env = {"XDG_CONFIG_HOME": str(home)}
    assert credentials_path(env) == path
    assert credentials_path({"XDG_CONFIG_HOME": ""}) == Path.home() / ".config/ballast/credentials"
    none = {"api_key": None, "api_secret": None, "base_url": None}

    settings = resolve(none, env)
    assert (settings.api_key, settings.api_secret, settings.environment, settings.profile) == (
        "k-p",
        "s-p",
        "sandbox",
        "default",
    )
    # Per setting: the key from the environment, the secret from a flag, the server from the
    # profile.
    mixed = resolve(
        {**none, "api_secret": "s-f"}, {**env, "BALLAST_API_KEY": "k-e"}, profile="default"
    )
    assert (mixed.api_key, mixed.api_secret, mixed.environment) == ("k-e", "s-f", "sandbox")
    # The server is one setting: a URL in the environment does not pair with the profile's
    # stream URL.
    local = resolve(none, {**env, "BALLAST_PROFILE": "local"})
    assert (local.base_url, local.stream_url, local.api_key) == (
        "http://h:1/v1",
        "ws://h:1/stream",
        None,
    )
    assert "ignoring unknown key(s) x" in capsys.readouterr().err
    elsewhere = resolve(
        none, {**env, "BALLAST_PROFILE": "local", "BALLAST_BASE_URL": "http://e/v1"}
    )
    assert (elsewhere.base_url, elsewhere.stream_url) == ("http://e/v1", None)
    flagged = resolve(
        {**none, "base_url": "http://f/v1"}, {**env, "BALLAST_BASE_URL": "http://e/v1"}
    )
    assert (flagged.base_url, flagged.environment) == ("http://f/v1", None)

    with pytest.raises(ConfigError, match="no profile 'nope'"):
        resolve(none, env, profile="nope")
    with pytest.raises(ConfigError, match="without its secret"):
        resolve({**none, "api_key": "k"}, {"XDG_CONFIG_HOME": str(tmp_path / "empty")})
    # No file and no profile named: nothing configured, which is fine for market data.
    assert resolve(none, {"XDG_CONFIG_HOME": str(tmp_path / "empty")}).has_key is False

    path.chmod(0o644)
    read_profile(path, "default", required=True)
    assert "chmod 600" in capsys.readouterr().err


def test_json_keeps_the_api_decimals() -> None:
    data = {"price": Decimal("0.870"), "tiny": Decimal("1E-7"), "n": [1, None, True, 'a"b']}
    assert json.loads(dumps(data), parse_float=Decimal) == data
    assert dumps(data) == '{"price": 0.870, "tiny": 1E-7, "n": [1, null, true, "a\\"b"]}'
    assert json.loads(dumps(data, indent=2), parse_float=Decimal) == data
    assert dumps({"empty": [], "also": {}}, indent=2) == '{\n  "empty": [],\n  "also": {}\n}'


def test_binary_prices_read_as_the_chance_of_yes() -> None:
    """The one number rule for a binary's price (the dashboard's lib.js writes the same)."""
    assert chance_text(Decimal("0.625"), Decimal("0.001")) == "62.5%"
    assert chance_text(Decimal("0.62"), Decimal("0.01")) == "62%"
    assert chance_text(Decimal("0.6255"), Decimal("0.001")) == "62.55%"  # a mid keeps its digits
    assert chance_text(None) == "-"
    assert no_price(Decimal("0.62")) == Decimal("0.38")
    assert yes_no_text(Decimal("0.62"), Decimal("0.001")) == "YES 62.0% / NO 38.0%"
    assert yes_no_text(None) == "-"
