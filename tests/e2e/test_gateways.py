"""Gateways in front of one sequencer (docs/adr/0025): real `ballast sequencer` and `ballast
gateway` processes on one PostgreSQL database, one Redis and one NATS.

Signed traffic through both gateways; every acknowledged order and fill is there after, books,
balances and streams agree through either gateway, and a write acknowledged by one is visible
on the other's next read. A key revoked on one fails on both; limits hold across them; a call
sent again is answered once. Failures are in test_gateway_failures.py.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from cryptography.fernet import Fernet

from ballast_exchange.domain import OrderType, SelfTradePrevention, Side, TimeInForce, digest
from ballast_exchange.domain import commands as c
from ballast_exchange.service.bus_codec import decode, encode, to_wire
from tests.dashboard.conftest import Dashboard
from tests.databases import fresh_database
from tests.e2e.test_crash_recovery import (
    BALLAST,
    MARKET,
    Record,
    Served,
    check_acknowledged,
    check_ledger,
    check_matches_journal,
    kill,
    recovered,
    setup_exchange,
    start_load,
    wait_ready,
)
from tests.e2e.test_standby_sequencer import wait_standing_by
from tests.live_server import free_port
from tests.services import require_nats, require_redis
from tests.signed_client import SignedClient
from tests.stream.stream_client import StreamClient

REQUESTS = 300  # answered requests, over both gateways, before the load stops


@dataclass
class Venue:
    sequencer: Served
    gateways: list[Served]
    data_dir: Path  # the sequencer's (its admin token)
    standby: Served | None = None


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as url:
        yield url


def environment(**more: str) -> dict[str, str]:
    """What every process of one venue shares: the secret key that seals API secrets, the
    bus (a subject prefix of this test's own on the machine's NATS) and Redis."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode next to the sources (crash tests)
    env.update(
        BALLAST_PRIVATE_RATE_LIMIT="1000000",
        BALLAST_PUBLIC_RATE_LIMIT="1000000",
        BALLAST_SECRET_KEY=Fernet.generate_key().decode(),
        BALLAST_NATS_URL=require_nats(),
        BALLAST_NATS_SUBJECT=f"test-{secrets.token_hex(6)}",
        BALLAST_REDIS_URL=require_redis(),
    )
    env.update(more)
    return env


def start(
    tmp_path: Path, env: dict[str, str], role: str, name: str, *more: str, port: int = 0
) -> Served:
    port = port or free_port()
    command = [str(BALLAST), role, "--data-dir", str(tmp_path / name), "--no-demo"]
    command += ["--port", str(port), *more]
    log = tmp_path / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Served(process, f"http://127.0.0.1:{port}/v1", log)


@contextmanager
def venue(
    tmp_path: Path, database_url: str, gateways: int = 2, standby: bool = False, **env_more: str
) -> Iterator[Venue]:
    """A sequencer (and, with ``standby``, a hot standby: ``Venue.standby``) and gateways."""
    env = environment(BALLAST_LEASE_TTL_S="1.5", **env_more)
    started: list[Served] = []
    try:
        sequencer = start(tmp_path, env, "sequencer", "sequencer", "--database-url", database_url)
        started.append(sequencer)
        wait_ready(sequencer)
        waiting = None
        if standby:
            waiting = start(
                tmp_path, env, "sequencer", "standby", "--database-url", database_url, "--standby"
            )
            wait_standing_by(waiting, sequencer.process.pid)
        for n in range(gateways):
            served = start(tmp_path, env, "gateway", f"gateway-{n}", "--database-url", database_url)
            started.append(served)
        for served in started[1:]:
            wait_ready(served)
        yield Venue(sequencer, started[1:], tmp_path / "sequencer", waiting)
    finally:
        if waiting is not None:
            kill(waiting.process)
        for served in started:
            kill(served.process)


def readyz(served: Served) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(served.api.removesuffix("/v1") + "/readyz", timeout=10).json()
    return body


def clients_of(served: Served, accounts: list[dict[str, str]]) -> list[SignedClient]:
    return [SignedClient(served.api, a["api_key"], a["api_secret"]) for a in accounts]


def state_through(client: SignedClient) -> dict[str, Any]:
    """What one account sees of the venue through one address."""
    book = client.get(f"/markets/{MARKET}/orderbook?depth=100").json()
    return {
        "balance": client.get("/account/balance").json(),
        "positions": client.get("/positions").json(),
        "open": client.get("/orders?status=open&limit=1000").json(),
        "book": {k: book[k] for k in ("bids", "asks", "seq")},
    }


def test_two_gateways_trade_as_one_venue(tmp_path: Path, database_url: str) -> None:
    with venue(tmp_path, database_url) as v:
        assert readyz(v.sequencer)["role"] == "sequencer"
        assert all(readyz(g)["role"] == "gateway" for g in v.gateways)
        accounts = setup_exchange(v.sequencer, v.data_dir)
        record = Record()
        loads = [
            start_load(g.api, accounts, record, first=100 * n, reader=n == 0)
            for n, g in enumerate(v.gateways)
        ]
        while record.requests < REQUESTS and any(
            t.is_alive() for load in loads for t in load.traders
        ):
            time.sleep(0.02)
        for load in loads:
            load.end()
        assert not record.errors, record.errors
        assert not record.conflicts, record.conflicts
        assert record.replies[201] >= 50, dict(record.replies)
        # 400: an amend below what a fill on the other gateway had just filled.
        assert set(record.replies) <= {200, 201, 400, 409}, record.samples

        engine = recovered(database_url)
        through = [clients_of(served, accounts) for served in (*v.gateways, v.sequencer)]
        try:
            check_acknowledged(through[1], record)
            check_ledger(engine, through[0], accounts)
            for clients, served in zip(through, (*v.gateways, v.sequencer), strict=True):
                check_matches_journal(engine, clients, accounts, served)
            # Every address shows the same venue, to the last seq.
            for n in range(len(accounts)):
                assert state_through(through[0][n]) == state_through(through[1][n])
                assert state_through(through[0][n]) == state_through(through[2][n])
            # The gateways' replicas hold the sequencer's state exactly.
            assert digest(recovered(database_url)) == digest(engine)
        finally:
            for clients in through:
                for client in clients:
                    client.close()


def test_a_write_on_one_gateway_is_read_on_the_other(tmp_path: Path, database_url: str) -> None:
    with venue(tmp_path, database_url) as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        one, other = (SignedClient(g.api, **keys(accounts[0])) for g in v.gateways)
        try:
            for n in range(20):
                body = {"market_id": MARKET, "side": "buy", "price": "0.30", "size": 1 + n % 3}
                placed = one.post("/orders", {**body, "client_order_id": f"ryw-{n}"})
                assert placed.status_code == 201, placed.text
                order_id = placed.json()["order_id"]
                # No wait between: the other gateway's very next read has it.
                seen = other.get(f"/orders/{order_id}")
                assert seen.status_code == 200, seen.text
                assert seen.json()["status"] == "open"
                open_ids = {
                    o["order_id"] for o in other.get("/orders?status=open").json()["orders"]
                }
                assert order_id in open_ids
                balance = other.get("/account/balance").json()
                assert balance == one.get("/account/balance").json()
                canceled = other.delete(f"/orders/{order_id}")
                assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
                assert one.get(f"/orders/{order_id}").json()["status"] == "canceled"
            # A client_order_id retried on the other gateway answers the first order.
            retried = other.post("/orders", {**body, "client_order_id": "ryw-19"})
            assert retried.status_code == 200, retried.text
        finally:
            one.close()
            other.close()


def keys(account: dict[str, str]) -> dict[str, str]:
    return {"api_key": account["api_key"], "api_secret": account["api_secret"]}


def test_streams_are_the_same_through_either_gateway(tmp_path: Path, database_url: str) -> None:
    with venue(tmp_path, database_url) as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        asyncio.run(same_streams(v, accounts))


async def same_streams(v: Venue, accounts: list[dict[str, str]]) -> None:
    streams = [await StreamClient.connect(g.api.removesuffix("/v1")) for g in v.gateways]
    try:
        for stream in streams:
            await stream.subscribe("trades", market_id=MARKET)
            await stream.subscribe("orderbook", market_id=MARKET)
        buyer, seller = (SignedClient(v.gateways[n].api, **keys(accounts[n])) for n in (0, 1))
        try:
            for n in range(10):
                sell = {"market_id": MARKET, "side": "sell", "price": "0.55", "size": 2}
                assert (await asyncio.to_thread(seller.post, "/orders", sell)).status_code == 201
                buy = {"market_id": MARKET, "side": "buy", "price": "0.55", "size": 1 + n % 2}
                assert (await asyncio.to_thread(buyer.post, "/orders", buy)).status_code == 201
        finally:
            buyer.close()
            seller.close()
        last = book_seq(v.sequencer)
        seen: list[list[tuple[Any, ...]]] = []
        for stream in streams:
            updates: list[tuple[Any, ...]] = []
            while not updates or updates[-1][2] < last:
                message = await stream.receive(timeout=30)
                if message.get("type") in ("snapshot", "update"):
                    data = message["data"]
                    updates.append(
                        (
                            message["channel"],
                            message["type"],
                            message["exchange_seq"],
                            message["seq"],
                            data,
                        )
                    )
            seen.append(updates)
        assert seen[0] == seen[1]
        assert sum(1 for u in seen[0] if u[0] == "trades" and u[1] == "update") >= 10
    finally:
        for stream in streams:
            await stream.close()


def book_seq(served: Served) -> int:
    book = httpx.get(f"{served.api}/markets/{MARKET}/orderbook", timeout=10).json()
    return int(book["seq"])


def admin_post(served: Served, data_dir: Path, path: str) -> httpx.Response:
    token = (data_dir / "admin.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{served.api}/admin{path}", json={}, headers=headers, timeout=30)


def test_a_key_revoked_on_one_gateway_fails_on_both_at_once(
    tmp_path: Path, database_url: str
) -> None:
    with venue(tmp_path, database_url) as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        clients = [SignedClient(g.api, **keys(accounts[0])) for g in v.gateways]
        try:
            assert all(c.get("/account/balance").status_code == 200 for c in clients)
            # Through the first gateway's own admin API (its data dir's credential).
            revoked = admin_post(
                v.gateways[0], tmp_path / "gateway-0", f"/keys/{accounts[0]['api_key']}/revoke"
            )
            assert revoked.status_code < 300, revoked.text
            # The very next request, on either gateway and the sequencer: no wait.
            for client in clients:
                refused = client.get("/account/balance")
                assert refused.status_code == 401, refused.text
                assert refused.json()["error"]["code"] == "UNAUTHORIZED"
            on_sequencer = SignedClient(v.sequencer.api, **keys(accounts[0]))
            assert on_sequencer.get("/account/balance").status_code == 401
            on_sequencer.close()
            # The other keys are untouched.
            other = SignedClient(v.gateways[1].api, **keys(accounts[1]))
            assert other.get("/account/balance").status_code == 200
            other.close()
        finally:
            for client in clients:
                client.close()


def test_limits_hold_across_gateways(tmp_path: Path, database_url: str) -> None:
    """Five stream connections per key, and the private rate limit, for the venue as a whole."""
    with venue(tmp_path, database_url, BALLAST_PRIVATE_RATE_LIMIT="12") as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        asyncio.run(five_connections_across(v, accounts[0]))
        clients = [SignedClient(g.api, **keys(accounts[1])) for g in v.gateways]
        try:
            # Windows are fixed minutes: start in a fresh one, so that all runs in one window.
            first = clients[0].get("/account/balance")
            window_end = int(first.headers["X-RateLimit-Reset"])
            if window_end - time.time() < 20:
                while time.time() < window_end + 0.5:
                    time.sleep(0.1)
                first = clients[0].get("/account/balance")
            answered = [first] + [clients[n % 2].get("/account/balance") for n in range(1, 12)]
            assert [r.status_code for r in answered] == [200] * 12
            # One count for the key on both gateways: each answer has one fewer left.
            left = [int(r.headers["X-RateLimit-Remaining"]) for r in answered]
            assert left == list(range(11, -1, -1)), left
            for client in clients:
                limited = client.get("/account/balance")
                assert limited.status_code == 429, limited.text
                assert limited.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        finally:
            for client in clients:
                client.close()


async def five_connections_across(v: Venue, account: dict[str, str]) -> None:
    opened: list[StreamClient] = []
    try:
        for n in range(5):
            client = await StreamClient.connect(v.gateways[n % 2].api.removesuffix("/v1"))
            opened.append(client)
            reply = await client.auth(account["api_key"], account["api_secret"])
            assert reply["type"] == "authenticated", reply
        for gateway in v.gateways:
            sixth = await StreamClient.connect(gateway.api.removesuffix("/v1"))
            opened.append(sixth)
            reply = await sixth.auth(account["api_key"], account["api_secret"])
            assert reply["type"] == "error" and reply["status"] == 429, reply
            assert reply["error"]["code"] == "TOO_MANY_CONNECTIONS", reply
            assert await sixth.closed_with() == 4029
    finally:
        for client in opened:
            await client.close()


def test_a_call_sent_again_is_answered_once(tmp_path: Path, database_url: str) -> None:
    """A gateway that lost a reply sends the call again with its id: the sequencer answers
    with its first answer and places nothing twice (ADR 0025); so in a batch of calls."""
    with venue(tmp_path, database_url, gateways=0) as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        subject = sequencer_subject(v.sequencer)
        order = c.PlaceOrder(
            0,
            accounts[0]["account_id"],
            MARKET,
            Side.BUY,
            2,
            300,
            OrderType.LIMIT,
            TimeInForce.GTC,
            None,
            False,
            False,
            None,
            SelfTradePrevention.CANCEL_NEWEST,
            None,
        )
        call = {"service": "trading", "method": "place", "args": [to_wire(order), False]}
        first = {**call, "id": "gw-test-1"}
        batch = {"batch": [first, {**call, "id": "gw-test-2"}, {"service": "trading"}]}
        answers = asyncio.run(send_each(subject, [encode(first), encode(first), encode(batch)]))
        assert answers[0] == answers[1]
        placed = answers[0]["value"]
        assert placed["record"] == "OrderOutcome"
        # A batch: each call answered in its place, the one seen before with its first answer.
        in_batch = answers[2]["answers"]
        assert in_batch[0] == answers[0]
        assert in_batch[1]["value"]["record"] == "OrderOutcome" and in_batch[1] != in_batch[0]
        assert "invalid" in in_batch[2]
        metrics = httpx.get(v.sequencer.api.removesuffix("/v1") + "/metrics", timeout=10).text
        assert "\nballast_bus_call_retries 2.0\n" in metrics  # the resend, and in the batch
        client = SignedClient(v.sequencer.api, **keys(accounts[0]))
        try:
            listed = client.get("/orders?status=all").json()["orders"]
            assert len(listed) == 2 and {o["size"] for o in listed} == {2}, listed
        finally:
            client.close()


async def send_each(subject: str, requests: list[bytes]) -> list[dict[str, Any]]:
    nc = await nats.connect(require_nats())
    try:
        return [decode((await nc.request(subject, r, timeout=10)).data) for r in requests]
    finally:
        await nc.close()


def sequencer_subject(served: Served) -> str:
    """The venue's calls subject: the sequencer's readiness names nothing of it, so ask the
    process's environment (the test set it)."""
    environ = Path(f"/proc/{served.process.pid}/environ").read_bytes().split(b"\0")
    found = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    return f"{found['BALLAST_NATS_SUBJECT']}.calls"


def test_the_dashboard_works_across_gateways(tmp_path: Path, database_url: str) -> None:
    """Sign up on one gateway (the faucet funds the account through the sequencer), go on
    with the same session on the other, make a key there and trade with it on the first."""
    with venue(tmp_path, database_url) as v:
        setup_exchange(v.sequencer, v.data_dir)
        urls = [g.api.removesuffix("/v1") for g in v.gateways]
        one = Dashboard(SimpleNamespace(url=urls[0]))
        other = Dashboard(SimpleNamespace(url=urls[1]))
        try:
            one.signup()
            other.http.cookies = one.http.cookies  # the session cookie, as a browser sends it
            other.csrf = one.csrf
            account = other.request("GET", "/account")
            assert account.status_code == 200, account.text
            assert Decimal(str(account.json()["balance"]["total_balance"])) == Decimal("10000")
            made = other.request("POST", "/keys", {"scopes": ["read", "trade"], "label": "bot"})
            assert made.status_code == 201, made.text
            key = made.json()
            # At once, on the gateway that did not issue it.
            trader = SignedClient(v.gateways[0].api, key["api_key"], key["api_secret"])
            try:
                order = {"market_id": MARKET, "side": "buy", "price": "0.10", "size": 1}
                placed = trader.post("/orders", order)
                assert placed.status_code == 201, placed.text
            finally:
                trader.close()
            assert one.request("POST", "/logout").status_code < 300
            assert other.request("GET", "/account").status_code == 401
        finally:
            one.close()
            other.close()
