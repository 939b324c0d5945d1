"""Trading: place, amend, cancel and list orders (spec "Trading", DESIGN §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ...domain import DomainError, OrderType, SelfTradePrevention, Side, TimeInForce
from ...domain import commands as c
from ...domain.events import Event, OrderAccepted, OrderAmended, OrderClosed, Trade
from ...store import queries
from ..auth import Principal, authenticate
from ..errors import ApiError, from_domain, invalid_request
from ..keys import READ, TRADE
from ..models import AmendOrderRequest, BatchOrdersRequest, PlaceOrderRequest
from ..money import price_to_ticks, ticks_to_price, to_usdc
from ..schemas import (
    PRIVATE_ERRORS,
    BatchResults,
    Canceled,
    Order,
    OrderList,
    PlacedOrder,
)
from ..state import AppState, app_state
from ..timeutil import parse_time_param, to_ms
from ..views import order_ref, order_view, parse_order_ref, tick_size, trade_ref

router = APIRouter(tags=["trading"])
STATUSES = ("open", "filled", "canceled", "expired", "rejected", "all")


async def trader(request: Request, state: Annotated[AppState, Depends(app_state)]) -> Principal:
    return await authenticate(request, state.keys, state.exchange.clock(), TRADE)


async def reader(request: Request, state: Annotated[AppState, Depends(app_state)]) -> Principal:
    return await authenticate(request, state.keys, state.exchange.clock(), READ)


Trader = Annotated[Principal, Depends(trader)]
Reader = Annotated[Principal, Depends(reader)]
State = Annotated[AppState, Depends(app_state)]


def build_place(state: AppState, account_id: str, body: PlaceOrderRequest) -> Any:
    """Turn a request into a command builder, converting prices against the market's grid."""
    market = state.market(body.market_id)
    step = tick_size(market)
    order_type = OrderType(body.type)
    price = None
    if body.price is not None:
        field = "price"
        price = price_to_ticks(body.price, step, field)
    elif order_type is OrderType.LIMIT:
        raise invalid_request("price", "a limit order needs a price")
    tif = body.time_in_force or ("IOC" if order_type is OrderType.MARKET else "GTC")
    expire_at = to_ms(body.expire_at, "expire_at")

    def build(now: int) -> c.PlaceOrder:
        return c.PlaceOrder(
            now,
            account_id,
            market.market_id,
            Side(body.side),
            body.size,
            price,
            order_type,
            TimeInForce(tif),
            expire_at,
            body.post_only,
            body.reduce_only,
            body.client_order_id,
            SelfTradePrevention(body.stp),
        )

    return build


def placed_view(state: AppState, events: list[Event]) -> dict[str, Any]:
    """The reply to a placement, straight from its events (all of them already stored): the
    order as ``order_view`` shows a stored one, plus what it traded on arrival."""
    accepted = events[0]
    assert isinstance(accepted, OrderAccepted)
    market = state.market(accepted.market_id)
    step = tick_size(market)
    fills = []
    filled = 0
    status, reason = "open", None
    size = accepted.size  # as amended since (a cut market order, a self-trade decrement)
    for event in events:
        if isinstance(event, Trade) and event.taker_order_id == accepted.order_id:
            filled += event.size
            fills.append(
                {
                    "trade_id": trade_ref(event.trade_id),
                    "price": ticks_to_price(event.price, step),
                    "size": event.size,
                    "fee": to_usdc(event.taker_fee),
                }
            )
        elif isinstance(event, OrderAmended) and event.order_id == accepted.order_id:
            size = event.size
        elif isinstance(event, OrderClosed) and event.order_id == accepted.order_id:
            status, reason = event.status, event.reason
            size = event.filled + event.remaining
    row = {
        "order_id": accepted.order_id,
        "client_order_id": accepted.client_order_id,
        "market_id": accepted.market_id,
        "side": accepted.side,
        "order_type": accepted.order_type,
        "price": accepted.price,
        "size": accepted.size,
        "filled": filled,
        "remaining": size - filled,
        "status": status,
        "reason": reason,
        "time_in_force": accepted.time_in_force,
        "expire_at": accepted.expire_at,
        "post_only": accepted.post_only,
        "reduce_only": accepted.reduce_only,
        "stp": accepted.stp,
        "created_at": accepted.time,
        "updated_at": events[-1].time,
    }
    return {**order_view(row, market), "fills": fills}


async def existing_order(state: AppState, account_id: str, client_order_id: str | None) -> Any:
    """The first result of an order placed before with this client_order_id, if any."""
    if client_order_id is None:
        return None
    order_id = state.exchange.client_orders.get((account_id, client_order_id))
    if order_id is None:
        return None
    row = await state.read(queries.get_order, account_id, order_id)
    return order_view(row, state.market(row["market_id"])) if row else None


async def place_one(state: AppState, account_id: str, body: PlaceOrderRequest) -> tuple[int, Any]:
    replay = await existing_order(state, account_id, body.client_order_id)
    if replay is not None:
        return 200, replay
    build = build_place(state, account_id, body)
    try:
        events = await state.exchange.submit(build)
    except DomainError as error:
        raise from_domain(error, tick_size(state.market(body.market_id))) from None
    return 201, placed_view(state, events)


@router.post(
    "/orders",
    status_code=201,
    summary="Place an order",
    responses={
        201: {"model": PlacedOrder, "description": "Placed, with what it traded on arrival"},
        200: {"model": Order, "description": "A client_order_id retry: the first result"},
        **PRIVATE_ERRORS,
    },
)
async def place_order(
    body: PlaceOrderRequest, principal: Trader, state: State, response: Response
) -> Any:
    status, view = await place_one(state, principal.account_id, body)
    response.status_code = status
    return view


@router.post(
    "/orders/batch",
    summary="Place up to 20 orders; each succeeds or fails alone",
    responses={200: {"model": BatchResults}, **PRIVATE_ERRORS},
)
async def place_orders(body: BatchOrdersRequest, principal: Trader, state: State) -> Any:
    results = []
    for order in body.orders:
        try:
            status, view = await place_one(state, principal.account_id, order)
            results.append({"status": status, "order": view})
        except (ApiError, DomainError) as error:
            mapped = from_domain(error) if isinstance(error, DomainError) else error
            results.append(
                {
                    "status": mapped.status,
                    "error": {
                        "code": mapped.code,
                        "message": mapped.message,
                        "details": mapped.details,
                    },
                }
            )
    return {"results": results}


def order_id_or_404(value: str) -> int:
    order_id = parse_order_ref(value)
    if order_id is None:
        raise ApiError("ORDER_NOT_FOUND", f"no order {value!r}", {"order_id": value})
    return order_id


async def not_live(state: AppState, account_id: str, order_id: int) -> ApiError:
    """Why an order cannot be changed: it is the account's but finished, or not theirs at all."""
    row = await state.read(queries.get_order, account_id, order_id)
    if row is not None:
        return ApiError(
            "ORDER_NOT_CANCELABLE",
            f"order {order_ref(order_id)} is {row['status']}",
            {"order_id": order_ref(order_id), "status": row["status"]},
        )
    return ApiError(
        "ORDER_NOT_FOUND", f"no order {order_ref(order_id)}", {"order_id": order_ref(order_id)}
    )


async def cancel_or_explain(
    state: AppState, account_id: str, order_id: int, build: Any
) -> list[Event]:
    try:
        events: list[Event] = await state.exchange.submit(build)
    except DomainError as error:
        if error.code != "ORDER_NOT_FOUND":
            raise
        raise await not_live(state, account_id, order_id) from None
    return events


@router.delete(
    "/orders/{order_id}",
    summary="Cancel an order",
    responses={200: {"model": Order}, **PRIVATE_ERRORS},
)
async def cancel_order(order_id: str, principal: Trader, state: State) -> Any:
    number = order_id_or_404(order_id)
    account = principal.account_id
    await cancel_or_explain(state, account, number, lambda now: c.CancelOrder(now, account, number))
    row = await state.read(queries.get_order, account, number)
    return order_view(row, state.market(row["market_id"]))


@router.delete(
    "/orders",
    summary="Cancel all open orders, optionally in one market",
    responses={200: {"model": Canceled}, **PRIVATE_ERRORS},
)
async def cancel_all(principal: Trader, state: State, market_id: str | None = None) -> Any:
    if market_id is not None:
        state.market(market_id)
    account = principal.account_id
    events = await state.exchange.submit(lambda now: c.CancelAll(now, account, market_id))
    canceled = [order_ref(e.order_id) for e in events if isinstance(e, OrderClosed)]
    return {"canceled": canceled, "count": len(canceled)}


@router.patch(
    "/orders/{order_id}",
    summary="Amend an order's price or size",
    responses={200: {"model": Order}, **PRIVATE_ERRORS},
)
async def amend_order(
    order_id: str, body: AmendOrderRequest, principal: Trader, state: State
) -> Any:
    number = order_id_or_404(order_id)
    account = principal.account_id
    if body.price is None and body.size is None:
        raise invalid_request("size", "an amend needs a new price or a new size")
    order = state.exchange.engine.orders.get(number)
    if order is None or order.account_id != account:
        raise await not_live(state, account, number)
    price = None
    if body.price is not None:
        price = price_to_ticks(body.price, tick_size(state.market(order.market_id)))
    size = body.size
    try:
        events = await cancel_or_explain(
            state, account, number, lambda now: c.AmendOrder(now, account, number, price, size)
        )
    except DomainError as error:
        raise from_domain(error, tick_size(state.market(order.market_id))) from None
    amended = next(e for e in events if isinstance(e, OrderAmended))
    row = await state.read(queries.get_order, account, amended.order_id)
    return order_view(row, state.market(row["market_id"]))


@router.get(
    "/orders/{order_id}",
    summary="Get one order",
    responses={200: {"model": Order}, **PRIVATE_ERRORS},
)
async def get_order(order_id: str, principal: Reader, state: State) -> Any:
    number = order_id_or_404(order_id)
    row = await state.read(queries.get_order, principal.account_id, number)
    if row is None:
        raise ApiError("ORDER_NOT_FOUND", f"no order {order_id!r}", {"order_id": order_id})
    return order_view(row, state.market(row["market_id"]))


@router.get(
    "/orders",
    summary="List orders: open ones, or history by status and date",
    responses={200: {"model": OrderList}, **PRIVATE_ERRORS},
)
async def list_orders(
    principal: Reader,
    state: State,
    status: str | None = None,
    market_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Any:
    if status is not None and status not in STATUSES:
        raise invalid_request("status", f"status must be one of {', '.join(STATUSES)}")
    if market_id is not None:
        state.market(market_id)
    page = await state.page(
        queries.list_orders,
        principal.account_id,
        status=status,
        market_id=market_id,
        start_ms=parse_time_param(start_date, "start_date"),
        end_ms=parse_time_param(end_date, "end_date", end=True),
        limit=limit,
        cursor=cursor,
    )
    return {
        "orders": [order_view(row, state.market(row["market_id"])) for row in page.items],
        "next_cursor": page.next_cursor,
    }
