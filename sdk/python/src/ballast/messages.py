"""What a stream yields: typed channel messages (a ``snapshot`` then ``update`` s, per channel)
and connection events (``connected``, ``disconnected``, ``resynced``, ...).

Every channel message has ``type`` (``"snapshot"`` or ``"update"``), ``channel``, ``seq`` (its
subscription's sequence number, rising by one from the snapshot), ``exchange_seq`` (the
exchange's event sequence at which it holds), ``time`` (an aware UTC ``datetime``), the
``market_id`` on public per-market channels, and the channel's data parsed into the REST models
(``Trade``, ``Order``, ``Fill``, ``Position``, ``Balance``, ``BookLevel``) with ``Decimal``
prices. ``data`` keeps the raw JSON object as sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar, Literal

from .errors import BallastError, InvalidResponseError
from .models import (
    Balance,
    BookLevel,
    Fill,
    Model,
    Order,
    OrderGroup,
    Position,
    Settlement,
    Trade,
    parse_datetime,
)

__all__ = [
    "BalanceMessage",
    "ChannelMessage",
    "Connected",
    "Disconnected",
    "FillsMessage",
    "Heartbeat",
    "MarketState",
    "MarketsMessage",
    "OrderBookMessage",
    "OrderGroupsMessage",
    "OrderUpdate",
    "OrdersMessage",
    "Pong",
    "PositionsMessage",
    "ResyncReason",
    "Resynced",
    "StreamMessage",
    "SubscriptionFailed",
    "SubscriptionSeq",
    "Ticker",
    "TickerMessage",
    "TradesMessage",
    "parse_channel_message",
]

#: Why a subscription got a fresh snapshot: the connection was re-established, its ``seq``
#: jumped (a message was lost), or the stream's buffer of unread messages overflowed.
ResyncReason = Literal["reconnect", "gap", "overflow"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- channel data


@dataclass(frozen=True, kw_only=True, slots=True)
class Ticker(Model):
    """A market's best bid and ask, midpoint, last trade price, 24-hour change and volume."""

    bid: Decimal | None = None
    ask: Decimal | None = None
    midpoint: Decimal | None = None  # of the best bid and ask; None when a side is empty
    last_price: Decimal | None = None
    change_24h: Decimal | None = None  # last_price minus the last trade price a day ago
    volume_24h: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketState(Model):
    """A market's state on the ``markets`` channel; ``event`` on updates: ``listed``,
    ``opened``, ``halted``, ``resumed``, ``closed``, ``resolving``, ``overturned``,
    ``settled``."""

    market_id: str
    status: str
    close_time: datetime | None = None
    settlement: Settlement | None = None
    event: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderUpdate(Order):
    """An order as it stood right after ``event`` (``accepted``, ``filled``, ``amended``,
    ``canceled``, ``expired``); ``None`` in the ``orders`` snapshot."""

    event: str | None = None


# --------------------------------------------------------------------------- channel messages


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelMessage:
    """A ``snapshot`` or ``update`` of one subscription (the base of the typed messages, and
    what an unknown channel of a newer server arrives as)."""

    type: str
    channel: str
    seq: int
    exchange_seq: int
    time: datetime
    market_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_snapshot(self) -> bool:
        return self.type == "snapshot"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderBookMessage(ChannelMessage):
    """``orderbook``: the snapshot's levels (best first, ``depth`` set), or the levels whose
    size changed within the depth (size 0: the level left)."""

    bids: list[BookLevel]
    asks: list[BookLevel]
    depth: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TradesMessage(ChannelMessage):
    """``trades``: up to 50 recent trades (snapshot) or the new ones, oldest first."""

    trades: list[Trade]


@dataclass(frozen=True, kw_only=True, slots=True)
class TickerMessage(ChannelMessage):
    """``ticker``: sent when one of the ticker's fields changes."""

    ticker: Ticker


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketsMessage(ChannelMessage):
    """``markets``: every market (snapshot), or the markets whose lifecycle moved."""

    markets: list[MarketState]


@dataclass(frozen=True, kw_only=True, slots=True)
class OrdersMessage(ChannelMessage):
    """``orders`` (private): the open orders (snapshot), or every change, in order."""

    orders: list[OrderUpdate]


@dataclass(frozen=True, kw_only=True, slots=True)
class FillsMessage(ChannelMessage):
    """``fills`` (private): the account's new fills (the snapshot is empty)."""

    fills: list[Fill]


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionsMessage(ChannelMessage):
    """``positions`` (private): open positions (snapshot), or those that changed (``size`` 0
    when flat)."""

    positions: list[Position]


@dataclass(frozen=True, kw_only=True, slots=True)
class BalanceMessage(ChannelMessage):
    """``balance`` (private): the balance, and each change of it."""

    balance: Balance


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderGroupsMessage(ChannelMessage):
    """``order_groups`` (private): an order group of the account that reached its limit, as
    the trigger left it (``event`` ``"triggered"``); the snapshot is empty. The cancels of its
    orders follow on ``orders``."""

    order_groups: list[OrderGroup]


# --------------------------------------------------------------------------- connection events


@dataclass(frozen=True, kw_only=True, slots=True)
class Connected:
    """The stream is connected (and authenticated, when the client has a key).

    ``reconnect`` is false for the first connection. After a reconnect every subscription gets a
    fresh snapshot, each followed by :class:`Resynced`.
    """

    type: ClassVar[str] = "connected"
    url: str
    account_id: str | None = None
    reconnect: bool = False
    time: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True, slots=True)
class Disconnected:
    """The connection was lost. ``code`` is the WebSocket close code (``None`` without a close
    frame: a network failure or a feed gone silent), ``reason`` says why.

    ``reconnecting`` tells whether the stream is reconnecting by itself. When it is not
    (``4001``, key revoked; ``4029``, too many connections; authentication refused),
    ``error`` holds the exception, which iteration then raises.
    """

    type: ClassVar[str] = "disconnected"
    code: int | None
    reason: str
    reconnecting: bool
    error: BallastError | None = None
    time: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True, slots=True)
class Resynced:
    """A subscription got a fresh snapshot (just delivered) after messages may have been
    missed: anything derived from its earlier messages should be rebuilt from that snapshot."""

    type: ClassVar[str] = "resynced"
    channel: str
    market_id: str | None
    reason: ResyncReason
    seq: int
    exchange_seq: int
    time: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True, slots=True)
class SubscriptionFailed:
    """A subscription could not be renewed after a reconnect or gap (the market is gone, say)
    and was dropped."""

    type: ClassVar[str] = "subscription_failed"
    channel: str
    market_id: str | None
    error: BallastError
    time: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class SubscriptionSeq:
    """One subscription of a heartbeat and the last ``seq`` the server sent on it."""

    channel: str
    market_id: str | None
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Heartbeat:
    """The server's heartbeat (yielded only with ``stream(heartbeats=True)``; the stream uses
    them either way, to notice a dead feed and messages lost at the end of a subscription)."""

    type: ClassVar[str] = "heartbeat"
    time: datetime
    exchange_seq: int
    subscriptions: list[SubscriptionSeq]


@dataclass(frozen=True, kw_only=True, slots=True)
class Pong:
    """The reply to ``ping``: the server's time and the stored ``exchange_seq``; every update
    up to it was read before this reply."""

    time: datetime
    exchange_seq: int


#: Everything ``async for message in stream`` yields.
StreamMessage = (
    OrderBookMessage
    | TradesMessage
    | TickerMessage
    | MarketsMessage
    | OrdersMessage
    | FillsMessage
    | PositionsMessage
    | BalanceMessage
    | ChannelMessage
    | Connected
    | Disconnected
    | Resynced
    | SubscriptionFailed
    | Heartbeat
)


# --------------------------------------------------------------------------- parsing


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidResponseError(
            f"a stream message has no list of objects under {key!r}", details={"field": key}
        )
    return items


def _book(data: dict[str, Any]) -> dict[str, Any]:
    depth = data.get("depth")
    return {
        "bids": [BookLevel.from_dict(level) for level in _objects(data, "bids")],
        "asks": [BookLevel.from_dict(level) for level in _objects(data, "asks")],
        "depth": int(depth) if depth is not None else None,
    }


_PARSERS: dict[str, tuple[type[ChannelMessage], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "orderbook": (OrderBookMessage, _book),
    "trades": (
        TradesMessage,
        lambda d: {"trades": [Trade.from_dict(t) for t in _objects(d, "trades")]},
    ),
    "ticker": (TickerMessage, lambda d: {"ticker": Ticker.from_dict(d)}),
    "markets": (
        MarketsMessage,
        lambda d: {"markets": [MarketState.from_dict(m) for m in _objects(d, "markets")]},
    ),
    "orders": (
        OrdersMessage,
        lambda d: {"orders": [OrderUpdate.from_dict(o) for o in _objects(d, "orders")]},
    ),
    "fills": (FillsMessage, lambda d: {"fills": [Fill.from_dict(f) for f in _objects(d, "fills")]}),
    "positions": (
        PositionsMessage,
        lambda d: {"positions": [Position.from_dict(p) for p in _objects(d, "positions")]},
    ),
    "balance": (BalanceMessage, lambda d: {"balance": Balance.from_dict(d)}),
    "order_groups": (
        OrderGroupsMessage,
        lambda d: {"order_groups": [OrderGroup.from_dict(g) for g in _objects(d, "order_groups")]},
    ),
}


def parse_channel_message(message: dict[str, Any]) -> ChannelMessage:
    """A ``snapshot`` or ``update`` as decoded JSON (with ``Decimal`` numbers) → its typed
    message; :class:`InvalidResponseError` if it is malformed."""
    try:
        data = message["data"]
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
        market_id = message.get("market_id")
        common: dict[str, Any] = {
            "type": str(message["type"]),
            "channel": str(message["channel"]),
            "seq": int(message["seq"]),
            "exchange_seq": int(message["exchange_seq"]),
            "time": parse_datetime(message["time"]),
            "market_id": None if market_id is None else str(market_id),
            "data": data,
        }
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise InvalidResponseError(
            f"malformed stream message ({error!r})", details={"message": message}
        ) from None
    parser = _PARSERS.get(common["channel"])
    if parser is None:
        return ChannelMessage(**common)
    cls, parse = parser
    return cls(**common, **parse(data))


def parse_heartbeat(message: dict[str, Any]) -> Heartbeat:
    try:
        subscriptions = [
            SubscriptionSeq(str(s["channel"]), s.get("market_id"), int(s["seq"]))
            for s in message.get("subscriptions") or []
        ]
        return Heartbeat(
            time=parse_datetime(message["time"]),
            exchange_seq=int(message["exchange_seq"]),
            subscriptions=subscriptions,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise InvalidResponseError(
            f"malformed heartbeat ({error!r})", details={"message": message}
        ) from None


def parse_pong(message: dict[str, Any]) -> Pong:
    try:
        return Pong(time=parse_datetime(message["time"]), exchange_seq=int(message["exchange_seq"]))
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise InvalidResponseError(
            f"malformed pong ({error!r})", details={"message": message}
        ) from None
