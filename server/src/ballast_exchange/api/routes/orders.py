"""Trading: place, amend, cancel and list orders (spec "Trading", DESIGN §4).

The writes here are documented and served from these routes, but answered first by
``api.order_entry`` (docs/adr/0024), which keeps to what they answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ...access.keys import READ, TRADE
from ...service.venue import Venue
from ...wire import trading
from ...wire.account_pages import StatusFilter, orders_page
from ...wire.dependencies import current_venue
from ...wire.errors import ApiError
from ...wire.models import (
    AmendOrderRequest,
    BatchAmendRequest,
    BatchCancelRequest,
    BatchOrdersRequest,
    PlaceOrderRequest,
)
from ...wire.timeutil import TimeParam
from ...wire.views import order_view
from ..auth import Principal, authenticate
from ..order_entry import place_batch
from ..schemas import (
    BODY_ERRORS,
    DELETE_BODY_ERRORS,
    PRIVATE_ERRORS,
    BatchResults,
    Canceled,
    Order,
    OrderList,
    PlacedOrder,
    QueuePosition,
    errors,
)

router = APIRouter(tags=["trading"])


async def trader(request: Request, state: Annotated[Venue, Depends(current_venue)]) -> Principal:
    now = state.exchange.clock()
    principal = await authenticate(request, state.keys, now, TRADE, state.replays)
    await state.exchange.room()
    return principal


async def reader(request: Request, state: Annotated[Venue, Depends(current_venue)]) -> Principal:
    return await authenticate(request, state.keys, state.exchange.clock(), READ, state.replays)


Trader = Annotated[Principal, Depends(trader)]
Reader = Annotated[Principal, Depends(reader)]
State = Annotated[Venue, Depends(current_venue)]


@router.post(
    "/orders",
    status_code=201,
    summary="Place an order",
    responses={
        201: {"model": PlacedOrder, "description": "Placed, with what it traded on arrival"},
        200: {"model": Order, "description": "A client_order_id retry: the first result"},
        **PRIVATE_ERRORS,
        **BODY_ERRORS,
        **errors(404, 409),
    },
)
async def place_order(
    body: PlaceOrderRequest, principal: Trader, state: State, response: Response
) -> Any:
    status, view = await trading.place(state.trading, principal.account_id, body)
    response.status_code = status
    return view


@router.post(
    "/orders/batch",
    summary="Place up to 20 orders; each succeeds or fails alone",
    responses={200: {"model": BatchResults}, **PRIVATE_ERRORS, **BODY_ERRORS},
)
async def place_orders(body: BatchOrdersRequest, principal: Trader, state: State) -> Any:
    _, view = await place_batch(state.trading, principal.account_id, body)
    return view


# Before the routes with an {order_id}: "batch" is not an order id.
@router.delete(
    "/orders/batch",
    summary="Cancel up to 20 orders by id; each succeeds or fails alone",
    responses={200: {"model": BatchResults}, **PRIVATE_ERRORS, **DELETE_BODY_ERRORS},
)
async def cancel_orders(body: BatchCancelRequest, principal: Trader, state: State) -> Any:
    _, view = await trading.cancel_batch(state.trading, principal.account_id, body.order_ids)
    return view


@router.patch(
    "/orders/batch",
    summary="Amend up to 20 orders' price or size; each succeeds or fails alone",
    responses={200: {"model": BatchResults}, **PRIVATE_ERRORS, **BODY_ERRORS},
)
async def amend_orders(body: BatchAmendRequest, principal: Trader, state: State) -> Any:
    _, view = await trading.amend_batch(state.trading, principal.account_id, body.orders)
    return view


@router.delete(
    "/orders/{order_id}",
    summary="Cancel an order",
    responses={200: {"model": Order}, **PRIVATE_ERRORS, **errors(404, 409)},
)
async def cancel_order(order_id: str, principal: Trader, state: State) -> Any:
    _, view = await trading.cancel(state.trading, principal.account_id, order_id)
    return view


@router.delete(
    "/orders",
    summary="Cancel all open orders, optionally in one market",
    responses={200: {"model": Canceled}, **PRIVATE_ERRORS, **errors(404)},
)
async def cancel_all(principal: Trader, state: State, market_id: str | None = None) -> Any:
    _, view = await trading.cancel_all(state.trading, principal.account_id, market_id)
    return view


@router.patch(
    "/orders/{order_id}",
    summary="Amend an order's price or size",
    responses={200: {"model": Order}, **PRIVATE_ERRORS, **BODY_ERRORS, **errors(404, 409)},
)
async def amend_order(
    order_id: str, body: AmendOrderRequest, principal: Trader, state: State
) -> Any:
    _, view = await trading.amend(state.trading, principal.account_id, order_id, body)
    return view


@router.get(
    "/orders/{order_id}",
    summary="Get one order",
    responses={200: {"model": Order}, **PRIVATE_ERRORS, **errors(404)},
)
async def get_order(order_id: str, principal: Reader, state: State) -> Any:
    number = trading.order_id_or_404(order_id)
    order = await state.reads.order(principal.account_id, number)
    if order is None:
        raise ApiError("ORDER_NOT_FOUND", f"no order {order_id!r}", {"order_id": order_id})
    return order_view(order, state.market(order.market_id))


@router.get(
    "/orders/{order_id}/queue_position",
    summary="Where an open order waits: contracts and orders resting ahead of it at its price",
    responses={200: {"model": QueuePosition}, **PRIVATE_ERRORS, **errors(404, 409)},
)
async def get_queue_position(order_id: str, principal: Reader, state: State) -> Any:
    number = trading.order_id_or_404(order_id)
    found = await state.view(lambda: state.reads.queue_position(principal.account_id, number))
    if found is None:
        # Not open: say whether it finished or was never this account's.
        stored = await state.reads.order(principal.account_id, number)
        if stored is None:
            raise ApiError("ORDER_NOT_FOUND", f"no order {order_id!r}", {"order_id": order_id})
        raise ApiError(
            "ORDER_NOT_CANCELABLE",
            f"the order is {stored.status}; only an open order has a place in the queue",
            {"order_id": order_id, "status": stored.status},
        )
    return trading.queue_position_view(found, state.market(found.market_id))


@router.get(
    "/orders",
    summary="List orders: open ones, or history by status and date",
    responses={200: {"model": OrderList}, **PRIVATE_ERRORS, **errors(400, 404)},
)
async def list_orders(
    principal: Reader,
    state: State,
    status: StatusFilter | None = None,
    market_id: str | None = None,
    start_date: TimeParam = None,
    end_date: TimeParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    client_order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    return await orders_page(
        state,
        principal.account_id,
        status=status,
        market_id=market_id,
        start_date=start_date,
        end_date=end_date,
        limit=limit,
        cursor=cursor,
        client_order_id=client_order_id,
    )
