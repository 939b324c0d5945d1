"""What each channel shows: snapshots rendered from the stored engine, and updates worked out
from the events of committed commands (docs/websocket.md, "Server → client")."""

from __future__ import annotations

from typing import Any

from ..api.money import ticks_to_price
from ..api.views import (
    balance_view,
    book_levels,
    iso,
    order_view,
    positions_view,
    settlement_summary,
    tick_size,
    trade_view,
)
from ..domain import Engine
from ..domain.events import (
    MarketCreated,
    MarketStatusChanged,
    SettlementFinalized,
    SettlementOverturned,
    SettlementProposed,
)
from ..domain.market import Market
from ..domain.order import Order
from .committed import CommittedView

PUBLIC = ("orderbook", "trades", "ticker", "markets")
PRIVATE = ("orders", "fills", "positions", "balance")
DEFAULT_DEPTH = 20
MAX_DEPTH = 100

Levels = tuple[dict[float, int], dict[float, int]]


def order_row(order: Order) -> dict[str, Any]:
    """A live order as the store's ``orders`` row, for ``order_view`` and ``fold_order``."""
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "market_id": order.market_id,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "price": order.price,
        "size": order.size,
        "filled": order.filled,
        "remaining": order.remaining,
        "status": order.status.value,
        "reason": None,
        "time_in_force": order.time_in_force.value,
        "expire_at": order.expire_at,
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "stp": order.stp.value,
        "created_at": order.created_at,
        "updated_at": order.created_at,
    }


def open_orders(engine: Engine, account_id: str) -> list[Order]:
    account = engine.accounts.get(account_id)
    if account is None:
        return []
    orders = [
        order
        for position in account.positions.values()
        for order in (*position.buys.values(), *position.sells.values())
    ]
    return sorted(orders, key=lambda order: order.order_id)


def book_view(market: Market, depth: int) -> Levels:
    """The top ``depth`` levels of each side as price → size."""
    bids = {level["price"]: level["size"] for level in book_levels(market, True, depth)}
    asks = {level["price"]: level["size"] for level in book_levels(market, False, depth)}
    return bids, asks


def levels_list(levels: dict[float, int], best_first_descending: bool) -> list[dict[str, Any]]:
    prices = sorted(levels, reverse=best_first_descending)
    return [{"price": price, "size": levels[price]} for price in prices]


def book_snapshot(levels: Levels, depth: int) -> dict[str, Any]:
    bids, asks = levels
    return {"depth": depth, "bids": levels_list(bids, True), "asks": levels_list(asks, False)}


def book_diff(before: Levels, after: Levels) -> dict[str, Any] | None:
    """The levels whose size changed between two views; size 0 for a level that left."""
    sides = []
    for old, new, descending in ((before[0], after[0], True), (before[1], after[1], False)):
        changed = {price: size for price, size in new.items() if old.get(price) != size}
        changed.update({price: 0 for price in old if price not in new})
        sides.append(levels_list(changed, descending))
    if not sides[0] and not sides[1]:
        return None
    return {"bids": sides[0], "asks": sides[1]}


def ticker_view(view: CommittedView, market: Market, now_ms: int) -> dict[str, Any]:
    step = tick_size(market)
    book = market.book
    return {
        "bid": ticks_to_price(book.best_bid(), step),
        "ask": ticks_to_price(book.best_ask(), step),
        "last_price": ticks_to_price(market.last_price, step),
        "volume_24h": view.volume_24h(market.market_id, now_ms),
    }


def trades_snapshot(view: CommittedView, market: Market) -> dict[str, Any]:
    recent = view.recent.get(market.market_id, ())
    return {"trades": [trade_view(row, market) for row in recent]}


def market_state(market: Market) -> dict[str, Any]:
    return {
        "market_id": market.market_id,
        "status": market.status.value,
        "close_time": iso(market.close_time),
        "settlement": settlement_summary(market),
    }


LIFECYCLE = (
    MarketCreated,
    MarketStatusChanged,
    SettlementProposed,
    SettlementOverturned,
    SettlementFinalized,
)


def lifecycle_event(event: Any) -> str | None:
    """The ``markets`` channel's name for a lifecycle event (None: not one to announce)."""
    if isinstance(event, MarketCreated):
        return "listed"
    if isinstance(event, SettlementProposed):
        return "resolving"
    if isinstance(event, SettlementOverturned):
        return "overturned"
    if isinstance(event, SettlementFinalized):
        return "settled"
    if isinstance(event, MarketStatusChanged):
        new, old = event.new_status, event.old_status
        if new == "open":
            return "resumed" if old == "halted" else "opened"
        if new in ("halted", "closed"):
            return new
    return None


def private_snapshot(engine: Engine, channel: str, account_id: str) -> dict[str, Any]:
    if channel == "orders":
        return {
            "orders": [
                order_view(order_row(o), engine.markets[o.market_id])
                for o in open_orders(engine, account_id)
            ]
        }
    if channel == "fills":
        return {"fills": []}
    if account_id not in engine.accounts:
        return {"positions": []} if channel == "positions" else {}
    if channel == "positions":
        return positions_view(engine, account_id)
    return balance_view(engine, account_id)
