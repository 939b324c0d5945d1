"""Many concurrent orders from one account competing for its collateral never overdraw it
(DESIGN §3: no account's available balance is negative; total = available + reserved)."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ballast_exchange.domain import Engine
from ballast_exchange.service import committer as committer_module
from ballast_exchange.store.database import Database
from ballast_exchange.store.journal import load_commands
from ballast_exchange.store.projection import write_journal
from tests.live_server import LiveServer
from tests.signed_client import Admin, SignedClient, signature

ORDERS = 200
FITS = 50  # the deposit covers exactly this many orders
SIZE = 10
BUY, SELL = Decimal("0.4"), Decimal("0.6")
LOCK = Decimal("0.4") * SIZE  # a buy at 0.4 locks 0.4, a sell at 0.6 locks 1 - 0.6
DEPOSIT = LOCK * FITS


async def signed(
    http: httpx.AsyncClient, client: SignedClient, method: str, path: str, body: Any = None
) -> httpx.Response:
    """One signed request over a shared async client (the same canonical message as the spec)."""
    raw = "" if body is None else json.dumps(body)
    ts = str(client.next_timestamp())
    headers = {
        "Authorization": f"Bearer {client.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": signature(client.api_secret, ts, method, "/v1" + path, raw),
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    return await http.request(method, client.api + path, content=raw or None, headers=headers)


def order_body(i: int, market_id: str) -> dict[str, Any]:
    """Alternate resting buys at 0.4 and sells at 0.6: they never cross, each locks 4 USDC."""
    side, price = ("buy", BUY) if i % 2 == 0 else ("sell", SELL)
    return {"market_id": market_id, "side": side, "price": str(price), "size": SIZE}


async def burst(client: SignedClient, market_id: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=ORDERS, max_keepalive_connections=ORDERS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        start = asyncio.Event()

        async def one(i: int) -> httpx.Response:
            await start.wait()
            return await signed(http, client, "POST", "/orders", order_body(i, market_id))

        tasks = [asyncio.create_task(one(i)) for i in range(ORDERS)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)


def test_concurrent_orders_never_overdraw_one_account(server: LiveServer, admin: Admin) -> None:
    """200 concurrent orders, room for 50: exactly 50 rest, 150 are refused, nothing is lost."""
    admin.market("race", maker_fee_bps=0, taker_fee_bps=0)
    client = admin.account("racer", deposit=float(DEPOSIT))
    try:
        responses = asyncio.run(burst(client, "race"))
        statuses = [r.status_code for r in responses]
        accepted = [r.json() for r in responses if r.status_code == 201]
        refused = [r.json() for r in responses if r.status_code != 201]
        assert set(statuses) <= {201, 400}, [
            r.text for r in responses if r.status_code not in (201, 400)
        ]
        assert all(e["error"]["code"] == "INSUFFICIENT_BALANCE" for e in refused), refused[:3]
        assert len(accepted) * LOCK <= DEPOSIT
        # Every order needs the same amount, so the collateral is used up exactly.
        assert len(accepted) == FITS
        assert all(o["status"] == "open" and o["filled_size"] == 0 for o in accepted)
        assert len({o["order_id"] for o in accepted}) == FITS

        balance = client.get("/account/balance").json()
        available = Decimal(str(balance["available"]))
        reserved = Decimal(str(balance["reserved"]))
        total = Decimal(str(balance["total_balance"]))
        assert available >= 0
        assert total == available + reserved == DEPOSIT
        assert reserved == LOCK * len(accepted)

        listed = client.get("/orders?status=open&limit=1000").json()["orders"]
        assert sorted(o["order_id"] for o in listed) == sorted(o["order_id"] for o in accepted)

        engine = server.runtime.exchange.engine
        assert engine.available(client.account_id) >= 0  # type: ignore[attr-defined]
        assert engine.ledger.total() == 0
    finally:
        client.close()


# --- reads never run ahead of storage (DESIGN §6) ----------------------------------------------

COMMIT_DELAY = 0.8  # seconds: a slow disk, so a commit is visibly in progress


def stored_states(url: str, account: str, market_id: str) -> list[dict[str, Any]]:
    """Every state the stored journal passed through, as the three reads would show it: what
    a crash at this instant (or any earlier one) could leave."""
    database = Database(url)
    engine = Engine()
    states = []
    try:
        with database.engine.connect() as conn:
            for _, command in load_commands(conn):
                engine.execute(command)
                if account not in engine.accounts or market_id not in engine.markets:
                    continue
                book = engine.markets[market_id].book
                positions = engine.account(account).positions
                states.append(
                    {
                        "money": (engine.available(account), engine.reserved(account)),
                        "positions": {m: p.size for m, p in positions.items() if p.size != 0},
                        "book": (engine.seq, book.depth(True, 20), book.depth(False, 20)),
                    }
                )
    finally:
        database.dispose()
    return states


async def reads_during_commit(
    taker: SignedClient, market_id: str, url: str, account: str
) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """P1 rests (its commit is slow); the reads arrive and wait for P1; P2 (a fill) executes
    meanwhile. When the reads answer, what was stored at that instant is captured."""
    async with httpx.AsyncClient(timeout=60) as http:
        rest = {"market_id": market_id, "side": "buy", "price": "0.4", "size": 10}
        take = {"market_id": market_id, "side": "buy", "price": "0.6", "size": 10}
        p1 = asyncio.create_task(signed(http, taker, "POST", "/orders", rest))
        await asyncio.sleep(0.2)  # P1 has executed; its batch is being written
        paths = ("/account/balance", "/positions")
        reads = [asyncio.create_task(signed(http, taker, "GET", p)) for p in paths]
        book = asyncio.create_task(http.get(f"{taker.api}/markets/{market_id}/orderbook"))
        await asyncio.sleep(0.2)  # the reads wait for P1's commit
        p2 = asyncio.create_task(signed(http, taker, "POST", "/orders", take))
        answered = await asyncio.gather(*reads, book)
        stored = await asyncio.to_thread(stored_states, url, account, market_id)
        p2_acked_before = p2.done()
        await asyncio.gather(p1, p2)
        seen = dict(zip((*paths, "book"), (r.json() for r in answered), strict=True))
        return seen, stored, p2_acked_before


def test_reads_never_describe_unstored_state(
    server: LiveServer, admin: Admin, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Balance, positions and the order book answer only with state that is stored (§6)."""
    admin.market("slow", maker_fee_bps=0, taker_fee_bps=0)
    maker = admin.account("maker", deposit=1_000)
    taker = admin.account("taker", deposit=1_000)
    try:
        ask = {"market_id": "slow", "side": "sell", "price": "0.6", "size": 10}
        assert maker.post("/orders", ask).status_code == 201

        def slow_write(conn: Any, items: Any) -> None:
            time.sleep(COMMIT_DELAY)
            write_journal(conn, items)

        monkeypatch.setattr(committer_module, "write_journal", slow_write)
        account = taker.account_id  # type: ignore[attr-defined]
        seen, stored, p2_acked = asyncio.run(
            reads_during_commit(taker, "slow", database_url, account)
        )
        balance = seen["/account/balance"]
        book = seen["book"]
        shown = {
            "money": (micro(balance["available"]), micro(balance["reserved"])),
            "positions": {p["market_id"]: p["size"] for p in seen["/positions"]["positions"]},
            "book": (
                book["seq"],
                [(round(Decimal(str(b["price"])) * 1000), b["size"]) for b in book["bids"]],
                [(round(Decimal(str(a["price"])) * 1000), a["size"]) for a in book["asks"]],
            ),
        }
        problems = [
            f"{what}: replied {shown[what]}, stored states {[s[what] for s in stored]}"
            for what in ("money", "positions", "book")
            if shown[what] not in [state[what] for state in stored]
        ]
        assert not problems, (
            f"replies described state not stored when they were sent (the fill was "
            f"{'already' if p2_acked else 'not yet'} acknowledged):\n" + "\n".join(problems)
        )
    finally:
        maker.close()
        taker.close()


def micro(value: Any) -> int:
    return int(Decimal(str(value)) * 1_000_000)
