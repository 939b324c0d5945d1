"""Account management (spec "Account management (private)"): balance, positions, fills, ledger."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ...store import queries
from ...wire.account_pages import FeePeriod, fees_page, fills_page, ledger_page, settlements_page
from ...wire.timeutil import TimeParam
from ...wire.views import (
    balance_view,
    positions_view,
    settled_position_fields,
)
from ..schemas import (
    PRIVATE_ERRORS,
    Balance,
    FeeSummary,
    Fills,
    Ledger,
    Positions,
    SettledPositions,
    errors,
)
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
    summary="Positions with PnL and margin used: open ones, settled ones, or both",
    responses={200: {"model": Positions}, **PRIVATE_ERRORS, **errors(400)},
)
async def positions(
    principal: Reader,
    state: State,
    status: Literal["open", "settled", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    """Open positions come whole from the live engine (the default answer is as it always
    was); settled ones page from the store, newest first (``limit`` and ``cursor`` page those),
    and with them every item says its ``status``."""
    account_id = principal.account_id
    if status == "open":
        return await state.view(lambda: positions_view(state.reads, account_id))
    listed: list[dict[str, Any]] = []
    if status == "all" and not cursor:
        view = await state.view(lambda: positions_view(state.reads, account_id))
        listed = [{**item, "status": "open"} for item in view["positions"]]
    page = await state.page(
        queries.list_position_settlements, account_id, limit=limit, cursor=cursor
    )
    listed += [settled_position_fields(row, state.market(row["market_id"])) for row in page.items]
    return {"positions": listed, "next_cursor": page.next_cursor}


@router.get(
    "/settlements",
    summary="Positions paid out by a settlement, newest first",
    responses={200: {"model": SettledPositions}, **PRIVATE_ERRORS, **errors(400, 404)},
)
async def settlements(
    principal: Reader,
    state: State,
    market_id: str | None = None,
    start_date: TimeParam = None,
    end_date: TimeParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    return await settlements_page(
        state,
        principal.account_id,
        market_id=market_id,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/account/fees",
    summary="Fees paid and rebates earned per day or month, newest first",
    responses={200: {"model": FeeSummary}, **PRIVATE_ERRORS, **errors(400)},
)
async def fees(
    principal: Reader,
    state: State,
    start_date: TimeParam = None,
    end_date: TimeParam = None,
    period: FeePeriod = "day",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    return await fees_page(
        state,
        principal.account_id,
        period=period,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/fills",
    summary="The account's fills, newest first",
    responses={200: {"model": Fills}, **PRIVATE_ERRORS, **errors(400, 404)},
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
    responses={200: {"model": Ledger}, **PRIVATE_ERRORS, **errors(400)},
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
