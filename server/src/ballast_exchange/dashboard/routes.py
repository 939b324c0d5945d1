"""The account dashboard: its pages at ``/`` and its own JSON API under ``/dashboard/api``.

The pages are static HTML, CSS and ES modules (no build step). Their JavaScript reads market
data from the public REST API (``/v1/...``) and the public channels of ``/stream``, and
everything about the signed-in user from the endpoints here, which authenticate with the
session cookie.

Every state-changing request must
- come from this origin (its ``Origin``, or failing that ``Referer``, names this host), and,
  once signed in,
- carry the session's CSRF token in ``X-CSRF-Token`` (compared in constant time).
The JSON bodies are ``application/json`` only (the body-limit middleware refuses anything
else), so a cross-site form cannot even reach a handler. Errors come in the spec's envelope.

Orders go through ``api.trading``, the same order entry as ``POST /v1/orders``; keys through
``api.key_issuing``; lists through the REST handlers themselves, so a row on the dashboard
looks exactly as the API shows it.
"""

from __future__ import annotations

import hmac
import math
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import Field
from starlette.staticfiles import StaticFiles

from ..service.venue import Venue
from ..store import queries
from ..wire import trading
from ..wire.account_pages import (
    StatusFilter,
    fees_page,
    fills_page,
    ledger_page,
    orders_page,
    settlements_page,
)
from ..wire.dependencies import current_venue
from ..wire.errors import ApiError
from ..wire.models import PlaceOrderRequest, Strict
from ..wire.refs import parse_order_ref
from ..wire.views import (
    balance_view,
    faucet_grant_view,
    issued_key_view,
    key_view,
    positions_view,
)
from . import users
from .login_guard import login_failures
from .users import Session

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/dashboard/static"
COOKIE = "ballast_session"
SECURE_COOKIE = "__Host-ballast_session"  # the prefix pins it to this host, Secure, Path=/
CSRF_HEADER = "X-CSRF-Token"

# Login attempts per fixed minute per client IP (every attempt counts); wrong passwords back
# off per (IP, email) in login_guard, so nobody elsewhere can lock the owner out.
LOGIN_LIMIT_PER_IP = 20
SIGNUP_LIMIT_PER_IP = 10
MAX_LIVE_KEYS = 20

State = Annotated[Venue, Depends(current_venue)]


def no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/dashboard/api", dependencies=[Depends(no_store)])


# ---- requests and their checks ------------------------------------------------------------------


class Credentials(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=users.PASSWORD_MAX)


class NewKey(Strict):
    label: str = Field(min_length=1, max_length=64)
    scopes: list[Literal["read", "trade"]] = Field(min_length=1, max_length=2)


def is_secure(request: Request, state: Venue) -> bool:
    """Secure cookies over https and in production; plain-http loopback sandboxes need them
    without the flag (a browser drops a Secure cookie set over http)."""
    return request.url.scheme == "https" or state.settings.env == "production"


def forbidden(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError("FORBIDDEN", message, details)


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that does not come from a page of this origin."""
    sent = request.headers.get("origin")
    if sent is None:
        referer = request.headers.get("referer")
        if referer:
            parts = urlsplit(referer)
            sent = f"{parts.scheme}://{parts.netloc}"
    host = request.headers.get("host", "")
    expected = f"{request.url.scheme}://{host}".lower()
    if sent is None or sent.lower() != expected:
        raise forbidden(
            "cross-origin request refused: send it from the dashboard's own pages",
            {"header": "Origin"},
        )


async def optional_session(request: Request, state: State) -> Session | None:
    token = request.cookies.get(SECURE_COOKIE if is_secure(request, state) else COOKIE)
    return await users.find_session(state, token) if token else None


async def signed_in(
    session: Annotated[Session | None, Depends(optional_session)],
) -> Session:
    if session is None:
        raise ApiError("UNAUTHORIZED", "sign in first", {"login": "/#/login"})
    return session


async def guarded(request: Request, session: Annotated[Session, Depends(signed_in)]) -> Session:
    """A signed-in session on a state-changing request: same origin, and its CSRF token."""
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise forbidden("missing or wrong CSRF token", {"header": CSRF_HEADER})
    return session


SignedIn = Annotated[Session, Depends(signed_in)]
Guarded = Annotated[Session, Depends(guarded)]


async def limit(state: Venue, bucket: str, allowed: int, what: str) -> None:
    decision = await state.limiter.hit(bucket, allowed)
    if not decision.allowed:
        raise ApiError(
            "RATE_LIMIT_EXCEEDED",
            f"too many {what}; retry in {decision.retry_after}s",
            {"retry_after": decision.retry_after},
            headers=decision.headers(),
        )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_view(session: Session | None, state: Venue) -> dict[str, Any]:
    return {
        "user": None
        if session is None
        else {"user_id": session.user_id, "email": session.email, "account_id": session.account_id},
        "csrf_token": None if session is None else session.csrf_token,
        "expires_at": None if session is None else session.expires_at,
        "env": state.settings.env,
    }


def set_cookie(response: Response, request: Request, state: Venue, token: str) -> None:
    secure = is_secure(request, state)
    response.set_cookie(
        SECURE_COOKIE if secure else COOKIE,
        token,
        max_age=users.SESSION_TTL_MS // 1000,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request, state: Venue) -> None:
    secure = is_secure(request, state)
    response.delete_cookie(
        SECURE_COOKIE if secure else COOKIE, path="/", secure=secure, httponly=True, samesite="lax"
    )


# ---- sign-up, login, logout ---------------------------------------------------------------------


@api.get("/session")
async def session_info(
    state: State, session: Annotated[Session | None, Depends(optional_session)]
) -> Any:
    """Who is signed in (``user`` null when nobody), with the CSRF token the page must send."""
    return session_view(session, state)


async def start_session(
    user: users.User,
    previous: Session | None,
    request: Request,
    response: Response,
    state: Venue,
) -> dict[str, Any]:
    """A fresh session (a new token each time: no fixation); the browser's old one ends."""
    if previous is not None:
        await users.close_session(state, previous)
    token, session = await users.open_session(state, user)
    set_cookie(response, request, state, token)
    return session_view(session, state)


Previous = Annotated[Session | None, Depends(optional_session)]


@api.post("/signup", status_code=201)
async def signup(
    body: Credentials, request: Request, response: Response, state: State, previous: Previous
) -> Any:
    check_origin(request)
    await limit(state, f"dash-signup-ip:{client_ip(request)}", SIGNUP_LIMIT_PER_IP, "sign-ups")
    user = await users.sign_up(state, body.email, body.password)
    return await start_session(user, previous, request, response, state)


@api.post("/login")
async def login(
    body: Credentials, request: Request, response: Response, state: State, previous: Previous
) -> Any:
    check_origin(request)
    ip = client_ip(request)
    await limit(state, f"dash-login-ip:{ip}", LOGIN_LIMIT_PER_IP, "login attempts")
    failures = login_failures(state.exchange)
    pair = failures.key(ip, body.email)
    wait = failures.charge(pair)
    if wait is not None:
        retry_after = max(1, math.ceil(wait))
        raise ApiError(
            "RATE_LIMIT_EXCEEDED",
            f"too many wrong passwords for this email from this address; retry in {retry_after}s",
            {"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    user = await users.check_password(state, body.email, body.password)
    if user is None:
        raise ApiError("UNAUTHORIZED", "wrong email or password", {"field": "password"})
    failures.succeeded(pair)
    return await start_session(user, previous, request, response, state)


@api.post("/logout")
async def logout(session: Guarded, request: Request, response: Response, state: State) -> Any:
    await users.close_session(state, session)
    clear_cookie(response, request, state)
    return session_view(None, state)


# ---- the account ----------------------------------------------------------------------------


@api.get("/account")
async def account(session: SignedIn, state: State) -> Any:
    """Everything the account page shows, in one request: balance, open positions, open
    orders, settled positions, recent fills, ledger entries, order history (each list with
    its ``next_cursor``) and fees and rebates for its twelve latest months with any."""
    account_id, reads = session.account_id, state.reads
    balance, positions = await state.view(
        lambda: (balance_view(reads.balance(account_id)), positions_view(reads, account_id))
    )
    open_orders = await orders_page(state, account_id, status="open", limit=1000)
    history = await orders_page(state, account_id, status="all", limit=50)
    fills = await fills_page(state, account_id, limit=50)
    ledger = await ledger_page(state, account_id, limit=50)
    settled = await settlements_page(state, account_id, limit=50)
    fees = await fees_page(state, account_id, period="month", limit=12)
    return {
        "account_id": account_id,
        "email": session.email,
        "balance": balance,
        "positions": positions["positions"],
        "open_orders": open_orders["orders"],
        "settlements": settled,
        "fees": fees,
        "orders": history,
        "fills": fills,
        "ledger": ledger,
    }


@api.get("/markets/{market_id}/mine")
async def mine_in_market(market_id: str, session: SignedIn, state: State) -> Any:
    """The market page's private part in one request (it polls): the user's open orders in
    this market, each with the contracts resting ahead of it at its price (``queue_ahead``,
    ``null`` once it is no longer resting), and the position held there (``null`` when flat)."""
    state.market(market_id)
    account_id, reads = session.account_id, state.reads
    orders = await orders_page(state, account_id, status="open", market_id=market_id, limit=1000)

    def live() -> tuple[dict[str, Any], dict[str, int]]:
        ahead = {}
        for order in orders["orders"]:
            number = parse_order_ref(order["order_id"])
            found = None if number is None else reads.queue_position(account_id, number)
            if found is not None:
                ahead[order["order_id"]] = found.contracts_ahead
        return positions_view(reads, account_id), ahead

    positions, ahead = await state.view(live)
    held = next((p for p in positions["positions"] if p["market_id"] == market_id), None)
    for order in orders["orders"]:
        order["queue_ahead"] = ahead.get(order["order_id"])
    return {"market_id": market_id, "orders": orders["orders"], "position": held}


@api.get("/settlements")
async def settlements(
    session: SignedIn,
    state: State,
    market_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    return await settlements_page(
        state, session.account_id, market_id=market_id, limit=limit, cursor=cursor
    )


@api.get("/orders")
async def orders(
    session: SignedIn,
    state: State,
    status: StatusFilter | None = None,
    market_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    return await orders_page(
        state, session.account_id, status=status, market_id=market_id, limit=limit, cursor=cursor
    )


@api.get("/fills")
async def fills(
    session: SignedIn,
    state: State,
    market_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    return await fills_page(
        state, session.account_id, market_id=market_id, limit=limit, cursor=cursor
    )


@api.get("/ledger")
async def ledger(
    session: SignedIn,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    return await ledger_page(state, session.account_id, limit=limit, cursor=cursor)


@api.post("/faucet")
async def faucet(session: Guarded, state: State) -> Any:
    """Sandbox only: test USDC, within the faucet's daily cap."""
    if state.settings.env != "sandbox":
        raise ApiError("NOT_FOUND", "the faucet exists only in the sandbox")
    return faucet_grant_view(await state.faucet.drip(session.account_id))


# ---- order entry: the same code as POST /v1/orders -----------------------------------------


@api.post("/orders", status_code=201)
async def place_order(
    body: PlaceOrderRequest, session: Guarded, state: State, response: Response
) -> Any:
    await state.exchange.room()
    status, view = await trading.place(state.trading, session.account_id, body)
    response.status_code = status
    return view


@api.delete("/orders/{order_id}")
async def cancel_order(order_id: str, session: Guarded, state: State) -> Any:
    await state.exchange.room()
    _, view = await trading.cancel(state.trading, session.account_id, order_id)
    return view


@api.delete("/orders")
async def cancel_all(session: Guarded, state: State, market_id: str | None = None) -> Any:
    await state.exchange.room()
    _, view = await trading.cancel_all(state.trading, session.account_id, market_id)
    return view


# ---- API keys of the user's own account --------------------------------------------------------


@api.get("/keys")
async def list_keys(session: SignedIn, state: State) -> Any:
    rows = await state.read(queries.list_api_keys, session.account_id)
    return {"keys": [key_view(row) for row in reversed(rows)]}  # newest first


@api.post("/keys", status_code=201)
async def create_key(body: NewKey, session: Guarded, state: State) -> Any:
    """A new key; the reply is the only time its secret is ever shown."""
    rows = await state.read(queries.list_api_keys, session.account_id)
    if sum(row["revoked_at"] is None for row in rows) >= MAX_LIVE_KEYS:
        raise ApiError(
            "INVALID_REQUEST",
            f"an account may hold at most {MAX_LIVE_KEYS} live keys: revoke one first",
            {"field": "scopes", "max_live_keys": MAX_LIVE_KEYS},
        )
    key = await state.issuing.issue(session.account_id, sorted(set(body.scopes)), body.label, None)
    return issued_key_view(key)


@api.delete("/keys/{api_key}")
async def delete_key(api_key: str, session: Guarded, state: State) -> Any:
    row = await state.read(queries.get_api_key, api_key)
    if row is None or row["account_id"] != session.account_id:  # not yours: not found either way
        raise ApiError("KEY_NOT_FOUND", f"no API key {api_key!r}", {"api_key": api_key})
    if row["revoked_at"] is None:
        await state.issuing.revoke(api_key)
        row = await state.read(queries.get_api_key, api_key)
        assert row is not None  # keys are revoked, never deleted
    return key_view(row)


# ---- pages --------------------------------------------------------------------------------------


def page_headers(request: Request) -> dict[str, str]:
    host = request.headers.get("host", "")
    ws = "wss" if request.url.scheme == "https" else "ws"
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {ws}://{host}; font-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }


@router.get("/")
async def index(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=page_headers(request))


@router.get("/dashboard")
async def dashboard_redirect() -> RedirectResponse:
    return RedirectResponse("/")


class Static(StaticFiles):
    """The page's assets: revalidated on every load (an upgrade is seen at once), never sniffed."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


router.include_router(api)


def install(app: FastAPI) -> None:
    """Serve the dashboard from ``app``: the pages at ``/``, assets, and its JSON API."""
    app.include_router(router)
    app.mount(STATIC_PATH, Static(directory=STATIC_DIR), name="dashboard-static")
