"""The trader's ``ballast`` command as installed without extras and in an 80-column terminal, for
real: processes against the SDK tests' live server.

``pip install ballast-markets`` (no ``cli`` extra) brings no ``rich``: ``--json`` works, and only
a table asks for the extra. Tables fit the terminal: least needed columns go first, long text is
cut with an ellipsis, numbers never are; prices at their market's tick, money in USDC; a
binary market's price also as the chance of YES (and NO's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, MarketFactory
from tests.sdk.test_cli import CLI, clean_env, rest
from tests.signed_client import SignedClient

# `rich` as absent as in an installation without the extra: importing it fails.
WITHOUT_RICH = (
    "import sys; sys.modules['rich'] = None; "
    "from ballast.cli import main; sys.exit(main(sys.argv[1:]))"
)
LONG_NAME = "Shanghai container port congestion index, end-of-month reading (a long name)"


def run(*args: str, env: dict[str, str], columns: int | None = None, bare: bool = False) -> Any:
    command = [sys.executable, "-c", WITHOUT_RICH] if bare else CLI
    if columns is not None:
        env = {**env, "COLUMNS": str(columns)}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, env=env)


def ok(done: Any) -> str:
    assert done.returncode == 0, done
    assert "Traceback" not in done.stderr, done
    out: str = done.stdout
    return out


@pytest.fixture
def desk(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory, tmp_path: Path
) -> Any:
    """A market with a long name, a trade at 0.5 and a two-sided book; the taker's env."""
    market = new_market(name=LONG_NAME, taker_fee_bps=20)
    maker, taker = new_account(), new_account()
    clients = [SignedClient(server.api, a["api_key"], a["api_secret"]) for a in (maker, taker)]
    for side, price, size in (("buy", "0.5", 10), ("buy", "0.48", 5), ("sell", "0.55", 3)):
        body = {"market_id": market, "side": side, "type": "limit", "price": price, "size": size}
        assert clients[0].post("/orders", body).status_code == 201
    body = {"market_id": market, "side": "sell", "type": "limit", "price": "0.5", "size": 4}
    assert clients[1].post("/orders", body).status_code == 201
    # A resting order of the taker's own, for `ballast orders`.
    body = {"market_id": market, "side": "buy", "type": "limit", "price": "0.41", "size": 2}
    assert clients[1].post("/orders", body).status_code == 201
    (tmp_path / "config").mkdir()
    env = clean_env(
        tmp_path / "config",
        BALLAST_BASE_URL=server.api,
        BALLAST_API_KEY=taker["api_key"],
        BALLAST_API_SECRET=taker["api_secret"],
    )
    yield market, env, clients[1]
    for client in clients:
        client.close()


def test_json_works_without_the_cli_extra(server: LiveServer, desk: Any) -> None:
    market, env, taker = desk
    balance = json.loads(ok(run("balance", "--json", env=env, bare=True)), parse_float=Decimal)
    assert balance == rest(taker.get("/account/balance"))
    orders = json.loads(ok(run("orders", "--json", env=env, bare=True)), parse_float=Decimal)
    assert orders == rest(taker.get("/orders?status=open&limit=100"))
    markets = json.loads(ok(run("--json", "markets", env=env, bare=True)), parse_float=Decimal)
    assert markets == rest(httpx.get(f"{server.api}/markets"))
    book = json.loads(
        ok(run("book", market, "--once", "--json", env=env, bare=True)), parse_float=Decimal
    )
    assert book["bids"][0] == {"price": Decimal("0.5"), "size": 6}
    # Only a table asks for the extra, and says how to do without it.
    table = run("balance", env=env, bare=True)
    assert table.returncode == 1 and table.stdout == "", table
    assert "pip install 'ballast-markets[cli]'" in table.stderr and "--json" in table.stderr
    assert "Traceback" not in table.stderr


def row_of(out: str, needle: str) -> str:
    return next(line for line in out.splitlines() if needle in line)


def in_order(row: str, *cells: str) -> None:
    """``cells`` are cells of ``row``, in this order (others may sit between them); a cell
    ending in ``_`` matches any cell it begins."""
    found = iter(row.split())
    for wanted in cells:
        assert any(
            cell == wanted or (wanted.endswith("_") and cell.startswith(wanted)) for cell in found
        ), f"{wanted!r} not in {row!r}"


def test_tables_fit_80_columns_and_keep_their_numbers(desk: Any) -> None:
    market, env, _ = desk
    outs = {
        name: ok(run(*args, env=env, columns=80))
        for name, args in {
            "markets": ["markets"],
            "orders": ["orders"],
            "fills": ["fills"],
            "positions": ["positions"],
            "trades": ["trades", market],
            "book": ["book", market, "--once"],
            "balance": ["balance"],
        }.items()
    }
    for name, out in outs.items():
        for line in out.splitlines():
            assert len(line) <= 80, f"{name}: {len(line)} columns\n{out}"
        header = out.splitlines()[2 if name == "book" else 0]  # the book: head, YES/NO line
        assert len(header.split()) >= (1 if name == "balance" else 2), f"{name}\n{out}"

    # Every column shown carries its values, prices at the 0.001 tick, money in USDC.
    in_order(row_of(outs["markets"], market), market, "Shanghai", "open", "0.500", "0.550")
    # ... and a binary's last price as the chance of YES, NO's beside it.
    assert "YES 50.0% / NO 50.0%" in row_of(outs["markets"], market)
    in_order(row_of(outs["orders"], "0.410"), "ord_", "buy", "0.410", "2", "0", "2", "open")
    in_order(row_of(outs["fills"], "taker"), "sell", "0.500", "4", "taker", "0.004")
    in_order(row_of(outs["positions"], " -4 "), "-4", "0.500")
    in_order(row_of(outs["trades"], "0.500"), "0.500", "4", "sell")
    assert outs["book"].splitlines()[1] == (
        "YES 52.5% / NO 47.5% (mid)  buy YES at 0.550  buy NO at 0.500"
    )
    book = [line.split() for line in outs["book"].splitlines()[4:]]  # head, YES/NO, header, rule
    assert book[:3] == [
        ["6", "6", "0.500", "0.550", "3", "3"],
        ["11", "5", "0.480"],
        ["13", "2", "0.410"],
    ]
    assert row_of(outs["balance"], "Total balance").split()[-1].endswith(".996")

    # A wide terminal shows the columns a narrow one left out, and the name in full.
    wide = ok(run("markets", env=env, columns=220))
    assert LONG_NAME in row_of(wide, market) and "0.001" in row_of(wide, market)
    # An order's line wraps at the width, and leaves the generated client id to --json.
    order = ("order", "buy", market, "--price", "0.401", "--size", "1")
    placed = ok(run(*order, env=env, columns=80))
    assert all(len(line) <= 80 for line in placed.splitlines()), placed
    assert "@ 0.401" in placed and "client id" not in placed
    assert "client id py-" in ok(run(*order, env=env))  # into a pipe: the whole line
    # A narrow one cuts the name's text, never a number.
    narrow = ok(run("orders", env=env, columns=60))
    assert all(len(line) <= 60 for line in narrow.splitlines()), narrow
    assert "0.410" in narrow
