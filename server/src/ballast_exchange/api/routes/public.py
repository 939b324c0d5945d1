"""Market data (spec "Market data (public)"): no key needed; limited per IP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from ...access.keys import READ
from ...service.venue import Venue
from ...store import queries
from ...wire.dependencies import current_venue
from ...wire.refs import iso
from ...wire.timeutil import TimeParam, parse_time_param
from ...wire.views import book_levels, market_view, tick_size, trade_view
from ..auth import authenticate, bearer
from ..schemas import (
    MARKET_DATA_ERRORS,
    PUBLIC_ERRORS,
    Candles,
    EventList,
    Market,
    Markets,
    OrderBook,
    SeriesList,
    ServerTime,
    Trades,
    errors,
)

router = APIRouter(tags=["market data"])
State = Annotated[Venue, Depends(current_venue)]
DAY_MS = 86_400_000
INTERVALS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": DAY_MS}


async def optional_auth(request: Request, state: State) -> None:
    """Market data needs no key, but auth headers that are sent must be valid."""
    if bearer(request) is not None or "x-bm-signature" in request.headers:
        await authenticate(request, state.keys, state.exchange.clock(), READ, state.replays)


Public = Annotated[None, Depends(optional_auth)]


@router.get(
    "/time",
    summary="Server time, to sync signing clocks",
    responses={200: {"model": ServerTime}, **MARKET_DATA_ERRORS},
)
async def server_time(state: State) -> Any:
    now = state.exchange.clock()
    return {"server_time": now, "iso": iso(now)}


@router.get(
    "/markets",
    summary="Markets, filtered by status, type, category, tag, series, event, text, close time",
    responses={200: {"model": Markets}, **PUBLIC_ERRORS, **errors(400)},
)
async def list_markets(
    _: Public,
    state: State,
    status: Literal["pending", "open", "halted", "closed", "resolving", "settled"] | None = None,
    type: Literal["binary", "index"] | None = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    series: Annotated[str | None, Query(max_length=64, description="a series id")] = None,
    event: Annotated[str | None, Query(max_length=64, description="an event id")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="text in the name or question, any case")
    ] = None,
    close_before: TimeParam = None,
    close_after: TimeParam = None,
) -> Any:
    rows = await state.read(
        queries.list_markets,
        None,
        None,
        category=category,
        tag=tag,
        series_id=series,
        event_id=event,
        text=q or None,
        close_before_ms=parse_time_param(close_before, "close_before"),
        close_after_ms=parse_time_param(close_after, "close_after"),
    )
    details = {row["market_id"]: row for row in rows}
    # Without a descriptive filter every listed market is shown, stored details or not.
    narrowed = any(value for value in (category, tag, series, event, q, close_before, close_after))
    day_ago = state.exchange.clock() - DAY_MS
    volumes = await state.read(queries.volumes_since, day_ago)
    references = await state.read(queries.prices_at, day_ago)

    def render() -> list[dict[str, Any]]:
        return [
            market_view(
                m,
                details.get(m.market_id),
                volumes.get(m.market_id, 0),
                references.get(m.market_id),
            )
            for m in state.reads.markets()
            if (status is None or m.status.value == status)
            and (type is None or m.kind.value == type)
            and (not narrowed or m.market_id in details)
        ]

    markets = await state.view(render)
    return {"markets": markets}


@router.get(
    "/series",
    summary="The series markets recur in, each with its markets' ids",
    responses={200: {"model": SeriesList}, **PUBLIC_ERRORS},
)
async def list_series(_: Public, state: State) -> Any:
    return {"series": await state.read(queries.list_groupings, "series")}


@router.get(
    "/events",
    summary="The events markets belong to, each with its markets' ids",
    responses={200: {"model": EventList}, **PUBLIC_ERRORS},
)
async def list_events(_: Public, state: State) -> Any:
    return {"events": await state.read(queries.list_groupings, "event")}


@router.get(
    "/markets/{market_id}",
    summary="One market: rules, status and settlement",
    responses={200: {"model": Market}, **PUBLIC_ERRORS, **errors(404)},
)
async def get_market(market_id: str, _: Public, state: State) -> Any:
    market = state.market(market_id)
    details = await state.read(queries.get_market, market_id)
    day_ago = state.exchange.clock() - DAY_MS
    volumes = await state.read(queries.volumes_since, day_ago)
    reference = (await state.read(queries.prices_at, day_ago, market_id)).get(market_id)
    return await state.view(
        lambda: market_view(market, details, volumes.get(market_id, 0), reference)
    )


@router.get(
    "/markets/{market_id}/orderbook",
    summary="Aggregated order book",
    responses={200: {"model": OrderBook}, **PUBLIC_ERRORS, **errors(400, 404)},
)
async def orderbook(
    market_id: str,
    _: Public,
    state: State,
    depth: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    market = state.market(market_id)
    return await state.view(
        lambda: {
            "market_id": market_id,
            "timestamp": iso(state.exchange.clock()),
            "seq": state.reads.seq,
            "bids": book_levels(market, True, depth),
            "asks": book_levels(market, False, depth),
        }
    )


@router.get(
    "/markets/{market_id}/trades",
    summary="Recent trades, newest first",
    responses={200: {"model": Trades}, **PUBLIC_ERRORS, **errors(400, 404)},
)
async def trades(
    market_id: str,
    _: Public,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    market = state.market(market_id)
    page = await state.page(queries.list_trades, market_id, limit=limit, cursor=cursor)
    return {
        "market_id": market_id,
        "trades": [trade_view(row, market) for row in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/markets/{market_id}/candles",
    summary="OHLCV candles from trades",
    responses={200: {"model": Candles}, **PUBLIC_ERRORS, **errors(400, 404)},
)
async def candles(
    market_id: str,
    _: Public,
    state: State,
    interval: Literal["1m", "5m", "1h", "1d"] = "1h",
    start: TimeParam = None,
    end: TimeParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Any:
    market = state.market(market_id)
    step = tick_size(market)
    interval_ms = INTERVALS[interval]
    end_ms = parse_time_param(end, "end", end=True) or state.exchange.clock()
    start_ms = parse_time_param(start, "start") or end_ms - interval_ms * limit
    rows = await state.read(queries.candles, market_id, interval_ms, start_ms, end_ms, limit)
    return {
        "market_id": market_id,
        "interval": interval,
        "candles": [
            {
                "start": iso(row["time"]),
                "open": float(row["open"] * step),
                "high": float(row["high"] * step),
                "low": float(row["low"] * step),
                "close": float(row["close"] * step),
                "volume": row["volume"],
            }
            for row in rows
        ],
    }
