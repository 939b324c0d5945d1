"""Every error over real HTTP: the spec's envelope, the right status, nothing half-applied.

One server per database backend serves the whole module; each test makes its own accounts and
markets. After every rejected order the account's balance, orders and positions (and where it
matters the book) are compared with a snapshot taken before.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import NO_LIMITS, LiveServer, live_server, sqlite_only
from tests.signed_client import Admin, SignedClient, signature

LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|/work/|sqlalchemy|psycopg|sqlite3", re.I
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One connection pool for unauthenticated calls (a new client per call costs ~50 ms)."""
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def boss(live: LiveServer) -> Iterator[Admin]:
    admin = Admin(live.api, live.admin_token)
    yield admin
    admin.http.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def quiet_market(boss: Admin) -> str:
    """A market shared by tests whose orders are all rejected: it must stay empty."""
    market_id = unique("quiet")
    boss.market(market_id)
    return market_id


@pytest.fixture(scope="module")
def rejectee(boss: Admin) -> Iterator[SignedClient]:
    """An account shared by tests whose orders are all rejected: it must never change."""
    client = boss.account(unique("rejectee"))
    yield client
    client.close()


@pytest.fixture
def market(boss: Admin) -> str:
    """A fresh open binary market: tick 0.001 on [0, 1]."""
    market_id = unique("err")
    boss.market(market_id)
    return market_id


@pytest.fixture
def alice(boss: Admin) -> Iterator[SignedClient]:
    client = boss.account(unique("alice"))
    yield client
    client.close()


@pytest.fixture
def bob(boss: Admin) -> Iterator[SignedClient]:
    client = boss.account(unique("bob"))
    yield client
    client.close()


def error_of(response: httpx.Response, status: int | set[int], code: str | None) -> dict[str, Any]:
    """Assert the envelope {"error": {"code","message","details"}}; return its details."""
    statuses = {status} if isinstance(status, int) else status
    settle(response)
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and re.fullmatch(r"[A-Z][A-Z_]+", error["code"]), body
    if code is not None:
        assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["details"], dict), body
    no_leak(response)
    details: dict[str, Any] = error["details"]
    return details


def settle(response: httpx.Response) -> None:
    """After a 5xx, let the server thread finish logging its traceback before we fail.

    On Python 3.11 the traceback module's ast.parse shares state between threads: pytest
    formatting our failure while the server formats its own traceback can crash pytest itself
    ("AST constructor recursion depth mismatch").
    """
    if response.status_code >= 500:
        time.sleep(0.3)


def no_leak(response: httpx.Response) -> None:
    settle(response)
    found = LEAKS.search(response.text)
    assert found is None, f"{found.group(0)!r} in {response.text}"


def field_of(details: dict[str, Any]) -> str:
    return str(details.get("field", ""))


def order(market_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "market_id": market_id,
        "side": "buy",
        "type": "limit",
        "price": 0.4,
        "size": 10,
    }
    body.update(fields)
    return body


def send_raw(
    client: SignedClient,
    method: str,
    path: str,
    raw: bytes | str,
    content_type: str | None = "application/json",
) -> httpx.Response:
    """Send exact body bytes, correctly signed, so only the body itself can be wrong."""
    data = raw.encode() if isinstance(raw, str) else raw
    ts = str(int(time.time() * 1000))
    sig = signature(client.api_secret, ts, method, "/v1" + path, data.decode("latin-1"))
    headers = {
        "Authorization": f"Bearer {client.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": sig,
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.http.request(method, client.api + path, content=data, headers=headers)


def snapshot(client: SignedClient) -> dict[str, Any]:
    """What a rejected order must not change."""
    balance = client.get("/account/balance")
    orders = client.get("/orders?status=all")
    positions = client.get("/positions")
    fills = client.get("/fills")
    for response in (balance, orders, positions, fills):
        settle(response)
        assert response.status_code == 200, response.text
    return {
        "balance": balance.json(),
        "orders": orders.json()["orders"],
        "positions": positions.json()["positions"],
        "fills": fills.json()["fills"],
    }


def book(live: LiveServer, market_id: str) -> dict[str, Any]:
    response = httpx.get(f"{live.api}/markets/{market_id}/orderbook", timeout=30)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return {"bids": data["bids"], "asks": data["asks"]}


def placed(client: SignedClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/orders", body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def rejected(
    client: SignedClient, body: dict[str, Any], status: int | set[int], code: str
) -> dict[str, Any]:
    """Place ``body``, expect the error, and check nothing at all changed."""
    before = snapshot(client)
    details = error_of(client.post("/orders", body), status, code)
    assert snapshot(client) == before
    return details


# --- HTTP-level errors -------------------------------------------------------------------------


@sqlite_only
def test_unknown_route_is_404_in_the_envelope(live: LiveServer, http: httpx.Client) -> None:
    for path in ("/v1/no-such-thing", "/v1/markets/x/nothing", "/v1/orders/ord_1/extra", "/v1/"):
        for method in ("GET", "POST", "DELETE"):
            error_of(http.request(method, live.url + path), 404, None)


@sqlite_only
def test_unknown_route_outside_v1_is_404_in_the_envelope(
    live: LiveServer, http: httpx.Client
) -> None:
    for path in ("/nope", "/v2/markets", "/v1x/markets"):
        error_of(http.get(live.url + path), 404, None)


@sqlite_only
def test_wrong_method_is_405_in_the_envelope(
    live: LiveServer, http: httpx.Client, rejectee: SignedClient
) -> None:
    for method, path in (
        ("PUT", "/v1/markets"),
        ("DELETE", "/v1/time"),
        ("POST", "/v1/markets/x/orderbook"),
        ("PUT", "/v1/orders"),
    ):
        error_of(http.request(method, live.url + path), 405, None)
    # Signed, on a private path.
    error_of(rejectee.request("PUT", "/orders", {"size": 1}), 405, None)


@sqlite_only
def test_malformed_json_is_invalid_request(live: LiveServer, rejectee: SignedClient) -> None:
    alice = rejectee
    before = snapshot(alice)
    for raw in ('{"market_id": "x", "side": ', "not json", "[1, 2", "{'size': 1}", "\xff\xfe"):
        details = error_of(send_raw(alice, "POST", "/orders", raw), 400, "INVALID_REQUEST")
        assert field_of(details) == "body", (raw, details)
    for raw in ("[]", '"a string"', "42", "null", '{"size": NaN}'):
        error_of(send_raw(alice, "POST", "/orders", raw), 400, "INVALID_REQUEST")
    assert snapshot(alice) == before


@sqlite_only
def test_wrong_content_type_is_415(live: LiveServer, alice: SignedClient, market: str) -> None:
    raw = json.dumps(order(market))
    before = snapshot(alice)
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        None,
    ):
        error_of(send_raw(alice, "POST", "/orders", raw, content_type), 415, None)
    assert snapshot(alice) == before
    # A charset parameter is still JSON.
    ok = send_raw(alice, "POST", "/orders", raw, "application/json; charset=utf-8")
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"size": "abc"}, "size"),
        ({"size": 10.5}, "size"),
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": None}, "size"),
        ({"side": "hold"}, "side"),
        ({"side": "BUY "}, "side"),
        ({"type": "stop"}, "type"),
        ({"time_in_force": "FOREVER"}, "time_in_force"),
        ({"colour": "red"}, "colour"),
        ({"post_only": "yes"}, "post_only"),
        ({"price": "abc"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": None}, "price"),
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"expire_at": "tomorrow", "time_in_force": "GTD"}, "expire_at"),
    ],
)
@sqlite_only
def test_invalid_field_names_the_field(
    live: LiveServer, rejectee: SignedClient, quiet_market: str, change: dict[str, Any], field: str
) -> None:
    alice, body = rejectee, order(quiet_market)
    body.update(change)
    if change.get("price", 0) is None:
        body.pop("price")
    if change.get("size", 0) is None:
        body.pop("size")
    details = rejected(alice, body, 400, "INVALID_REQUEST")
    assert field in field_of(details), details


@pytest.mark.parametrize("missing", ["market_id", "side", "size"])
@sqlite_only
def test_missing_field_names_the_field(
    live: LiveServer, rejectee: SignedClient, quiet_market: str, missing: str
) -> None:
    alice, body = rejectee, order(quiet_market)
    del body[missing]
    details = rejected(alice, body, 400, "INVALID_REQUEST")
    assert missing in field_of(details), details


@sqlite_only
def test_oversized_body_is_413(live: LiveServer, rejectee: SignedClient, quiet_market: str) -> None:
    alice, body = rejectee, order(quiet_market, client_order_id="x")
    body["padding"] = "p" * (64 * 1024 + 10)
    raw = json.dumps(body)
    before = snapshot(alice)
    error_of(send_raw(alice, "POST", "/orders", raw), 413, None)

    # Streamed without a Content-Length: the limit holds on what arrives.
    data = raw.encode()
    ts = str(int(time.time() * 1000))
    headers = {
        "Authorization": f"Bearer {alice.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": signature(alice.api_secret, ts, "POST", "/v1/orders", raw),
        "Content-Type": "application/json",
    }
    chunks = (data[i : i + 8192] for i in range(0, len(data), 8192))
    streamed = alice.http.post(alice.api + "/orders", content=chunks, headers=headers)
    error_of(streamed, 413, None)
    assert snapshot(alice) == before

    # Just under the limit is parsed as usual (and fails on the unknown field, not the size).
    body["padding"] = "p" * 1000
    error_of(alice.post("/orders", body), 400, "INVALID_REQUEST")


# --- order rejections ------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("price", [0.8705, "0.8705", 0.0001, "0.4000001", 1e-9])
def test_price_off_the_tick_grid_is_invalid_price(
    live: LiveServer, rejectee: SignedClient, quiet_market: str, price: Any
) -> None:
    rejected(rejectee, order(quiet_market, price=price), 400, "INVALID_PRICE")


@sqlite_only
@pytest.mark.parametrize("price", [1.5, "1.001", -0.1, 0, 1, 1000, "1e400"])
def test_price_outside_the_range_is_invalid_price(
    live: LiveServer, rejectee: SignedClient, quiet_market: str, price: Any
) -> None:
    rejected(rejectee, order(quiet_market, price=price), 400, "INVALID_PRICE")


def test_invalid_price_details_use_decimal_prices(
    rejectee: SignedClient, quiet_market: str
) -> None:
    """The API speaks decimal prices (DESIGN §2); details must not leak the engine's ticks."""
    details = rejected(rejectee, order(quiet_market, price=1.5), 400, "INVALID_PRICE")
    for key, expected in (("price", 1.5), ("floor", 0.0), ("cap", 1.0)):
        if key in details:
            assert float(details[key]) == expected, details


def test_boolean_price_is_not_a_number(boss: Admin, alice: SignedClient, quiet_market: str) -> None:
    """``true`` is not a decimal: refused as INVALID_REQUEST, never read as price 1."""
    index_id = unique("idx")
    boss.market(index_id, kind="index")
    for market_id in (index_id, quiet_market):
        details = rejected(alice, order(market_id, price=True), 400, "INVALID_REQUEST")
        assert field_of(details) == "price", details
        details = rejected(
            alice, order(market_id, price=False, side="sell"), 400, "INVALID_REQUEST"
        )
        assert field_of(details) == "price", details


def test_index_market_price_grid_and_range(boss: Admin, alice: SignedClient) -> None:
    market_id = unique("idx")
    boss.market(market_id, kind="index")
    rejected(alice, order(market_id, price=50.05), 400, "INVALID_PRICE")
    rejected(alice, order(market_id, price=100.1), 400, "INVALID_PRICE")
    rejected(alice, order(market_id, price=-1), 400, "INVALID_PRICE")
    assert placed(alice, order(market_id, price="50.1"))["price"] == 50.1


def test_market_not_found(live: LiveServer, http: httpx.Client, rejectee: SignedClient) -> None:
    alice = rejectee
    details = rejected(alice, order("no-such-market"), 404, "MARKET_NOT_FOUND")
    assert details.get("market_id") == "no-such-market", details
    for path in (
        "/markets/no-such-market",
        "/markets/no-such-market/orderbook",
        "/markets/no-such-market/trades",
        "/markets/no-such-market/candles",
    ):
        error_of(http.get(live.api + path), 404, "MARKET_NOT_FOUND")
    error_of(alice.get("/orders?market_id=no-such-market"), 404, "MARKET_NOT_FOUND")
    error_of(alice.delete("/orders?market_id=no-such-market"), 404, "MARKET_NOT_FOUND")


def test_insufficient_balance_reports_usdc_amounts(boss: Admin, market: str) -> None:
    poor = boss.account(unique("poor"), deposit=100)
    try:
        # A long at 0.5 locks 0.5 per contract: 1000 contracts need 500.00 USDC.
        details = rejected(
            poor, order(market, side="buy", price=0.5, size=1000), 400, "INSUFFICIENT_BALANCE"
        )
        assert details["required"] == pytest.approx(500.0) and details[
            "available"
        ] == pytest.approx(100.0)
        assert isinstance(details["required"], int | float) and isinstance(
            details["available"], int | float
        )

        # A short at 0.3 locks 1 - 0.3 = 0.7 per contract: 1000 contracts need 700.00.
        details = rejected(
            poor, order(market, side="sell", price=0.3, size=1000), 400, "INSUFFICIENT_BALANCE"
        )
        assert details["required"] == pytest.approx(700.0) and details[
            "available"
        ] == pytest.approx(100.0)

        # With 100 @ 0.123 resting (12.30 reserved), 200 @ 0.45 needs 90.00 of the 87.70 left.
        placed(poor, order(market, side="buy", price=0.123, size=100))
        balance = poor.get("/account/balance").json()
        assert balance["available"] == pytest.approx(87.7) and balance["reserved"] == pytest.approx(
            12.3
        )
        details = rejected(
            poor, order(market, side="buy", price=0.45, size=200), 400, "INSUFFICIENT_BALANCE"
        )
        assert details["required"] == pytest.approx(90.0) and details["available"] == pytest.approx(
            87.7
        )
        # Exact cents, not float noise from a conversion.
        assert round(details["available"], 6) == 87.7
    finally:
        poor.close()


def test_insufficient_balance_on_an_index_market(boss: Admin) -> None:
    market_id = unique("idx")
    boss.market(market_id, kind="index")
    poor = boss.account(unique("poor"), deposit=100)
    try:
        # $1 per point: a long at 40.0 locks 40 per contract, 10 contracts 400.00.
        details = rejected(poor, order(market_id, price=40, size=10), 400, "INSUFFICIENT_BALANCE")
        assert details["required"] == pytest.approx(400.0) and details[
            "available"
        ] == pytest.approx(100.0)
    finally:
        poor.close()


@pytest.mark.parametrize("expire_at", [253_402_300_800_000, 2**63], ids=["year-10000", "2**63-ms"])
def test_expiry_beyond_what_can_be_stored_is_refused(tmp_path: Path, expire_at: int) -> None:
    """A GTD expiry the server cannot represent is a bad field, not a crash.

    Its own server: if the server gets this wrong it may stop taking commands altogether.
    """
    with live_server(tmp_path / "var", **NO_LIMITS) as server:
        boss = Admin(server.api, server.admin_token)
        market_id = unique("gtd")
        boss.market(market_id)
        alice, bob = boss.account("alice"), boss.account("bob")
        body = order(market_id, time_in_force="GTD", expire_at=expire_at)
        details = rejected(alice, body, 400, "INVALID_REQUEST")
        assert field_of(details) == "expire_at", details
        # The exchange still takes everyone's orders.
        assert placed(bob, order(market_id))["status"] == "open"
        assert placed(alice, order(market_id, price=0.3))["status"] == "open"
        for client in (alice, bob):
            client.close()
        boss.http.close()


def test_order_size_too_small(boss: Admin, alice: SignedClient) -> None:
    market_id = unique("min")
    boss.market(market_id, min_size=10)
    rejected(alice, order(market_id, size=9), 400, "ORDER_SIZE_TOO_SMALL")
    rejected(alice, order(market_id, size=1), 400, "ORDER_SIZE_TOO_SMALL")
    assert placed(alice, order(market_id, size=10))["status"] == "open"


def test_position_limit_exceeded(boss: Admin, alice: SignedClient) -> None:
    market_id = unique("pos")
    boss.market(market_id, max_position=100)
    rejected(alice, order(market_id, size=101), 400, "POSITION_LIMIT_EXCEEDED")
    rejected(alice, order(market_id, side="sell", size=150), 400, "POSITION_LIMIT_EXCEEDED")
    # Open orders count toward the worst case: 60 resting + 50 more is over 100.
    placed(alice, order(market_id, size=60))
    rejected(alice, order(market_id, size=50), 400, "POSITION_LIMIT_EXCEEDED")


def test_post_only_would_cross(
    live: LiveServer, alice: SignedClient, bob: SignedClient, market: str
) -> None:
    placed(bob, order(market, side="sell", price=0.5, size=10))
    before_book = book(live, market)
    bob_before = snapshot(bob)
    details = rejected(
        alice, order(market, side="buy", price=0.5, post_only=True), 400, "POST_ONLY_WOULD_CROSS"
    )
    rejected(
        alice, order(market, side="buy", price=0.6, post_only=True), 400, "POST_ONLY_WOULD_CROSS"
    )
    assert book(live, market) == before_book
    assert snapshot(bob) == bob_before
    # Prices in the details are decimal prices, not internal ticks.
    for key in ("price", "opposite_best"):
        if key in details:
            assert float(details[key]) == 0.5, details
    # Below the ask it rests.
    assert placed(alice, order(market, side="buy", price=0.499, post_only=True))["status"] == "open"


def test_order_not_found(rejectee: SignedClient) -> None:
    alice = rejectee
    for order_id in ("ord_999999999", "ord_0", "garbage", "ord_-1", "ord_" + "9" * 30, "trd_1"):
        error_of(alice.get(f"/orders/{order_id}"), 404, "ORDER_NOT_FOUND")
        error_of(alice.delete(f"/orders/{order_id}"), 404, "ORDER_NOT_FOUND")
        error_of(alice.patch(f"/orders/{order_id}", {"size": 1}), 404, "ORDER_NOT_FOUND")


def test_order_not_cancelable(alice: SignedClient, bob: SignedClient, market: str) -> None:
    maker = placed(bob, order(market, side="sell", price=0.5, size=10))
    taker = placed(alice, order(market, side="buy", price=0.5, size=10))
    assert taker["status"] == "filled", taker
    before = snapshot(alice)
    for order_id in (taker["order_id"],):
        details = error_of(alice.delete(f"/orders/{order_id}"), {400, 409}, "ORDER_NOT_CANCELABLE")
        assert details.get("status") in (None, "filled"), details
        error_of(
            alice.patch(f"/orders/{order_id}", {"size": 5}), {400, 409}, "ORDER_NOT_CANCELABLE"
        )
    error_of(bob.delete(f"/orders/{maker['order_id']}"), {400, 409}, "ORDER_NOT_CANCELABLE")
    assert snapshot(alice) == before

    # A canceled order cannot be canceled again.
    resting = placed(alice, order(market, side="buy", price=0.1, size=10))
    assert alice.delete(f"/orders/{resting['order_id']}").status_code == 200
    error_of(alice.delete(f"/orders/{resting['order_id']}"), {400, 409}, "ORDER_NOT_CANCELABLE")


def test_market_closed(boss: Admin, alice: SignedClient) -> None:
    halted = unique("halt")
    boss.market(halted)
    boss.post(f"/markets/{halted}/halt")
    rejected(alice, order(halted), {400, 409}, "MARKET_CLOSED")

    pending = unique("pend")
    boss.post(
        "/markets",
        {"id": pending, "name": pending, "type": "binary", "close_time": 4_102_444_800_000},
    )
    rejected(alice, order(pending), {400, 409}, "MARKET_CLOSED")

    closed = unique("closed")
    boss.market(closed)
    boss.post(f"/markets/{closed}/close")
    rejected(alice, order(closed), {400, 409}, "MARKET_CLOSED")

    boss.post(f"/markets/{halted}/resume")
    assert placed(alice, order(halted))["status"] == "open"


def test_client_order_id_retry_and_duplicate(alice: SignedClient, market: str) -> None:
    first = alice.post("/orders", order(market, client_order_id="cid-1"))
    assert first.status_code == 201, first.text
    retry = alice.post("/orders", order(market, client_order_id="cid-1"))
    assert retry.status_code == 200, retry.text
    assert retry.json()["order_id"] == first.json()["order_id"]
    assert len(snapshot(alice)["orders"]) == 1

    # Concurrent first sends: one order, every other reply is that order or a duplicate error.
    results: list[httpx.Response] = []
    body = order(market, client_order_id="cid-race", price=0.2)

    base = int(time.time() * 1000)

    def send(i: int) -> None:
        client = SignedClient(alice.api, alice.api_key, alice.api_secret)
        # Six clients of one key in one millisecond would sign the same message, which the
        # server refuses as a replay: each signs with its own millisecond.
        results.append(client.post("/orders", body, timestamp=base + i))
        client.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = set()
    for response in results:
        if response.status_code in (200, 201):
            ids.add(response.json()["order_id"])
        else:
            error_of(response, {400, 409}, "DUPLICATE_CLIENT_ORDER_ID")
    assert len(ids) == 1, [r.text for r in results]
    orders = [o for o in snapshot(alice)["orders"] if o["client_order_id"] == "cid-race"]
    assert len(orders) == 1
    assert [r.status_code for r in results].count(201) == 1


# --- list and market-data parameters --------------------------------------------------------------


def cursor_of(kind: str, key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, key]).encode()).decode().rstrip("=")


BAD_CURSORS = ["garbage", "!!!", "eyJ4IjoxfQ", cursor_of("nothing", 1), "a" * 5000]


def test_bad_cursor_is_invalid_request(
    live: LiveServer, http: httpx.Client, rejectee: SignedClient, quiet_market: str
) -> None:
    for cursor in BAD_CURSORS:
        for path in ("/orders", "/fills", "/account/ledger"):
            details = error_of(rejectee.get(f"{path}?cursor={cursor}"), 400, "INVALID_REQUEST")
            assert field_of(details) == "cursor", (path, cursor, details)
        public = http.get(f"{live.api}/markets/{quiet_market}/trades", params={"cursor": cursor})
        assert field_of(error_of(public, 400, "INVALID_REQUEST")) == "cursor", cursor
    # Another list's cursor does not page this one.
    error_of(rejectee.get(f"/orders?cursor={cursor_of('trades', 1)}"), 400, "INVALID_REQUEST")
    wrong_list = http.get(
        f"{live.api}/markets/{quiet_market}/trades", params={"cursor": cursor_of("orders", 1)}
    )
    error_of(wrong_list, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("key", [-1, "1", 1.5, 2**63, 10**30])
def test_cursor_with_a_bad_key_is_invalid_request(
    live: LiveServer, http: httpx.Client, rejectee: SignedClient, quiet_market: str, key: Any
) -> None:
    """Well-formed cursors whose key the database cannot hold are refused, not a crash."""
    for kind, path in (("orders", "/orders"), ("ledger", "/account/ledger"), ("fills", "/fills")):
        response = rejectee.get(f"{path}?cursor={cursor_of(kind, key)}")
        if response.status_code != 200:
            error_of(response, 400, "INVALID_REQUEST")
        no_leak(response)
    public = http.get(
        f"{live.api}/markets/{quiet_market}/trades", params={"cursor": cursor_of("trades", key)}
    )
    if public.status_code != 200:
        error_of(public, 400, "INVALID_REQUEST")


def test_a_good_cursor_pages(alice: SignedClient, market: str) -> None:
    for price in (0.1, 0.2, 0.3):
        placed(alice, order(market, price=price))
    first = alice.get("/orders?status=all&limit=2").json()
    assert len(first["orders"]) == 2 and first["next_cursor"]
    second = alice.get(f"/orders?status=all&limit=2&cursor={first['next_cursor']}").json()
    assert len(second["orders"]) == 1 and second["next_cursor"] is None


@sqlite_only
def test_orderbook_depth_out_of_range(
    live: LiveServer, http: httpx.Client, quiet_market: str
) -> None:
    for depth in ("0", "101", "-1", "abc", "1.5", ""):
        response = http.get(f"{live.api}/markets/{quiet_market}/orderbook", params={"depth": depth})
        details = error_of(response, 400, "INVALID_REQUEST")
        assert field_of(details) == "depth", (depth, details)
    for depth in ("1", "100"):
        response = http.get(f"{live.api}/markets/{quiet_market}/orderbook", params={"depth": depth})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("status=bogus", "status"),
        ("start_date=2025-13-45", "start_date"),
        ("end_date=yesterday", "end_date"),
    ],
)
@sqlite_only
def test_bad_list_parameters(
    live: LiveServer, rejectee: SignedClient, query: str, field: str
) -> None:
    details = error_of(rejectee.get(f"/orders?{query}"), 400, "INVALID_REQUEST")
    assert field_of(details) == field, details


def test_extreme_dates_do_not_crash(rejectee: SignedClient) -> None:
    for query in ("start_date=99999999999999999999999", "end_date=99999999999999999999999"):
        response = rejectee.get(f"/orders?{query}")
        settle(response)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            error_of(response, 400, "INVALID_REQUEST")
        no_leak(response)


@sqlite_only
def test_bad_candle_interval(live: LiveServer, http: httpx.Client, quiet_market: str) -> None:
    response = http.get(f"{live.api}/markets/{quiet_market}/candles", params={"interval": "7m"})
    assert field_of(error_of(response, 400, "INVALID_REQUEST")) == "interval"
