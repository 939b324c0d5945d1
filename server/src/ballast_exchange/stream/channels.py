"""The stream's channels (docs/websocket.md, "Server → client"), one class each, registered by name.

A channel says what it is keyed by (a market, nothing, or the subscriber's account), renders a
subscription's snapshot from the read models, and works out the update a stored change makes:
public channels once per group commit (``on_batch``), private channels once per command
(``on_command``); ``None`` means nothing to send. ``Feed`` is the per-stream state a channel may
keep between updates (``last``: what the last message showed, where updates are diffs).

Adding a channel: write its class here and add it to ``CHANNELS``.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from typing import Any, ClassVar, cast

from ..domain.market import Market
from ..store.order_records import TradeRecord
from ..wire.errors import invalid_request
from ..wire.money import ticks_to_price
from ..wire.order_groups import triggered_view
from ..wire.refs import iso
from ..wire.usdc import micro_price, to_usdc
from ..wire.views import (
    change_24h,
    fill_view,
    midpoint,
    order_view,
    position_fields,
    trade_view,
)
from .models import AccountChanges, Batch, MarketModel, Models, PositionModel

DEFAULT_DEPTH = 20
MAX_DEPTH = 100

Levels = tuple[dict[float, int], dict[float, int]]


class Scope(Enum):
    MARKET = "market"  # one stream per market (market_id in the request and every message)
    GLOBAL = "global"  # one stream for the whole exchange
    ACCOUNT = "account"  # one stream per account: private, needs auth


class Feed:
    """What a channel keeps of one stream: its owner (market or account id, "" when global), its
    depth (0 where it does not apply) and ``last``."""

    __slots__ = ("depth", "last", "owner")

    def __init__(self, owner: str, depth: int) -> None:
        self.owner = owner
        self.depth = depth
        self.last: Any = None


def as_market(model: MarketModel) -> Market:
    """The API's views read only ``tick_value`` of a market, which the model has."""
    return cast(Market, model)


class Channel:
    name: ClassVar[str]
    scope: ClassVar[Scope]
    takes_depth: ClassVar[bool] = False

    @property
    def public(self) -> bool:
        return self.scope is not Scope.ACCOUNT

    def depth(self, request: dict[str, Any]) -> int:
        """The depth a subscribe or unsubscribe asks for (0 where the channel has none)."""
        return 0

    def open(self, models: Models, feed: Feed, now: int) -> None:
        """Set up a new stream's ``feed.last`` (before its first snapshot)."""

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        raise NotImplementedError

    def on_batch(self, models: Models, feed: Feed, batch: Batch, now: int) -> Any:
        """A public stream's update for one group commit (its market was touched)."""
        return None

    def on_command(self, models: Models, feed: Feed, changes: AccountChanges, now: int) -> Any:
        """A private stream's update for one command that changed its account."""
        return None


# ---------------------------------------------------------------- public


def book_view(market: MarketModel, depth: int) -> Levels:
    """The top ``depth`` levels of each side as price → size."""
    step = market.step
    bids = {float(p * step): s for p, s in market.bids.depth(depth)}
    asks = {float(p * step): s for p, s in market.asks.depth(depth)}
    return bids, asks


def levels_list(levels: dict[float, int], best_first_descending: bool) -> list[dict[str, Any]]:
    prices = sorted(levels, reverse=best_first_descending)
    return [{"price": price, "size": levels[price]} for price in prices]


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


class OrderBook(Channel):
    name = "orderbook"
    scope = Scope.MARKET
    takes_depth = True

    def depth(self, request: dict[str, Any]) -> int:
        depth = request.get("depth", DEFAULT_DEPTH)
        if isinstance(depth, bool) or not isinstance(depth, int):
            raise invalid_request("depth", "depth must be an integer")
        if not 1 <= depth <= MAX_DEPTH:
            raise invalid_request("depth", f"depth must be 1 to {MAX_DEPTH}")
        return depth

    def open(self, models: Models, feed: Feed, now: int) -> None:
        feed.last = book_view(models.markets[feed.owner], feed.depth)

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        bids, asks = feed.last
        return {
            "depth": feed.depth,
            "bids": levels_list(bids, True),
            "asks": levels_list(asks, False),
        }

    def on_batch(self, models: Models, feed: Feed, batch: Batch, now: int) -> Any:
        after = book_view(models.markets[feed.owner], feed.depth)
        diff = book_diff(feed.last, after)
        feed.last = after
        return diff


class Trades(Channel):
    name = "trades"
    scope = Scope.MARKET

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        market = models.markets[feed.owner]
        return {"trades": [trade_view(row, as_market(market)) for row in market.recent]}

    def on_batch(self, models: Models, feed: Feed, batch: Batch, now: int) -> Any:
        new = batch.trades.get(feed.owner)
        if not new:
            return None
        market = as_market(models.markets[feed.owner])
        return {"trades": [trade_view(TradeRecord.of(e), market) for e in new]}


def ticker_view(models: Models, market: MarketModel, now: int) -> dict[str, Any]:
    """The market object's price fields (``GET /v1/markets/{id}``), from the read models."""
    step = market.step
    bid, ask, last = market.bids.best(), market.asks.best(), market.last_price
    return {
        "bid": ticks_to_price(bid, step),
        "ask": ticks_to_price(ask, step),
        "midpoint": midpoint(bid, ask, step),
        "last_price": ticks_to_price(last, step),
        "change_24h": change_24h(last, market.prices.day_ago(now), step),
        "volume_24h": market.volume.since(now),
    }


class Ticker(Channel):
    name = "ticker"
    scope = Scope.MARKET

    def open(self, models: Models, feed: Feed, now: int) -> None:
        feed.last = ticker_view(models, models.markets[feed.owner], now)

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        return feed.last

    def on_batch(self, models: Models, feed: Feed, batch: Batch, now: int) -> Any:
        ticker = ticker_view(models, models.markets[feed.owner], now)
        if ticker == feed.last:
            return None
        feed.last = ticker
        return ticker


def market_state(market: MarketModel) -> dict[str, Any]:
    settlement = market.settlement
    summary = None
    if settlement is not None:
        summary = {
            "value": micro_price(settlement.value),
            "evidence_hash": settlement.evidence_hash,
            "proposed_at": iso(settlement.proposed_at),
            "dispute_ends_at": iso(settlement.final_after),
            "final": market.status == "settled",
        }
    return {
        "market_id": market.market_id,
        "status": market.status,
        "close_time": iso(market.close_time),
        "settlement": summary,
    }


class Markets(Channel):
    name = "markets"
    scope = Scope.GLOBAL

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        return {"markets": [market_state(m) for m in models.markets.values()]}

    def on_batch(self, models: Models, feed: Feed, batch: Batch, now: int) -> Any:
        if not batch.lifecycle:
            return None
        markets = models.markets
        states = [
            {**market_state(markets[market_id]), "event": name}
            for market_id, name in batch.lifecycle
        ]
        return {"markets": states}


# ---------------------------------------------------------------- private


class Orders(Channel):
    name = "orders"
    scope = Scope.ACCOUNT

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        orders = models.open_orders(feed.owner)
        markets = models.markets
        views = []
        for order_id in sorted(orders):
            order = orders[order_id]
            # As the live order shows it: updated when created (the snapshot's long-standing form).
            order = replace(order, updated_at=order.created_at)
            views.append(order_view(order, as_market(markets[order.market_id])))
        return {"orders": views}

    def on_command(self, models: Models, feed: Feed, changes: AccountChanges, now: int) -> Any:
        if not changes.orders:
            return None
        markets = models.markets
        views = [
            {**order_view(order, as_market(markets[order.market_id])), "event": event}
            for event, order in changes.orders
        ]
        return {"orders": views}


class Fills(Channel):
    name = "fills"
    scope = Scope.ACCOUNT

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        return {"fills": []}

    def on_command(self, models: Models, feed: Feed, changes: AccountChanges, now: int) -> Any:
        if not changes.fills:
            return None
        markets, owner = models.markets, feed.owner
        views = [
            fill_view(TradeRecord.of(e).fill_for(owner), as_market(markets[e.market_id]))
            for e in changes.fills
        ]
        return {"fills": views}


def position_view(models: Models, account_id: str, market_id: str) -> dict[str, Any]:
    """One position with its PnL, marked at the mid when both sides quote, else the last trade
    (as ``GET /v1/positions``)."""
    position = models.positions(account_id).get(market_id)
    market = models.markets[market_id]
    step = market.step
    bid, ask = market.bids.best(), market.asks.best()
    mark = (bid + ask) // 2 if bid is not None and ask is not None else market.last_price
    if position is None or position.size == 0:
        size, average, unrealized, realized, margin = 0, None, 0, 0, 0
        if position is not None:
            realized = position.realized_pnl
    else:
        size = position.size
        average = micro_price(average_price_micro(position, market))
        unrealized = unrealized_pnl(position, market, mark) if mark is not None else 0
        realized, margin = position.realized_pnl, position.collateral
    return position_fields(market_id, size, average, mark, step, unrealized, realized, margin)


def unrealized_pnl(position: PositionModel, market: MarketModel, mark: int) -> int:
    """What closing at ``mark`` (ticks) would realise (``domain.Position.unrealized_pnl``)."""
    if position.size > 0:
        return (mark - market.floor) * market.tick_value * position.size - position.collateral
    if position.size < 0:
        return (market.cap - mark) * market.tick_value * -position.size - position.collateral
    return 0


def average_price_micro(position: PositionModel, market: MarketModel) -> int | None:
    """Average entry price in micro price units (``domain.Position.average_price_micro``)."""
    if position.size > 0:
        return market.floor * market.tick_value + position.collateral // position.size
    if position.size < 0:
        return market.cap * market.tick_value - position.collateral // -position.size
    return None


class Positions(Channel):
    name = "positions"
    scope = Scope.ACCOUNT

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        positions = models.positions(feed.owner)
        return {
            "positions": [
                position_view(models, feed.owner, market_id)
                for market_id in sorted(positions)
                if positions[market_id].size != 0
            ]
        }

    def on_command(self, models: Models, feed: Feed, changes: AccountChanges, now: int) -> Any:
        if not changes.positions:
            return None
        views = [position_view(models, feed.owner, m) for m in changes.positions]
        return {"positions": views}


def balance_view(models: Models, account_id: str) -> dict[str, Any]:
    if account_id not in models.accounts:
        return {}
    available = models.available(account_id)
    reserved = models.reserved(account_id)
    return {
        "total_balance": to_usdc(available + reserved),
        "available": to_usdc(available),
        "reserved": to_usdc(reserved),
        "currency": "USDC",
    }


class Balance(Channel):
    name = "balance"
    scope = Scope.ACCOUNT

    def open(self, models: Models, feed: Feed, now: int) -> None:
        feed.last = balance_view(models, feed.owner)

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        return feed.last

    def on_command(self, models: Models, feed: Feed, changes: AccountChanges, now: int) -> Any:
        if not changes.balance:
            return None
        balance = balance_view(models, feed.owner)
        if balance == feed.last:
            return None
        feed.last = balance
        return balance


class OrderGroups(Channel):
    """A message when one of the account's order groups triggers (its orders' cancels follow
    on the ``orders`` channel); the groups themselves are listed by ``list_order_groups``."""

    name = "order_groups"
    scope = Scope.ACCOUNT

    def snapshot(self, models: Models, feed: Feed, now: int) -> Any:
        return {"order_groups": []}

    def on_command(self, models: Models, feed: Feed, changes: AccountChanges, now: int) -> Any:
        if not changes.order_groups:
            return None
        return {"order_groups": [triggered_view(trigger) for trigger in changes.order_groups]}


# Public first: the order an unknown channel's error lists them in.
CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        OrderBook(),
        Trades(),
        Ticker(),
        Markets(),
        Orders(),
        Fills(),
        Positions(),
        Balance(),
        OrderGroups(),
    )
}
