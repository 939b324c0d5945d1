"""Signed requests against a real server over HTTP (spec "Authentication", DESIGN §7).

One server per database backend serves the whole module (starting one per test on both
backends would cost more than the tests themselves); every test makes its own accounts and
markets, so tests stay independent of each other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ballast_exchange.store.database import Database
from tests.live_server import LiveServer, live_server, sqlite_only
from tests.signed_client import Admin, SignedClient, signature


@pytest.fixture(scope="module")
def boss(live: LiveServer) -> Iterator[Admin]:
    admin = Admin(live.api, live.admin_token)
    yield admin
    admin.http.close()


@pytest.fixture
def market(boss: Admin) -> str:
    """A fresh open binary market (tick 0.001 on [0, 1])."""
    market_id = f"auth-{uuid.uuid4().hex[:10]}"
    boss.market(market_id)
    return market_id


@pytest.fixture
def alice(boss: Admin) -> Iterator[SignedClient]:
    client = boss.account(f"alice-{uuid.uuid4().hex[:6]}")
    yield client
    client.close()


@pytest.fixture
def bob(boss: Admin) -> Iterator[SignedClient]:
    client = boss.account(f"bob-{uuid.uuid4().hex[:6]}")
    yield client
    client.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def raw_signed(
    client: SignedClient,
    method: str,
    path: str,
    raw: str = "",
    *,
    timestamp: int | None = None,
    sign_method: str | None = None,
    sign_path: str | None = None,
    sign_body: str | None = None,
    secret: str | None = None,
) -> httpx.Response:
    """Send ``raw`` to ``path`` (relative to /v1), signing what the keyword arguments say."""
    ts = str(timestamp if timestamp is not None else now_ms())
    sig = signature(
        secret if secret is not None else client.api_secret,
        ts,
        sign_method or method,
        sign_path if sign_path is not None else "/v1" + path,
        raw if sign_body is None else sign_body,
    )
    headers = {
        "Authorization": f"Bearer {client.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": sig,
    }
    if raw:
        headers["Content-Type"] = "application/json"
    return client.http.request(method, client.api + path, content=raw or None, headers=headers)


def settle(response: httpx.Response) -> None:
    """After a 5xx, let the server thread finish logging its traceback before we fail.

    On Python 3.11 the traceback module's ast.parse shares state between threads: pytest
    formatting our failure while the server formats its own traceback can crash pytest itself
    ("AST constructor recursion depth mismatch").
    """
    if response.status_code >= 500:
        time.sleep(0.3)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the spec's error envelope with this status and code; return its details."""
    settle(response)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "details"} <= set(error), body
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["details"], dict), body
    assert "Traceback" not in response.text
    details: dict[str, Any] = error["details"]
    return details


def order_body(market_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "market_id": market_id,
        "side": "buy",
        "type": "limit",
        "price": 0.4,
        "size": 10,
        "time_in_force": "GTC",
    }
    body.update(fields)
    return body


def all_orders(client: SignedClient) -> list[dict[str, Any]]:
    response = client.get("/orders?status=all")
    assert response.status_code == 200, response.text
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def new_key(boss: Admin, account_id: str, **fields: Any) -> SignedClient:
    data = boss.post("/keys", {"account_id": account_id, **fields})
    client = SignedClient(boss.api, data["api_key"], data["api_secret"])
    client.account_id = account_id  # type: ignore[attr-defined]
    return client


# --- signatures that work --------------------------------------------------------------------


def test_signed_requests_work(alice: SignedClient, market: str) -> None:
    balance = alice.get("/account/balance")
    assert balance.status_code == 200, balance.text
    assert balance.json()["total_balance"] == 10_000

    placed = alice.post("/orders", order_body(market))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["order_id"].startswith("ord_")
    assert order["status"] == "open"

    listed = alice.get("/orders?status=open")
    assert listed.status_code == 200, listed.text
    assert [o["order_id"] for o in listed.json()["orders"]] == [order["order_id"]]

    canceled = alice.delete(f"/orders/{order['order_id']}")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"


@sqlite_only
def test_spec_sign_request_example_verbatim(alice: SignedClient) -> None:
    """The spec's own ``sign_request`` function, untouched, produces accepted headers."""

    def sign_request(secret: str, method: str, path: str, body: str = "") -> tuple[str, str]:
        timestamp = str(int(time.time() * 1000))
        message = f"{timestamp}{method}{path}{body}"
        sig = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        return sig, timestamp

    sig, ts = sign_request(alice.api_secret, "GET", "/v1/orders?status=open")
    response = httpx.get(
        alice.api + "/orders?status=open",
        headers={
            "Authorization": f"Bearer {alice.api_key}",
            "X-BM-Signature": sig,
            "X-BM-Timestamp": ts,
        },
    )
    assert response.status_code == 200, response.text


@sqlite_only
def test_base_relative_path_is_accepted(alice: SignedClient, market: str) -> None:
    got = alice.get("/orders?status=open", sign_path="/orders?status=open")
    assert got.status_code == 200, got.text

    placed = alice.post("/orders", order_body(market), sign_path="/orders")
    assert placed.status_code == 201, placed.text

    order_id = placed.json()["order_id"]
    one = alice.get(f"/orders/{order_id}", sign_path=f"/orders/{order_id}")
    assert one.status_code == 200, one.text
    canceled = alice.delete(f"/orders/{order_id}", sign_path=f"/orders/{order_id}")
    assert canceled.status_code == 200, canceled.text


# --- who is calling ----------------------------------------------------------------------------


@sqlite_only
def test_missing_authorization_is_unauthorized(live: LiveServer, alice: SignedClient) -> None:
    for method, path in (("GET", "/orders"), ("GET", "/account/balance"), ("DELETE", "/orders")):
        bare = httpx.request(method, live.api + path)
        error_of(bare, 401, "UNAUTHORIZED")

    # Signature and timestamp headers without the key are still no key.
    ts = str(now_ms())
    sig = signature(alice.api_secret, ts, "GET", "/v1/orders", "")
    headless = httpx.get(
        live.api + "/orders", headers={"X-BM-Timestamp": ts, "X-BM-Signature": sig}
    )
    error_of(headless, 401, "UNAUTHORIZED")

    # Not a bearer token at all.
    basic = httpx.get(
        live.api + "/orders",
        headers={
            "Authorization": "Basic YWxpY2U6cGFzcw==",
            "X-BM-Timestamp": ts,
            "X-BM-Signature": sig,
        },
    )
    error_of(basic, 401, "UNAUTHORIZED")


@sqlite_only
def test_unknown_key_is_unauthorized(live: LiveServer, alice: SignedClient) -> None:
    stranger = SignedClient(
        live.api, "bmkt_test_" + uuid.uuid4().hex, "bmkt_secret_" + uuid.uuid4().hex
    )
    try:
        error_of(stranger.get("/orders"), 401, "UNAUTHORIZED")
        # A real secret with a made-up key is no better.
        forged = SignedClient(live.api, alice.api_key + "x", alice.api_secret)
        error_of(forged.get("/account/balance"), 401, "UNAUTHORIZED")
        forged.close()
    finally:
        stranger.close()


@sqlite_only
def test_wrong_signature_explains_the_shape_but_never_the_secret(
    alice: SignedClient, market: str
) -> None:
    ts = now_ms()
    raw = json.dumps(order_body(market))
    wrong_secret = "bmkt_secret_" + uuid.uuid4().hex
    response = raw_signed(alice, "POST", "/orders", raw, timestamp=ts, secret=wrong_secret)
    details = error_of(response, 401, "INVALID_SIGNATURE")

    # The details describe the canonical message shape ...
    described = [response.json()["error"]["message"], *map(str, details.values())]
    assert any(
        re.search(r"timestamp.*method.*path.*body", text, re.I | re.S) for text in described
    ), details
    # ... and never the secret, or the signature the server expected, in any form we know.
    text = response.text
    assert alice.api_secret not in text
    for signed_path in ("/v1/orders", "/orders"):
        expected = hmac_hex(alice.api_secret, f"{ts}POST{signed_path}{raw}")
        assert expected not in text
        assert expected.upper() not in text
    assert "Traceback" not in text

    assert all_orders(alice) == []


@sqlite_only
def test_garbage_and_missing_signature_headers(alice: SignedClient) -> None:
    for bad in ("", "nothex", "0" * 64, "0" * 63, "ZZ" * 32):
        error_of(alice.get("/orders", headers={"X-BM-Signature": bad}), 401, "INVALID_SIGNATURE")
    ts = str(now_ms())
    no_sig = httpx.get(
        alice.api + "/orders",
        headers={"Authorization": f"Bearer {alice.api_key}", "X-BM-Timestamp": ts},
    )
    error_of(no_sig, 401, "INVALID_SIGNATURE")
    no_ts = httpx.get(
        alice.api + "/orders",
        headers={"Authorization": f"Bearer {alice.api_key}", "X-BM-Signature": "a" * 64},
    )
    assert no_ts.status_code == 401, no_ts.text


@sqlite_only
def test_body_changed_after_signing_is_refused(alice: SignedClient, market: str) -> None:
    signed = json.dumps(order_body(market, size=10))
    sent = json.dumps(order_body(market, size=1000))
    response = raw_signed(alice, "POST", "/orders", sent, sign_body=signed)
    error_of(response, 401, "INVALID_SIGNATURE")
    # Even whitespace counts: the signature covers the raw bytes.
    spaced = raw_signed(alice, "POST", "/orders", signed + " ", sign_body=signed)
    error_of(spaced, 401, "INVALID_SIGNATURE")
    assert all_orders(alice) == []
    assert alice.get("/account/balance").json()["reserved"] == 0


@sqlite_only
def test_query_changed_after_signing_is_refused(alice: SignedClient, market: str) -> None:
    error_of(
        alice.get("/orders?status=all", sign_path="/v1/orders?status=open"),
        401,
        "INVALID_SIGNATURE",
    )
    error_of(alice.get("/orders?status=open", sign_path="/v1/orders"), 401, "INVALID_SIGNATURE")
    error_of(
        alice.get("/orders?status=open&limit=5", sign_path="/v1/orders?status=open"),
        401,
        "INVALID_SIGNATURE",
    )
    # The relative form must match the query too.
    error_of(
        alice.get("/orders?status=all", sign_path="/orders?status=open"), 401, "INVALID_SIGNATURE"
    )
    # Cancel-all scoped to one market must not be turned into cancel-all everywhere.
    error_of(
        alice.delete("/orders", sign_path=f"/v1/orders?market_id={market}"),
        401,
        "INVALID_SIGNATURE",
    )


@sqlite_only
def test_method_changed_after_signing_is_refused(alice: SignedClient, market: str) -> None:
    placed = alice.post("/orders", order_body(market))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]

    # A signature for reading the order is replayed as a cancel.
    response = raw_signed(alice, "DELETE", f"/orders/{order_id}", sign_method="GET")
    error_of(response, 401, "INVALID_SIGNATURE")
    assert alice.get(f"/orders/{order_id}").json()["status"] == "open"

    # And a signature for placing is replayed as an amend.
    raw = json.dumps({"size": 5})
    amended = raw_signed(alice, "PATCH", f"/orders/{order_id}", raw, sign_method="POST")
    error_of(amended, 401, "INVALID_SIGNATURE")
    assert alice.get(f"/orders/{order_id}").json()["size"] == 10


# --- time ------------------------------------------------------------------------------------


@sqlite_only
def test_stale_and_future_timestamps_expire(alice: SignedClient, market: str) -> None:
    stale = now_ms() - 40_000
    details = error_of(alice.get("/orders", timestamp=stale), 401, "TIMESTAMP_EXPIRED")
    skews = [value for key, value in details.items() if "skew" in key.lower()]
    assert skews, f"no skew in {details}"
    skew = skews[0]
    assert isinstance(skew, int | float)
    # 40 s old, in milliseconds or seconds, with a little slack for the round trip.
    assert 39_000 <= abs(skew) <= 45_000 or 39 <= abs(skew) <= 45, details

    future = now_ms() + 40_000
    error_of(alice.post("/orders", order_body(market), timestamp=future), 401, "TIMESTAMP_EXPIRED")

    # Seconds instead of milliseconds are refused too (they look 55 years old).
    error_of(alice.get("/orders", timestamp=int(time.time())), 401, "TIMESTAMP_EXPIRED")

    # Inside the window is fine.
    assert alice.get("/orders", timestamp=now_ms() - 20_000).status_code == 200
    assert all_orders(alice) == []


@sqlite_only
def test_server_time_endpoint(live: LiveServer) -> None:
    response = httpx.get(live.api + "/time")
    assert response.status_code == 200, response.text
    server_ms = response.json()["server_time"]
    assert abs(server_ms - now_ms()) < 5_000


@sqlite_only
def test_captured_request_replayed_after_the_window_fails(alice: SignedClient, market: str) -> None:
    # Captured 28.5 s into its 30 s life: accepted once, refused when replayed 1.8 s later.
    ts = str(now_ms() - 28_500)
    raw = json.dumps(order_body(market))
    headers = {
        "Authorization": f"Bearer {alice.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": signature(alice.api_secret, ts, "POST", "/v1/orders", raw),
        "Content-Type": "application/json",
    }
    first = httpx.post(alice.api + "/orders", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    time.sleep(1.8)
    replay = httpx.post(alice.api + "/orders", content=raw, headers=headers)
    error_of(replay, 401, "TIMESTAMP_EXPIRED")
    assert [o["order_id"] for o in all_orders(alice)] == [first.json()["order_id"]]


# --- whose data --------------------------------------------------------------------------------


def test_another_accounts_key_cannot_see_or_touch_the_order(
    alice: SignedClient, bob: SignedClient, market: str
) -> None:
    placed = alice.post("/orders", order_body(market, price=0.123, size=4321))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    missing_id = "ord_999999999"

    for call in (
        lambda oid: bob.get(f"/orders/{oid}"),
        lambda oid: bob.delete(f"/orders/{oid}"),
        lambda oid: bob.patch(f"/orders/{oid}", {"size": 5}),
    ):
        theirs = call(order_id)
        nobodys = call(missing_id)
        details = error_of(theirs, 404, "ORDER_NOT_FOUND")
        error_of(nobodys, 404, "ORDER_NOT_FOUND")
        # Someone else's order looks exactly like one that does not exist.
        assert theirs.text.replace(order_id, "ID") == nobodys.text.replace(missing_id, "ID")
        text = theirs.text.replace(order_id, "ID")
        for secret in (alice.account_id, alice.api_key, market, "0.123", "4321"):  # type: ignore[attr-defined]
            assert secret not in text, (secret, theirs.text)
        assert set(details) <= {"order_id"}, details

    # Bob's lists do not show it and his cancel-all does not touch it.
    assert all_orders(bob) == []
    cancel_all = bob.delete("/orders")
    assert cancel_all.status_code == 200, cancel_all.text
    fills = bob.get("/fills")
    assert fills.status_code == 200 and fills.json()["fills"] == []

    mine = alice.get(f"/orders/{order_id}")
    assert mine.status_code == 200
    assert mine.json()["status"] == "open"
    assert mine.json()["size"] == 4321


def test_revoked_key_is_refused_on_the_very_next_request(boss: Admin, alice: SignedClient) -> None:
    spare = new_key(boss, alice.account_id, label="spare")  # type: ignore[attr-defined]
    try:
        assert spare.get("/account/balance").status_code == 200
        revoked = boss.post(f"/keys/{spare.api_key}/revoke")
        assert revoked["revoked"] is True
        error_of(spare.get("/account/balance"), 401, "UNAUTHORIZED")
        error_of(spare.get("/orders"), 401, "UNAUTHORIZED")
        # The account's other key is unaffected.
        assert alice.get("/account/balance").status_code == 200
        listed = boss.http.get(f"{boss.api}/admin/keys", params={"account_id": alice.account_id})  # type: ignore[attr-defined]
        row = next(k for k in listed.json()["keys"] if k["api_key"] == spare.api_key)
        assert row["revoked_at"] is not None
    finally:
        spare.close()


def test_read_scope_reads_but_cannot_trade(boss: Admin, alice: SignedClient, market: str) -> None:
    placed = alice.post("/orders", order_body(market))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    before = alice.get("/account/balance").json()

    reader = new_key(boss, alice.account_id, scopes=["read"], label="reader")  # type: ignore[attr-defined]
    try:
        listed = reader.get("/orders")
        assert listed.status_code == 200, listed.text
        assert [o["order_id"] for o in listed.json()["orders"]] == [order_id]
        assert reader.get("/account/balance").status_code == 200
        assert reader.get("/positions").status_code == 200

        error_of(reader.post("/orders", order_body(market)), 403, "FORBIDDEN")
        error_of(reader.delete(f"/orders/{order_id}"), 403, "FORBIDDEN")
        error_of(reader.delete("/orders"), 403, "FORBIDDEN")
        error_of(reader.patch(f"/orders/{order_id}", {"size": 5}), 403, "FORBIDDEN")
        error_of(reader.post("/orders/batch", {"orders": [order_body(market)]}), 403, "FORBIDDEN")
    finally:
        reader.close()

    assert [o["order_id"] for o in all_orders(alice)] == [order_id]
    assert alice.get(f"/orders/{order_id}").json()["status"] == "open"
    assert alice.get("/account/balance").json() == before


# --- public market data ----------------------------------------------------------------------


@sqlite_only
def test_public_market_data_without_a_key_but_not_with_bad_headers(
    live: LiveServer, alice: SignedClient, market: str
) -> None:
    paths = (
        "/markets",
        f"/markets/{market}",
        f"/markets/{market}/orderbook",
        f"/markets/{market}/trades",
    )
    for path in paths:
        response = httpx.get(live.api + path)
        assert response.status_code == 200, (path, response.text)

        # Signed properly with a real key: fine too.
        assert alice.get(path).status_code == 200, path

        unknown = httpx.get(live.api + path, headers={"Authorization": "Bearer bmkt_test_nope"})
        error_of(unknown, 401, "UNAUTHORIZED")

        bad_sig = alice.get(path, headers={"X-BM-Signature": "0" * 64})
        error_of(bad_sig, 401, "INVALID_SIGNATURE")

        stale = alice.get(path, timestamp=now_ms() - 40_000)
        error_of(stale, 401, "TIMESTAMP_EXPIRED")

        lone_signature = httpx.get(live.api + path, headers={"X-BM-Signature": "0" * 64})
        assert lone_signature.status_code == 401, (path, lone_signature.text)


# --- keys and secrets ------------------------------------------------------------------------


def test_sandbox_key_and_secret_formats(boss: Admin, alice: SignedClient) -> None:
    assert alice.api_key.startswith("bmkt_test_")
    assert len(alice.api_key) > len("bmkt_test_") + 16
    assert alice.api_secret.startswith("bmkt_secret_")
    assert len(alice.api_secret) > len("bmkt_secret_") + 16
    extra = boss.post("/keys", {"account_id": alice.account_id, "scopes": ["read"], "label": "x"})  # type: ignore[attr-defined]
    assert extra["api_key"].startswith("bmkt_test_")
    assert extra["api_secret"].startswith("bmkt_secret_")
    assert extra["api_key"] != alice.api_key
    assert extra["api_secret"] != alice.api_secret

    # The secret is shown once: listing keys never returns a secret.
    listed = boss.http.get(f"{boss.api}/admin/keys")
    assert listed.status_code == 200
    assert alice.api_secret not in listed.text
    assert extra["api_secret"] not in listed.text
    assert "bmkt_secret_" not in listed.text


def test_key_without_a_label_can_be_created(live: LiveServer, alice: SignedClient) -> None:
    """``label`` is optional in POST /admin/keys; leaving it out must not crash the server."""
    response = httpx.post(
        f"{live.api}/admin/keys",
        json={"account_id": alice.account_id, "scopes": ["read"]},  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {live.admin_token}"},
    )
    settle(response)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["api_key"].startswith("bmkt_test_")
    reader = SignedClient(live.api, created["api_key"], created["api_secret"])
    try:
        assert reader.get("/account/balance").status_code == 200
    finally:
        reader.close()


def test_production_keys_are_live_keys(tmp_path: Path) -> None:
    with live_server(tmp_path / "prod", env="production") as prod:
        boss = Admin(prod.api, prod.admin_token)
        client = boss.account("prod-desk")
        try:
            assert client.api_key.startswith("bmkt_live_")
            assert client.api_secret.startswith("bmkt_secret_")
            balance = client.get("/account/balance")
            assert balance.status_code == 200, balance.text
            # No demo market in production.
            assert httpx.get(prod.api + "/markets").json()["markets"] == []
        finally:
            client.close()
            boss.http.close()


def test_secret_is_not_stored_in_clear(live: LiveServer, boss: Admin, alice: SignedClient) -> None:
    extra = boss.post("/keys", {"account_id": alice.account_id, "label": "extra"})  # type: ignore[attr-defined]
    secrets = [alice.api_secret, extra["api_secret"]]
    url = live.runtime.settings.sqlalchemy_url
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(sa.text("SELECT * FROM api_keys"))]
            dump = repr(rows)
            assert any(alice.api_key in repr(row) for row in rows), "the key is not in api_keys"
            for secret in secrets:
                assert secret not in dump
                assert secret.removeprefix("bmkt_secret_") not in dump
            # Nor anywhere else in the database.
            tables = sa.inspect(conn).get_table_names()
            for table in tables:
                content = repr(conn.execute(sa.text(f'SELECT * FROM "{table}"')).fetchall())
                for secret in secrets:
                    assert secret.removeprefix("bmkt_secret_") not in content, table
    finally:
        database.engine.dispose()

    if url.startswith("sqlite:///"):
        # The raw SQLite files (database and write-ahead log) hold no copy either.
        path = Path(url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                data = file.read_bytes()
                for secret in secrets:
                    assert secret.removeprefix("bmkt_secret_").encode() not in data, file
