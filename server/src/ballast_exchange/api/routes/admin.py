"""The operator's API under /v1/admin, reached with the admin credential from the data dir."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request

from ...domain import MarketKind, MarketStatus
from ...domain import commands as c
from ...domain.state import MAX_AMOUNT
from ...service.exchange import at_time
from ...service.venue import Venue
from ...store import queries
from ...store import records as store_writes
from ...store.records import upsert_market_details
from ...wire.dependencies import current_venue
from ...wire.errors import ApiError, invalid_request
from ...wire.models import (
    AmountRequest,
    CreateAccountRequest,
    CreateKeyRequest,
    CreateMarketRequest,
    TierRequest,
    UpdateMarketRequest,
)
from ...wire.money import admissible, exact_quotient, parse_decimal, usdc_to_micro
from ...wire.refs import iso
from ...wire.timeutil import to_ms
from ...wire.views import (
    balance_view,
    discovery_columns,
    issued_key_view,
    key_view,
    market_view,
)
from ..auth import bearer
from ..schemas import ADMIN_ERRORS, BODY_ERRORS, errors

router = APIRouter(prefix="/admin", tags=["admin"], responses=ADMIN_ERRORS)
State = Annotated[Venue, Depends(current_venue)]


async def admin(request: Request, state: State) -> None:
    token = bearer(request)
    if not token or not hmac.compare_digest(token.encode(), state.admin_token.encode()):
        raise ApiError(
            "UNAUTHORIZED",
            "admin endpoints need 'Authorization: Bearer <admin token>' from the data dir",
            {"header": "Authorization"},
        )


Admin = Annotated[None, Depends(admin)]


async def account_balance(state: Venue, account_id: str) -> dict[str, Any]:
    reads = state.reads
    return await state.view(
        lambda: {"account_id": account_id, **balance_view(reads.balance(account_id))}
    )


@router.post(
    "/accounts",
    status_code=201,
    summary="Create an account with a key",
    responses=BODY_ERRORS,
)
async def create_account(body: CreateAccountRequest, _: Admin, state: State) -> Any:
    account_id = f"acc_{secrets.token_hex(8)}"
    deposit = usdc_to_micro(body.deposit, "deposit") if body.deposit is not None else 0
    if not 0 <= deposit <= MAX_AMOUNT:
        raise invalid_request("deposit", f"deposit must be between 0 and {MAX_AMOUNT} micro-USDC")
    await state.exchange.submit(lambda now: c.CreateAccount(now, account_id))
    await state.write(store_writes.set_account_name, account_id, body.name)
    if deposit:
        await state.exchange.submit(lambda now: c.Deposit(now, account_id, deposit, "admin"))
    key = await state.issuing.issue(account_id, ["read", "trade"], "default", None)
    balance = await account_balance(state, account_id)
    return {**balance, "name": body.name, **issued_key_view(key)}


@router.post(
    "/accounts/{account_id}/{action}",
    summary="Deposit to or withdraw from an account",
    responses={**BODY_ERRORS, **errors(404)},
)
async def move_money(
    account_id: str,
    action: Literal["deposit", "withdraw"],
    body: AmountRequest,
    _: Admin,
    state: State,
) -> Any:
    amount = usdc_to_micro(body.amount)
    command = c.Deposit if action == "deposit" else c.Withdraw
    await state.exchange.submit(lambda now: command(now, account_id, amount, "admin"))
    return await account_balance(state, account_id)


@router.get("/accounts/{account_id}", summary="An account's balance", responses=errors(404))
async def get_account(account_id: str, _: Admin, state: State) -> Any:
    state.reads.require_account(account_id)
    return await account_balance(state, account_id)


@router.post(
    "/keys",
    status_code=201,
    summary="Create an API key; the secret is shown once",
    responses={**BODY_ERRORS, **errors(404)},
)
async def keys_create(body: CreateKeyRequest, _: Admin, state: State) -> Any:
    key = await state.issuing.issue(body.account_id, list(body.scopes), body.label, body.tier)
    return issued_key_view(key)


@router.get("/keys", summary="List API keys (never their secrets)")
async def keys_list(_: Admin, state: State, account_id: str | None = None) -> Any:
    rows = await state.read(queries.list_api_keys, account_id)
    return {"keys": [key_view(row) for row in rows]}


@router.post("/keys/{api_key}/revoke", summary="Revoke a key, at once", responses=errors(404))
async def keys_revoke(api_key: str, _: Admin, state: State) -> Any:
    await state.issuing.revoke(api_key)
    return {"api_key": api_key, "revoked": True}


@router.post(
    "/keys/{api_key}/tier",
    summary="Set a key's rate-limit tier",
    responses={**BODY_ERRORS, **errors(404)},
)
async def keys_tier(api_key: str, body: TierRequest, _: Admin, state: State) -> Any:
    tier = body.tier
    if tier is not None and not tier.isdigit() and tier not in ("standard", "market_maker"):
        raise invalid_request("tier", "a tier is 'standard', 'market_maker' or requests a minute")
    await state.issuing.set_tier(api_key, tier)
    return {"api_key": api_key, "tier": tier}


DEFAULTS = {
    "binary": {"tick_size": "0.001", "floor": "0", "cap": "1"},
    "index": {"tick_size": "0.1", "floor": "0", "cap": "100"},
}


@router.post(
    "/markets",
    status_code=201,
    summary="List a market (it starts pending)",
    responses={**BODY_ERRORS, **errors(409)},
)
async def markets_create(body: CreateMarketRequest, _: Admin, state: State) -> Any:
    defaults = DEFAULTS[body.type]
    raw_step = body.tick_size if body.tick_size is not None else defaults["tick_size"]
    tick_value = usdc_to_micro(raw_step, "tick_size")  # six decimals at most
    if tick_value <= 0:
        raise invalid_request("tick_size", "tick_size must be positive")
    step = parse_decimal(raw_step, "tick_size")
    bounds = {}
    for name in ("floor", "cap"):
        raw = getattr(body, name)
        value = parse_decimal(raw if raw is not None else defaults[name], name)
        if not admissible(value):
            raise invalid_request(name, f"{name} is out of range")
        ticks = exact_quotient(value, step)
        if ticks != ticks.to_integral_value():
            raise invalid_request(name, f"{name} must sit on the tick grid")
        bounds[name] = int(ticks)
    close_time = to_ms(body.close_time, "close_time")
    assert close_time is not None
    now = state.exchange.clock()
    if close_time <= now:
        # Listed already closed, it would never trade and only wait to be settled.
        raise ApiError(
            "INVALID_REQUEST",
            f"close_time {iso(close_time)} is not in the future (now {iso(now)})",
            {"field": "close_time", "close_time": iso(close_time), "now": iso(now)},
        )
    command = c.CreateMarket(
        0,
        body.id,
        MarketKind(body.type),
        tick_value,
        bounds["floor"],
        bounds["cap"],
        close_time,
        body.min_size,
        body.max_order_size,
        body.max_position,
        body.maker_fee_bps,
        body.taker_fee_bps,
    )
    await state.exchange.submit(at_time(command))
    details = {
        "name": body.name,
        "question": body.question,
        "description": body.description,
        "resolution_source": body.resolution_source,
        "settlement_date": to_ms(body.settlement_date, "settlement_date"),
        **discovery_columns(body.model_dump(include={"category", "tags", "series", "event"})),
    }
    await state.write(upsert_market_details, body.id, **details)
    return market_view(state.market(body.id), details, 0)


@router.patch(
    "/markets/{market_id}",
    summary="Change a market's descriptive fields",
    responses={**BODY_ERRORS, **errors(404)},
)
async def markets_update(market_id: str, body: UpdateMarketRequest, _: Admin, state: State) -> Any:
    """Fields left out keep their values; null clears one (the name cannot be cleared)."""
    market = state.market(market_id)
    given = body.model_dump(exclude_unset=True)
    if "name" in given and given["name"] is None:
        raise invalid_request("name", "a market keeps a name; send a new one")
    details: dict[str, Any] = {
        name: given[name]
        for name in ("name", "question", "description", "resolution_source")
        if name in given
    }
    if "settlement_date" in given:
        details["settlement_date"] = to_ms(body.settlement_date, "settlement_date")
    details.update(discovery_columns(given))
    await state.write(upsert_market_details, market_id, **details)
    stored = await state.read(queries.get_market, market_id)
    return market_view(market, stored, 0)


ACTIONS = {
    "open": MarketStatus.OPEN,
    "halt": MarketStatus.HALTED,
    "resume": MarketStatus.OPEN,
    "close": MarketStatus.CLOSED,
}


@router.post(
    "/markets/{market_id}/{action}",
    summary="Open, halt, resume or close a market",
    responses=errors(400, 404, 409),
)
async def markets_status(
    market_id: str,
    action: Literal["open", "halt", "resume", "close"],
    _: Admin,
    state: State,
) -> Any:
    market = state.market(market_id)
    if action == "resume" and market.status is not MarketStatus.HALTED:
        raise ApiError(
            "INVALID_TRANSITION", "only a halted market resumes", {"status": market.status.value}
        )
    if action == "open" and market.status is not MarketStatus.PENDING:
        raise ApiError(
            "INVALID_TRANSITION", "only a pending market opens", {"status": market.status.value}
        )
    status = ACTIONS[action]
    await state.exchange.submit(lambda now: c.ChangeMarketStatus(now, market_id, status))
    details = await state.read(queries.get_market, market_id)
    return market_view(market, details, 0)
