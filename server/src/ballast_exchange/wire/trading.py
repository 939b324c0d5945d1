"""Order entry as REST and the stream both speak it: requests into commands, outcomes into views.

Each function hands its command to ``service.trading.Trading`` *now* and returns the coroutine of
its answer, a ``(status, body)`` pair, which completes once the command is stored. A request the
wire itself refuses (a price off the grid) raises ``ApiError`` at once, before anything runs.
"""

from __future__ import annotations

from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

from ..domain import DomainError, OrderType, SelfTradePrevention, Side, TimeInForce
from ..domain import commands as c
from ..domain.market import Market
from ..service.reads import QueuePositionRecord
from ..service.trading import CancelAllOutcome, OrderOutcome, Pending, Trading
from .errors import ApiError, from_domain, invalid_request
from .models import AmendOrderRequest, BatchAmendItem, PlaceOrderRequest
from .money import price_to_ticks, ticks_to_price
from .refs import order_ref, parse_order_ref, trade_ref
from .timeutil import to_ms
from .usdc import to_usdc
from .views import order_view, tick_size

# (HTTP status, body) of an answer; the stream sends the same pair.
Answer = tuple[int, Any]


def place_command(trading: Trading, account_id: str, body: PlaceOrderRequest) -> c.PlaceOrder:
    """The placement a request asks for, its prices converted onto the market's grid."""
    market = trading.reads.market(body.market_id)
    step = tick_size(market)
    order_type = OrderType(body.type)
    price = None
    if body.price is not None:
        price = price_to_ticks(body.price, step, "price")
    elif order_type is OrderType.LIMIT:
        raise invalid_request("price", "a limit order needs a price")
    tif = body.time_in_force or ("IOC" if order_type is OrderType.MARKET else "GTC")
    return c.PlaceOrder(
        0,
        account_id,
        market.market_id,
        Side(body.side),
        body.size,
        price,
        order_type,
        TimeInForce(tif),
        to_ms(body.expire_at, "expire_at"),
        body.post_only,
        body.reduce_only,
        body.client_order_id,
        SelfTradePrevention(body.stp),
        body.order_group_id,
    )


def placed_view(outcome: OrderOutcome, market: Market) -> dict[str, Any]:
    """A new order as ``order_view`` shows it, plus what it traded on arrival."""
    step = tick_size(market)
    fills = [
        {
            "trade_id": trade_ref(fill.trade_id),
            "price": ticks_to_price(fill.price, step),
            "size": fill.size,
            "fee": to_usdc(fill.fee),
        }
        for fill in outcome.fills
    ]
    return {**order_view(outcome.order, market), "fills": fills}


async def _outcome(pending: Pending[Any], step: Decimal | None) -> Any:
    try:
        return await pending.result()
    except DomainError as error:
        raise from_domain(error, step) from None


async def _placed(pending: Pending[OrderOutcome], market: Market) -> Answer:
    outcome: OrderOutcome = await _outcome(pending, tick_size(market))
    if outcome.replayed:
        return 200, order_view(outcome.order, market)
    return 201, placed_view(outcome, market)


async def _changed(
    trading: Trading, pending: Pending[OrderOutcome], step: Decimal | None
) -> Answer:
    outcome: OrderOutcome = await _outcome(pending, step)
    return 200, order_view(outcome.order, trading.reads.market(outcome.order.market_id))


def place(
    trading: Trading,
    account_id: str,
    body: PlaceOrderRequest,
    command: c.PlaceOrder | None = None,
    guarded: bool = False,
) -> Awaitable[Answer]:
    """Place now; answer 201 with the order once stored, or 200 with the first order of a
    retried ``client_order_id``. ``command``: ``place_command``'s, if already made."""
    if command is None:
        command = place_command(trading, account_id, body)
    market = trading.reads.market(command.market_id)
    return _placed(trading.place(command, guarded), market)


def order_id_or_404(value: str) -> int:
    order_id = parse_order_ref(value)
    if order_id is None:
        raise ApiError("ORDER_NOT_FOUND", f"no order {value!r}", {"order_id": value})
    return order_id


def cancel(trading: Trading, account_id: str, order_ref_text: str) -> Awaitable[Answer]:
    order_id = order_id_or_404(order_ref_text)
    return _changed(trading, trading.cancel(account_id, order_id), None)


def amend(
    trading: Trading, account_id: str, order_ref_text: str, body: AmendOrderRequest
) -> Awaitable[Answer]:
    order_id, price, step = amend_args(trading, account_id, order_ref_text, body)
    return _changed(trading, trading.amend(account_id, order_id, price, body.size), step)


def amend_args(
    trading: Trading, account_id: str, order_ref_text: str, body: AmendOrderRequest
) -> tuple[int, int | None, Decimal | None]:
    """An amend's order id, new price in ticks and the order's tick size, checked before
    anything runs."""
    order_id = order_id_or_404(order_ref_text)
    if body.price is None and body.size is None:
        raise invalid_request("size", "an amend needs a new price or a new size")
    live = trading.reads.open_order(account_id, order_id)
    step = None if live is None else tick_size(trading.reads.market(live.market_id))
    price = None
    if body.price is not None and step is not None:
        price = price_to_ticks(body.price, step)
    return order_id, price, step


async def _canceled(pending: Pending[CancelAllOutcome]) -> Answer:
    outcome: CancelAllOutcome = await _outcome(pending, None)
    canceled = [order_ref(order_id) for order_id in outcome.canceled]
    return 200, {"canceled": canceled, "count": len(canceled)}


def cancel_all(trading: Trading, account_id: str, market_id: str | None) -> Awaitable[Answer]:
    return _canceled(trading.cancel_all(account_id, market_id))


def batch_slot(status: int, view: Any) -> dict[str, Any]:
    """One item's place in a batch answer: its order, or the error that refused it."""
    return {"status": status, "order": view}


def batch_error(error: ApiError | DomainError) -> dict[str, Any]:
    mapped = from_domain(error) if isinstance(error, DomainError) else error
    return {
        "status": mapped.status,
        "error": {"code": mapped.code, "message": mapped.message, "details": mapped.details},
    }


async def _batch(answers: list[Awaitable[Answer] | ApiError | DomainError]) -> Answer:
    results = []
    for answer in answers:
        try:
            if isinstance(answer, ApiError | DomainError):
                raise answer
            status, view = await answer
            results.append(batch_slot(status, view))
        except (ApiError, DomainError) as error:
            results.append(batch_error(error))
    return 200, {"results": results}


def cancel_batch(trading: Trading, account_id: str, order_refs: list[str]) -> Awaitable[Answer]:
    """Cancel each order in turn, each succeeding or failing alone; every id is checked before
    any order is canceled. Answers 200 with one result per id, in order."""
    checked: list[int | ApiError] = []
    for ref in order_refs:
        try:
            checked.append(order_id_or_404(ref))
        except ApiError as error:
            checked.append(error)
    answers: list[Awaitable[Answer] | ApiError | DomainError] = [
        item
        if isinstance(item, ApiError)
        else _changed(trading, trading.cancel(account_id, item), None)
        for item in checked
    ]
    return _batch(answers)


def amend_batch(
    trading: Trading, account_id: str, items: list[BatchAmendItem]
) -> Awaitable[Answer]:
    """Amend each order in turn, each succeeding or failing alone; every item (id, fields,
    price grid) is checked before any order is changed. Answers 200 with one result per item."""
    checked: list[tuple[int, int | None, Decimal | None, int | None] | ApiError | DomainError] = []
    for item in items:
        try:
            order_id, price, step = amend_args(trading, account_id, item.order_id, item)
            checked.append((order_id, price, step, item.size))
        except (ApiError, DomainError) as error:
            checked.append(error)
    answers: list[Awaitable[Answer] | ApiError | DomainError] = []
    for entry in checked:
        if isinstance(entry, ApiError | DomainError):
            answers.append(entry)
            continue
        order_id, price, step, size = entry
        answers.append(_changed(trading, trading.amend(account_id, order_id, price, size), step))
    return _batch(answers)


def queue_position_view(found: QueuePositionRecord, market: Market) -> dict[str, Any]:
    return {
        "order_id": order_ref(found.order_id),
        "price": ticks_to_price(found.price, tick_size(market)),
        "contracts_ahead": found.contracts_ahead,
        "orders_ahead": found.orders_ahead,
    }
