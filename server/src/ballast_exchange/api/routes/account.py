"""Account management (spec "Account management (private)"): balance, positions, fills, ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...store import queries
from ...wire.timeutil import TimeParam, parse_time_param
from ...wire.usdc import to_usdc
from ...wire.views import balance_view, fill_view, iso, positions_view
from ..schemas import PRIVATE_ERRORS, Balance, Fills, Ledger, Positions
from .orders import Reader, State

router = APIRouter(tags=["account"])


@router.get(
    "/account/balance",
    summary="Balance: total = available + reserved",
    responses={200: {"model": Balance}, **PRIVATE_ERRORS},
)
async def balance(principal: Reader, state: State) -> Any:
    reads = state.reads
    return await state.view(lambda: balance_view(reads.balance(principal.account_id)))


@router.get(
    "/positions",
    summary="Open positions with PnL and margin used",
    responses={200: {"model": Positions}, **PRIVATE_ERRORS},
)
async def positions(principal: Reader, state: State) -> Any:
    return await state.view(lambda: positions_view(state.reads, principal.account_id))


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
    start_date: TimeParam = None,
    end_date: TimeParam = None,
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
    return {
        "fills": [fill_view(fill, state.market(fill.market_id)) for fill in page.items],
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
    start_date: TimeParam = None,
    end_date: TimeParam = None,
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
