"""Account management (spec "Account management (private)"): balance, positions, fills, ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...wire.account_pages import fills_page, ledger_page
from ...wire.timeutil import TimeParam
from ...wire.views import balance_view, positions_view
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
    return await fills_page(
        state,
        principal.account_id,
        market_id=market_id,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        cursor=cursor,
    )


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
    return await ledger_page(
        state,
        principal.account_id,
        kind=kind,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        cursor=cursor,
    )
