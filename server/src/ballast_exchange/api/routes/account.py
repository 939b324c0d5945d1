"""Account management (spec "Account management (private)"): balance, positions, fills, ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...store import queries
from ..money import micro_price, ticks_to_price, to_usdc
from ..schemas import PRIVATE_ERRORS, Balance, Fills, Ledger, Positions
from ..state import AppState
from ..timeutil import parse_time_param
from ..views import fill_view, iso, tick_size
from .orders import Reader, State

router = APIRouter(tags=["account"])


@router.get(
    "/account/balance",
    summary="Balance: total = available + reserved",
    responses={200: {"model": Balance}, **PRIVATE_ERRORS},
)
async def balance(principal: Reader, state: State) -> Any:
    return await state.view(lambda: balance_view(state, principal.account_id))


def balance_view(state: AppState, account_id: str) -> dict[str, Any]:
    engine = state.exchange.engine
    available = engine.available(account_id)
    reserved = engine.reserved(account_id)
    return {
        "total_balance": to_usdc(available + reserved),
        "available": to_usdc(available),
        "reserved": to_usdc(reserved),
        "currency": "USDC",
    }


@router.get(
    "/positions",
    summary="Open positions with PnL and margin used",
    responses={200: {"model": Positions}, **PRIVATE_ERRORS},
)
async def positions(principal: Reader, state: State) -> Any:
    return await state.view(lambda: positions_view(state, principal.account_id))


def positions_view(state: AppState, account_id: str) -> dict[str, Any]:
    engine = state.exchange.engine
    account = engine.account(account_id)
    rows = []
    for market_id in sorted(account.positions):
        position = account.positions[market_id]
        if position.size == 0:
            continue
        market = engine.markets[market_id]
        step = tick_size(market)
        book = market.book
        bid, ask = book.best_bid(), book.best_ask()
        # Mark at the mid when both sides quote, else the last trade.
        mark = (bid + ask) // 2 if bid is not None and ask is not None else market.last_price
        floor, cap, tv = market.floor, market.cap, market.tick_value
        rows.append(
            {
                "market_id": market_id,
                "size": position.size,
                "average_price": micro_price(position.average_price_micro(floor, cap, tv)),
                "current_price": ticks_to_price(mark, step),
                "unrealized_pnl": to_usdc(position.unrealized_pnl(mark, floor, cap, tv))
                if mark is not None
                else 0.0,
                "realized_pnl": to_usdc(position.realized_pnl),
                "margin_used": to_usdc(position.collateral),
            }
        )
    return {"positions": rows}


def _window(start_date: str | None, end_date: str | None) -> tuple[int | None, int | None]:
    return (
        parse_time_param(start_date, "start_date"),
        parse_time_param(end_date, "end_date", end=True),
    )


@router.get(
    "/fills",
    summary="The account's fills, newest first",
    responses={200: {"model": Fills}, **PRIVATE_ERRORS},
)
async def fills(
    principal: Reader,
    state: State,
    market_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    if market_id is not None:
        state.market(market_id)
    start_ms, end_ms = _window(start_date, end_date)
    page = await state.page(
        queries.list_fills,
        principal.account_id,
        market_id=market_id,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=limit,
        cursor=cursor,
    )
    engine = state.exchange.engine
    return {
        "fills": [
            fill_view(row, engine.markets[row["market_id"]], principal.account_id)
            for row in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/account/ledger",
    summary="Every movement of the account's money, newest first",
    responses={200: {"model": Ledger}, **PRIVATE_ERRORS},
)
async def ledger(
    principal: Reader,
    state: State,
    kind: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    start_ms, end_ms = _window(start_date, end_date)
    page = await state.page(
        queries.list_ledger,
        principal.account_id,
        start_ms=start_ms,
        end_ms=end_ms,
        kind=kind,
        limit=limit,
        cursor=cursor,
    )
    return {
        "entries": [
            {
                "entry_id": row["seq"],
                "kind": row["kind"],
                "amount": to_usdc(row["amount"]),
                "debit": row["debit"],
                "credit": row["credit"],
                "market_id": row["market_id"],
                "ref": row["ref"] or None,
                "created_at": iso(row["created_at"]),
            }
            for row in page.items
        ],
        "next_cursor": page.next_cursor,
    }
