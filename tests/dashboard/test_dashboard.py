"""The account dashboard end to end: a real server, headless Chromium and the SDK.

The main journey signs up in the browser, makes an API key there, trades with it through the
SDK, watches the book move over the stream, cancels and revokes from the page, and sees the
SDK feel each step. The others check the security rules: login failures and their rate
limits, CSRF and Origin checks, cookie flags, and that users only ever touch their own
orders and keys. Screenshots of the main pages land in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from ballast import BallastClient
from ballast.errors import UnauthorizedError
from ballast_exchange.dashboard import login_guard, routes
from tests.live_server import LiveServer
from tests.signed_client import Admin

from .conftest import PASSWORD, SCREENSHOTS, unique, unique_email


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(0.1)


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def watch_errors(page: Any) -> list[str]:
    """Uncaught exceptions in the page's scripts."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def busy_market(admin: Admin, market_id: str) -> None:
    """A market with resting quotes on both sides and a few trades, from two other accounts."""
    admin.market(
        market_id,
        name=f"Suez Canal Availability ({market_id})",
        question="Will the Suez Canal be available for tanker transits through December 2026?",
        resolution_source="Suez Canal Authority navigation notices",
        maker_fee_bps=-5,
        taker_fee_bps=20,
    )
    maker = admin.account(unique("maker"), 100_000)
    taker = admin.account(unique("taker"), 100_000)
    for i in range(5):
        bid = {"market_id": market_id, "side": "buy", "price": f"0.{30 - i}", "size": 100 * (i + 1)}
        ask = {"market_id": market_id, "side": "sell", "price": f"0.{35 + i}", "size": 80 * (i + 1)}
        assert maker.post("/orders", bid).status_code == 201
        assert maker.post("/orders", ask).status_code == 201
    for price, size in (("0.36", 120), ("0.35", 40), ("0.37", 60)):
        order = {"market_id": market_id, "side": "buy", "price": price, "size": size}
        assert taker.post("/orders", {**order, "time_in_force": "IOC"}).status_code == 201
    maker.close()
    taker.close()


def test_markets_show_rules_status_and_settlement_evidence(
    server: LiveServer, admin: Admin, context: Any
) -> None:
    """Every market is listed with its question, rules and status; a proposed settlement
    shows its evidence hash on the list and, in full, on the market's page."""
    market_id = unique("bab")
    admin.market(
        market_id,
        name=f"Bab-el-Mandeb Transits ({market_id})",
        question="Will Bab-el-Mandeb tanker transits exceed 40 a day in November 2026?",
    )
    admin.post(f"/markets/{market_id}/close")
    evidence = {"source": "UKMTO transit counts", "average_daily_transits": 43}
    proposal = admin.post(
        f"/markets/{market_id}/settlement/propose", {"value": 1, "evidence": evidence}
    )
    evidence_hash = proposal["current"]["evidence_hash"]
    assert re.fullmatch(r"[0-9a-f]{64}", evidence_hash)

    page = context.new_page()
    page.goto("/")
    row = page.locator(f'tr.market-row[data-market="{market_id}"]')
    row.wait_for()
    assert "exceed 40 a day" in row.inner_text()
    assert "resolving" in row.inner_text() and "proposed" in row.inner_text()
    assert row.locator(f'code.hash[title="{evidence_hash}"]').count() == 1

    page.goto(f"/#/market/{market_id}")
    page.locator("#evidence-hash").wait_for()
    assert page.locator("#evidence-hash").inner_text() == evidence_hash
    assert "resolving" in page.locator("#market-status").inner_text()
    assert "tick 0.001" in page.locator("#rules").inner_text()


def test_trader_journey(server: LiveServer, admin: Admin, context: Any) -> None:
    market_id = unique("suez")
    busy_market(admin, market_id)
    page = context.new_page()
    errors = watch_errors(page)

    # Markets list: question, rules, status.
    page.goto("/")
    row = page.locator(f'tr.market-row[data-market="{market_id}"]')
    row.wait_for()
    assert "Will the Suez Canal be available" in row.inner_text()
    assert "0.001 · 0.000–1.000 · -5/20bp" in row.locator("td.rules").inner_text()
    assert "tick 0.001" in row.locator("td.rules").get_attribute("title")
    assert "open" in row.inner_text()
    shot(page, "markets")

    # Sign up in the browser: the session cookie is HTTP-only and SameSite=Lax.
    email = unique_email("Desk")
    page.goto("/#/signup")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    page.locator("#key-form").wait_for()
    cookie = next(c for c in context.cookies() if c["name"] == routes.COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert routes.COOKIE not in page.evaluate("document.cookie")
    assert page.locator("#who .email").inner_text() == email.lower()

    # A key with both scopes; its secret is shown once.
    page.fill("#key-label", "journey bot")
    page.click("#key-create")
    api_key = page.locator("#new-key").input_value()
    api_secret = page.locator("#new-secret").input_value()
    assert api_key.startswith("bmkt_test_") and api_secret.startswith("bmkt_secret_")
    page.locator(f'tr.key-row[data-key="{api_key}"]').wait_for()
    shot(page, "keys")
    page.click("#reveal-done")
    page.reload()
    page.locator(f'tr.key-row[data-key="{api_key}"]').wait_for()
    assert api_secret not in page.content()

    client = BallastClient(api_key, api_secret, base_url=server.api)
    try:
        # The faucet funded the new account (sandbox).
        assert client.get_balance().total_balance == Decimal("10000")

        # The market page: its book is live over the stream.
        page.goto(f"/#/market/{market_id}")
        page.locator("#feed-state.on").wait_for()
        page.locator('#book-asks .lvl[data-price="0.370"]').wait_for()
        resting = client.place_order(market_id, "buy", "limit", price="0.33", size=7)
        assert resting.status == "open"
        level = page.locator('#book-bids .lvl[data-price="0.330"]')
        level.wait_for()  # no reload: the stream brought it
        assert level.get_attribute("data-size") == "7"
        page.locator(f'#my-orders tr.order-row[data-order="{resting.id}"]').wait_for()
        assert page.locator("#chart svg .candle").count() >= 1
        assert page.locator("#trades-body tr[data-trade]").count() >= 3

        # An order from the ticket goes through the same order entry: the SDK sees it. On a
        # binary market "Buy NO" at 0.55 is a YES sell at 0.45.
        page.click("#ticket-sell")
        page.fill("#ticket-price", "0.55")
        page.fill("#ticket-size", "3")
        page.click("#ticket-submit")
        message = page.locator("#ticket-message")
        message.wait_for()
        eventually(lambda: re.search(r"ord_\d+ open", message.inner_text()))
        ticket_order = message.inner_text().split()[0]
        assert client.get_order(ticket_order).remaining_size == 3
        page.locator('#book-asks .lvl[data-price="0.450"][data-size="3"]').wait_for()
        shot(page, "market")

        # ... and is canceled from the market page.
        page.click(f'#my-orders tr.order-row[data-order="{ticket_order}"] button.cancel')
        page.locator('#book-asks .lvl[data-price="0.450"]').wait_for(state="detached")
        assert client.get_order(ticket_order).status == "canceled"

        # The account page lists the SDK's order; cancel it there.
        page.goto("/#/account")
        order_row = page.locator(f'#open-orders tr.order-row[data-order="{resting.id}"]')
        order_row.wait_for()
        assert "0.330" in order_row.inner_text()  # at the market's tick
        assert page.locator("#card-total .value").inner_text().startswith("10,000.00")
        shot(page, "account")
        order_row.locator("button.cancel").click()
        order_row.wait_for(state="detached")
        canceled = client.get_order(resting.id)
        assert canceled.status == "canceled" and canceled.cancel_reason == "user"

        # Revoke the key on the page: the SDK is refused from then on.
        page.goto("/#/keys")
        revoke = page.locator(f'tr.key-row[data-key="{api_key}"] button.revoke')
        revoke.click()  # arms
        revoke.click()  # confirms
        page.locator(f'tr.key-row.revoked[data-key="{api_key}"]').wait_for()
        with pytest.raises(UnauthorizedError):
            client.get_balance()
    finally:
        client.close()
    assert errors == []


def test_wrong_password_fails_and_logins_are_rate_limited(
    server: LiveServer, context: Any, dashboard: Any
) -> None:
    email = unique_email()
    dashboard().signup(email)

    page = context.new_page()
    page.goto("/#/login")
    page.fill("#email", email)
    page.fill("#password", "not the password")
    page.click("#auth-submit")
    page.locator("#login-form .notice.error").wait_for()
    assert "wrong email or password" in page.locator("#login-form .notice.error").inner_text()
    assert not any(c["name"] == routes.COOKIE for c in page.context.cookies())

    # The right password logs in; the header's logout ends the session.
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    page.locator("#card-total").wait_for()
    assert page.locator("#who .email").inner_text() == email
    page.click("#logout")
    page.locator("#login-form").wait_for()
    assert page.evaluate("fetch('/dashboard/api/session').then(r => r.json())")["user"] is None

    # Per (IP, email): after login_guard.FREE_FAILURES wrong passwords from one address, that
    # address waits (429), even with the right password; others are unaffected
    # (test_login_hardening.py).
    email = unique_email()
    dashboard().signup(email)
    client = dashboard()
    answers = [
        client.enter("login", email, "wrong password!") for _ in range(login_guard.FREE_FAILURES)
    ]
    limited = client.enter("login", email, PASSWORD)
    assert [r.status_code for r in answers] == [401] * login_guard.FREE_FAILURES
    assert answers[0].json()["error"]["code"] == "UNAUTHORIZED"
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "RATE_LIMIT_EXCEEDED" and error["details"]["retry_after"] > 0
    assert int(limited.headers["Retry-After"]) > 0
    assert "set-cookie" not in limited.headers


def test_logins_are_rate_limited_per_ip(
    server: LiveServer, dashboard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "LOGIN_LIMIT_PER_IP", 3)
    for _ in range(2):
        window = int(time.time() // 60)
        client = dashboard(**{"X-Forwarded-For": f"10.1.{int(time.time()) % 250}.9"})
        codes = [
            client.enter("login", unique_email(), "wrong password!").status_code for _ in range(4)
        ]
        if int(time.time() // 60) == window:
            break
    assert codes == [401, 401, 401, 429]


def test_state_changes_need_the_csrf_token_and_the_origin(
    server: LiveServer, context: Any, dashboard: Any
) -> None:
    page = context.new_page()
    page.goto("/#/signup")
    page.fill("#email", unique_email())
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    page.locator("#key-form").wait_for()

    # From the page itself, with its session cookie, but without the token: refused.
    attempt = """async (token) => {
        const headers = {"Content-Type": "application/json"};
        if (token) headers["X-CSRF-Token"] = token;
        const r = await fetch("/dashboard/api/keys", {method: "POST", headers,
            body: JSON.stringify({label: "csrf", scopes: ["read"]})});
        return {status: r.status, body: await r.json()};
    }"""
    for token in (None, "not-the-token"):
        result = page.evaluate(attempt, token)
        assert result["status"] == 403
        assert result["body"]["error"]["code"] == "FORBIDDEN"
    assert page.evaluate("fetch('/dashboard/api/keys').then(r => r.json())")["keys"] == []

    # The right token from another origin, or with no origin at all: refused too.
    cookie = next(c for c in context.cookies() if c["name"] == routes.COOKIE)
    session = page.evaluate("fetch('/dashboard/api/session').then(r => r.json())")
    for origin in ("http://evil.example", "null", None):
        thief = dashboard()
        thief.http.cookies.set(routes.COOKIE, cookie["value"])
        del thief.http.headers["Origin"]
        headers = {"X-CSRF-Token": session["csrf_token"]}
        if origin is not None:
            headers["Origin"] = origin
        body = {"label": "x", "scopes": ["read"]}
        response = thief.request("POST", "/keys", body, headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "FORBIDDEN"

    # With both, from the page: it works.
    result = page.evaluate(attempt, session["csrf_token"])
    assert result["status"] == 201


def test_session_cookie_flags_logout_and_envelopes(server: LiveServer, dashboard: Any) -> None:
    user = dashboard()
    response = user.enter("signup", unique_email())
    assert response.status_code == 201
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{routes.COOKIE}=")
    flags = {part.strip().lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # plain-http loopback sandbox: the browser must keep it
    token = user.http.cookies[routes.COOKIE]
    assert len(token) >= 40

    # Behind a TLS proxy: a Secure, __Host- cookie.
    secure = dashboard(**{"X-Forwarded-Proto": "https"})
    secure.http.headers["Origin"] = server.url.replace("http://", "https://")
    response = secure.enter("signup", unique_email())
    assert response.status_code == 201, response.text
    flags = {p.strip().lower() for p in response.headers["set-cookie"].split(";")}
    assert response.headers["set-cookie"].startswith(f"{routes.SECURE_COOKIE}=")
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags

    # The page itself says what it may load.
    page = user.http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (
        user.http.get("/dashboard/static/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )

    # Logout ends the session on the server: the old cookie is worthless.
    assert user.request("GET", "/account").status_code == 200
    assert user.request("POST", "/logout").status_code == 200
    replay = dashboard()
    replay.http.cookies.set(routes.COOKIE, token)
    response = replay.request("GET", "/account")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "UNAUTHORIZED",
            "message": "sign in first",
            "details": {"login": "/#/login"},
        }
    }
    assert replay.request("GET", "/session").json()["user"] is None

    # Errors in the envelope: a taken email (any case), a weak password, a bad body.
    email = unique_email()
    assert dashboard().enter("signup", email).status_code == 201
    taken = dashboard().enter("signup", f"  {email.upper()} ")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "ACCOUNT_EXISTS"
    weak = dashboard().enter("signup", unique_email(), "short")
    assert weak.status_code == 400
    assert weak.json()["error"]["details"]["field"] == "password"
    bad = dashboard().request("POST", "/login", {"email": "x@example.com"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"


def test_users_touch_only_their_own_orders_and_keys(
    server: LiveServer, admin: Admin, dashboard: Any
) -> None:
    market_id = unique("own")
    admin.market(market_id)
    alice, bob = dashboard().signup(), dashboard().signup()
    assert alice.user["account_id"] != bob.user["account_id"]

    placed = alice.request(
        "POST", "/orders", {"market_id": market_id, "side": "buy", "price": "0.2", "size": 5}
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    key = alice.request("POST", "/keys", {"label": "alice", "scopes": ["read", "trade"]}).json()

    stolen = bob.request("DELETE", f"/orders/{order_id}")
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "ORDER_NOT_FOUND"
    assert bob.request("DELETE", "/orders").json()["count"] == 0  # cancel-all: only Bob's
    revoked = bob.request("DELETE", f"/keys/{key['api_key']}")
    assert revoked.status_code == 404
    assert revoked.json()["error"]["code"] == "KEY_NOT_FOUND"
    assert bob.request("GET", "/keys").json()["keys"] == []
    assert bob.request("GET", "/account").json()["open_orders"] == []

    mine = alice.request("GET", "/account").json()
    assert [o["order_id"] for o in mine["open_orders"]] == [order_id]
    assert [k["api_key"] for k in alice.request("GET", "/keys").json()["keys"]] == [key["api_key"]]
    assert mine["balance"]["reserved"] == 1.0  # 5 contracts at 0.2
    canceled = alice.request("DELETE", f"/orders/{order_id}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
