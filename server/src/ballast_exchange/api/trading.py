"""Order entry shared by REST and the stream: place, cancel, amend and cancel-all.

Each function runs its command on the exchange *now*, in the order it is called, and returns an
awaitable of what the REST endpoint answers, which resolves once the command is stored. REST
awaits it straight away; the stream executes a connection's requests in arrival order and lets
the answers follow as their commits land, so a client may pipeline requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..domain import DomainError, OrderType, SelfTradePrevention, Side, TimeInForce
from ..domain import commands as c
from ..domain.events import Event, OrderAccepted, OrderAmended, OrderClosed, Trade
from ..store import queries
from ..store.projection import accepted_row, fold_order
from ..wire.errors import ApiError, from_domain, invalid_request
from ..wire.models import AmendOrderRequest, PlaceOrderRequest
from ..wire.money import price_to_ticks, ticks_to_price
from ..wire.timeutil import to_ms
from ..wire.usdc import to_usdc
from ..wire.views import order_ref, order_view, parse_order_ref, tick_size, trade_ref
from .state import AppState

# (HTTP status, body) of a REST answer.
Answer = tuple[int, Any]
Build = Callable[[int], c.Command]


def build_place(state: AppState, account_id: str, body: PlaceOrderRequest) -> Build:
    """Turn a request into a command builder, converting prices against the market's grid."""
    market = state.market(body.market_id)
    step = tick_size(market)
    order_type = OrderType(body.type)
    price = None
    if body.price is not None:
        price = price_to_ticks(body.price, step, "price")
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
    order_id = accepted.order_id
    market = state.market(accepted.market_id)
    step = tick_size(market)
    row = accepted_row(accepted)
    fills = []
    for event in events[1:]:
        if isinstance(event, Trade) and event.taker_order_id == order_id:
            fold_order(row, event)
            fills.append(
                {
                    "trade_id": trade_ref(event.trade_id),
                    "price": ticks_to_price(event.price, step),
                    "size": event.size,
                    "fee": to_usdc(event.taker_fee),
                }
            )
        elif isinstance(event, OrderAmended | OrderClosed) and event.order_id == order_id:
            fold_order(row, event)
    row["updated_at"] = events[-1].time
    return {**order_view(row, market), "fills": fills}


async def _rejected(state: AppState, error: ApiError) -> Answer:
    # A rejection is answered only once everything executed before it is stored.
    await state.exchange.barrier()
    raise error


async def _stored(state: AppState, events: list[Event], future: Any) -> list[Event]:
    await state.exchange.durable(future)
    return events


def run(
    state: AppState, build: Build, step: Any = None, guarded: bool = False
) -> tuple[list[Event], Awaitable[list[Event]]] | ApiError:
    """Execute a command now: its events and the wait for their commit, or the mapped error."""
    try:
        events, future = state.exchange.execute(build, guarded)
    except DomainError as error:
        return from_domain(error, step)
    return events, _stored(state, events, future)


def place(
    state: AppState,
    account_id: str,
    body: PlaceOrderRequest,
    build: Build | None = None,
    guarded: bool = False,
) -> Awaitable[Answer]:
    """Place an order now; answer 201 with it once stored, or 200 with the first order placed
    under the same ``client_order_id``. ``build`` is ``build_place``'s, if already made;
    ``guarded``: placed under cancel-on-disconnect (stored so, should it rest)."""
    if body.client_order_id is not None:
        first = state.exchange.client_orders.get((account_id, body.client_order_id))
        if first is not None:
            return _replay(state, account_id, first)
    if build is None:
        build = build_place(state, account_id, body)
    outcome = run(state, build, tick_size(state.market(body.market_id)), guarded)
    if isinstance(outcome, ApiError):
        return _rejected(state, outcome)
    events, stored = outcome

    async def answer() -> Answer:
        await stored
        return 201, placed_view(state, events)

    return answer()


async def _replay(state: AppState, account_id: str, order_id: int) -> Answer:
    row = await state.read(queries.get_order, account_id, order_id)
    return 200, order_view(row, state.market(row["market_id"]))


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


def _change(
    state: AppState, account_id: str, order_id: int, build: Build, step: Any = None
) -> Awaitable[Answer]:
    """Cancel or amend one order now; answer with the stored order, or say why it could not."""
    outcome = run(state, build, step)
    if isinstance(outcome, ApiError):
        if outcome.code != "ORDER_NOT_FOUND":
            return _rejected(state, outcome)

        async def explain() -> Answer:
            await state.exchange.barrier()
            raise await not_live(state, account_id, order_id)

        return explain()
    _, stored = outcome

    async def answer() -> Answer:
        await stored
        row = await state.read(queries.get_order, account_id, order_id)
        return 200, order_view(row, state.market(row["market_id"]))

    return answer()


def cancel(state: AppState, account_id: str, order_ref_text: str) -> Awaitable[Answer]:
    number = order_id_or_404(order_ref_text)
    return _change(state, account_id, number, lambda now: c.CancelOrder(now, account_id, number))


def amend(
    state: AppState, account_id: str, order_ref_text: str, body: AmendOrderRequest
) -> Awaitable[Answer]:
    number = order_id_or_404(order_ref_text)
    if body.price is None and body.size is None:
        raise invalid_request("size", "an amend needs a new price or a new size")
    order = state.exchange.engine.orders.get(number)
    if order is None or order.account_id != account_id:

        async def explain() -> Answer:
            raise await not_live(state, account_id, number)

        return explain()
    step = tick_size(state.market(order.market_id))
    price = None if body.price is None else price_to_ticks(body.price, step)
    size = body.size
    return _change(
        state,
        account_id,
        number,
        lambda now: c.AmendOrder(now, account_id, number, price, size),
        step,
    )


def cancel_all(state: AppState, account_id: str, market_id: str | None) -> Awaitable[Answer]:
    if market_id is not None:
        state.market(market_id)
    outcome = run(state, lambda now: c.CancelAll(now, account_id, market_id))
    if isinstance(outcome, ApiError):
        return _rejected(state, outcome)
    events, stored = outcome

    async def answer() -> Answer:
        await stored
        canceled = [order_ref(e.order_id) for e in events if isinstance(e, OrderClosed)]
        return 200, {"canceled": canceled, "count": len(canceled)}

    return answer()
