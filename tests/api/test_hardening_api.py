"""Hostile and careless input against a real server (issue 13): none of it may cost money,
memory or another user's access, and every refusal is the spec's envelope.

One SQLite server serves the module (these are properties of the HTTP edge, not the store);
the tests that need special settings start their own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin, SignedClient, signature

OVERFLOW = "1e999999999"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("hardening") / "var", **NO_LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def boss(live: LiveServer) -> Admin:
    return Admin(live.api, live.admin_token)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def market(boss: Admin) -> str:
    market_id = unique("hard")
    boss.market(market_id)
    return market_id


@pytest.fixture
def trader(boss: Admin) -> Iterator[SignedClient]:
    client = boss.account(unique("trader"))
    yield client
    client.close()


def code_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    code: str = body["error"]["code"]
    return code


def open_orders(client: SignedClient) -> list[dict[str, Any]]:
    response = client.get("/orders?status=open")
    assert response.status_code == 200, response.text
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


# --- #5 a batch never answers 500 after placing part of itself -------------------------------


def test_a_bad_batch_item_is_reported_in_its_slot(trader: SignedClient, market: str) -> None:
    ok = {"market_id": market, "side": "buy", "price": 0.3, "size": 1}
    batch = [ok, {**ok, "price": 0.31}, {**ok, "price": OVERFLOW}, {**ok, "price": "0.3000001"}]
    response = trader.post("/orders/batch", {"orders": batch})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 400, 400]
    assert [r["error"]["code"] for r in results[2:]] == ["INVALID_PRICE", "INVALID_PRICE"]
    # Exactly the two good ones rest: a retry of the batch would not be needed, nor double.
    assert sorted(o["price"] for o in open_orders(trader)) == [0.3, 0.31]


# --- #11 numbers are exact, and absurd ones are refused, not crashed on ----------------------


@pytest.mark.parametrize(
    "price",
    [OVERFLOW, "-1e999999999", "1e-999999999", "0.870000000000000000000000000001", "1" * 60],
)
def test_prices_overflowing_or_finer_than_any_grid_are_invalid_price(
    trader: SignedClient, market: str, price: str
) -> None:
    placed = trader.post("/orders", {"market_id": market, "side": "buy", "price": price, "size": 1})
    assert placed.status_code == 400, placed.text
    assert code_of(placed) == "INVALID_PRICE"
    resting = trader.post("/orders", {"market_id": market, "side": "buy", "price": 0.5, "size": 1})
    assert resting.status_code == 201, resting.text
    order_id = resting.json()["order_id"]
    amended = trader.patch(f"/orders/{order_id}", {"price": price})
    assert amended.status_code == 400, amended.text
    assert code_of(amended) == "INVALID_PRICE"
    assert open_orders(trader)[0]["price"] == 0.5  # untouched


@pytest.mark.parametrize("amount", [OVERFLOW, "1e-999999999", "0.0000001"])
def test_faucet_amounts_out_of_range_are_invalid_request(trader: SignedClient, amount: str) -> None:
    before = trader.get("/account/balance").json()
    response = trader.post("/account/faucet", {"amount": amount})
    assert response.status_code == 400, response.text
    assert code_of(response) == "INVALID_REQUEST"
    assert trader.get("/account/balance").json() == before


# --- #12 ids and numbers are ASCII ----------------------------------------------------------


@pytest.mark.parametrize("ref", ["ord_\u00b2", "ord_\u0661", "ord_\uff11"])
def test_non_ascii_digits_in_order_ids_are_not_found(
    trader: SignedClient, market: str, ref: str
) -> None:
    # ord_1 exists (the first order of this server is placed here if it was not already),
    # and ord_ + Arabic-Indic one must not resolve to it.
    placed = trader.post("/orders", {"market_id": market, "side": "buy", "price": 0.2, "size": 1})
    assert placed.status_code == 201
    ref = quote(ref)  # as it goes on the wire, and so as it is signed
    for response in (
        trader.get(f"/orders/{ref}"),
        trader.delete(f"/orders/{ref}"),
        trader.patch(f"/orders/{ref}", {"size": 2}),
    ):
        assert response.status_code == 404, response.text
        assert code_of(response) == "ORDER_NOT_FOUND"


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "2025-0\u0663-01", "\uff12\uff10"])
def test_non_ascii_digits_in_dates_are_invalid_request(
    live: LiveServer, trader: SignedClient, market: str, value: str
) -> None:
    for path in ("/orders", "/fills", "/account/ledger"):
        response = trader.get(f"{path}?start_date={quote(value)}")
        assert response.status_code == 400, (path, response.text)
        assert code_of(response) == "INVALID_REQUEST"
        assert response.json()["error"]["details"]["field"] == "start_date"
    candles = httpx.get(f"{live.api}/markets/{market}/candles", params={"start": value})
    assert candles.status_code == 400, candles.text
    assert code_of(candles) == "INVALID_REQUEST"


# --- #14 JSON with a repeated key, and what happens after a 500 -----------------------------


def test_a_repeated_json_key_is_refused(trader: SignedClient, market: str) -> None:
    raw = f'{{"market_id": "{market}", "side": "buy", "side": "sell", "price": 0.4, "size": 1}}'
    ts = str(trader.next_timestamp())
    response = trader.http.post(
        f"{trader.api}/orders",
        content=raw,
        headers={
            "Authorization": f"Bearer {trader.api_key}",
            "X-BM-Timestamp": ts,
            "X-BM-Signature": signature(trader.api_secret, ts, "POST", "/v1/orders", raw),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400, response.text
    assert code_of(response) == "INVALID_REQUEST"
    assert response.json()["error"]["details"]["field"] == "side"
    assert open_orders(trader) == []


def test_deeply_nested_json_is_invalid_request(trader: SignedClient) -> None:
    raw = "[" * 20_000 + "]" * 20_000
    response = trader.http.post(
        f"{trader.api}/orders", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert code_of(response) == "INVALID_REQUEST"


def test_a_500_says_connection_close(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", **NO_LIMITS) as live:
        boss = Admin(live.api, live.admin_token)
        boss.market("corrupt")
        trader = boss.account("victim")
        placed = trader.post(
            "/orders", {"market_id": "corrupt", "side": "buy", "price": 0.1, "size": 1}
        )
        assert placed.status_code == 201
        order_path = f"/orders/{placed.json()['order_id']}"
        assert trader.get(order_path).status_code == 200  # stored and projected by now
        # Damage the stored row for real, behind the server's back: reading it now fails.
        with sqlite3.connect(tmp_path / "var" / "ballast.db") as db:
            db.execute("UPDATE orders SET created_at = 'not a time'")
        with httpx.Client(timeout=10) as http:
            ts = str(trader.next_timestamp())
            path = f"/v1/orders/{placed.json()['order_id']}"
            headers = {
                "Authorization": f"Bearer {trader.api_key}",
                "X-BM-Timestamp": ts,
                "X-BM-Signature": signature(trader.api_secret, ts, "GET", path, ""),
            }
            crashed = http.get(live.url + path, headers=headers)
            assert crashed.status_code == 500
            assert code_of(crashed) == "INTERNAL_ERROR"
            assert crashed.headers["connection"] == "close"
            assert http.get(f"{live.url}/healthz").status_code == 200  # a new connection


# --- #7 a signature is good once ------------------------------------------------------------


def test_a_replayed_signed_order_is_refused(trader: SignedClient, market: str) -> None:
    body = json.dumps({"market_id": market, "side": "buy", "price": 0.25, "size": 1})
    ts = str(trader.next_timestamp())
    headers = {
        "Authorization": f"Bearer {trader.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": signature(trader.api_secret, ts, "POST", "/v1/orders", body),
        "Content-Type": "application/json",
    }
    answers = [
        trader.http.post(f"{trader.api}/orders", content=body, headers=headers) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 401, 401], [a.text for a in answers]
    for replayed in answers[1:]:
        assert code_of(replayed) == "INVALID_SIGNATURE"
        assert replayed.json()["error"]["details"]["reason"] == "replayed"
    assert len(open_orders(trader)) == 1


# --- #8 an API key alone cannot lock its owner out -------------------------------------------


def test_unsigned_requests_with_a_victims_key_do_not_spend_its_budget(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", public_rate_limit=5, private_rate_limit=10) as live:
        boss = Admin(live.api, live.admin_token)
        victim = boss.account("victim")
        with httpx.Client(timeout=10) as attacker:
            statuses = [
                attacker.get(
                    f"{live.api}/account/balance",
                    headers={"Authorization": f"Bearer {victim.api_key}"},
                ).status_code
                for _ in range(20)
            ]
        # The attacker's failures count against its IP: 401 until the public limit, then 429.
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
        mine = victim.get("/account/balance")
        assert mine.status_code == 200, mine.text
        assert mine.headers["X-RateLimit-Limit"] == "10"
        assert mine.headers["X-RateLimit-Remaining"] == "9"


# --- #10 the data directory and the database are private ------------------------------------


def test_the_data_directory_and_database_files_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # as a careless operator made it
    with live_server(data_dir, **NO_LIMITS) as live:
        Admin(live.api, live.admin_token).account("someone")  # something written
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        files = [data_dir / name for name in ("ballast.db", "ballast.db-wal", "ballast.db-shm")]
        for path in files:
            assert path.exists(), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))


# --- #2 (the body part) every method's body is bounded --------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_a_huge_body_is_refused_whatever_the_method(live: LiveServer, method: str) -> None:
    url = f"{live.api}/orders"
    declared = httpx.request(method, url, content=b"x" * (1 << 20), timeout=30)
    assert declared.status_code == 413, declared.text
    assert code_of(declared) == "PAYLOAD_TOO_LARGE"

    sent = [0]

    def chunks() -> Iterator[bytes]:  # chunked: no length declared up front
        for _ in range(1_000):
            sent[0] += 1
            yield b"x" * 65_536

    try:
        streamed = httpx.request(method, url, content=chunks(), timeout=30)
        assert streamed.status_code == 413, streamed.text
    except httpx.HTTPError:
        pass  # the server answered 413 and closed while we were still sending
    assert sent[0] < 1_000  # refused long before the 64 MB were all sent
