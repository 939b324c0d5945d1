"""An order and a trade as everyone outside the engine sees them: one typed record each.

An ``OrderRecord`` is built from the event that accepted the order, from a live engine order, or
from its stored row, and is moved on by the events that concern it. The projection stores it,
the stream's read models keep it, replies and views render it: one shape from end to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..domain import events as ev
from ..domain.order import Order


@dataclass(slots=True)
class OrderRecord:
    order_id: int
    account_id: str
    market_id: str
    side: str
    order_type: str
    price: int
    size: int
    filled: int
    remaining: int
    status: str
    reason: str | None
    time_in_force: str
    expire_at: int | None
    post_only: bool
    reduce_only: bool
    client_order_id: str | None
    stp: str
    created_at: int
    updated_at: int
    order_group_id: str | None

    @classmethod
    def accepted(cls, e: ev.OrderAccepted) -> OrderRecord:
        """The order as its acceptance left it: open, nothing filled yet."""
        return cls(
            e.order_id,
            e.account_id,
            e.market_id,
            str(e.side),
            str(e.order_type),
            e.price,
            e.size,
            0,
            e.size,
            "open",
            None,
            str(e.time_in_force),
            e.expire_at,
            e.post_only,
            e.reduce_only,
            e.client_order_id,
            str(e.stp),
            e.time,
            e.time,
            e.order_group_id,
        )

    @classmethod
    def live(cls, order: Order, updated_at: int | None = None) -> OrderRecord:
        """A live engine order (it keeps no update time: ``updated_at`` if known, else its
        creation)."""
        return cls(
            order.order_id,
            order.account_id,
            order.market_id,
            order.side.value,
            order.order_type.value,
            order.price,
            order.size,
            order.filled,
            order.remaining,
            order.status.value,
            None,
            order.time_in_force.value,
            order.expire_at,
            order.post_only,
            order.reduce_only,
            order.client_order_id,
            order.stp.value,
            order.created_at,
            order.created_at if updated_at is None else updated_at,
            order.order_group_id,
        )

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OrderRecord:
        """An ``orders`` row as the store returns it."""
        return cls(
            int(row["order_id"]),
            row["account_id"],
            row["market_id"],
            row["side"],
            row["order_type"],
            int(row["price"]),
            int(row["size"]),
            int(row["filled"]),
            int(row["remaining"]),
            row["status"],
            row["reason"],
            row["time_in_force"],
            row["expire_at"],
            bool(row["post_only"]),
            bool(row["reduce_only"]),
            row["client_order_id"],
            row["stp"],
            int(row["created_at"]),
            int(row["updated_at"]),
            row["order_group_id"],
        )

    def row(self) -> dict[str, Any]:
        """The ``orders`` row to store (flat fields: no deep copy as ``asdict`` would make)."""
        return {name: getattr(self, name) for name in _ORDER_FIELDS}

    def fold(self, e: ev.Event) -> None:
        """Move on by one event that concerns this order (a fill, an amend, its close)."""
        if isinstance(e, ev.Trade):
            self.filled += e.size
            self.remaining -= e.size
        elif isinstance(e, ev.OrderAmended):
            self.price, self.size, self.remaining = e.price, e.size, e.remaining
        elif isinstance(e, ev.OrderClosed):
            self.status, self.reason = str(e.status), e.reason
            self.filled, self.remaining = e.filled, e.remaining
        else:
            return
        self.updated_at = e.time

    def folded(self, events: list[ev.Event]) -> OrderRecord:
        """This order moved on by those of ``events`` that concern it."""
        order_id = self.order_id
        for e in events:
            if isinstance(e, ev.Trade):
                if order_id in (e.maker_order_id, e.taker_order_id):
                    self.fold(e)
            elif isinstance(e, ev.OrderAmended | ev.OrderClosed) and e.order_id == order_id:
                self.fold(e)
        return self


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """A trade between a maker and a taker; each side sees it as its fill."""

    trade_id: int
    market_id: str
    price: int
    size: int
    maker_order_id: int
    taker_order_id: int
    maker_account_id: str
    taker_account_id: str
    taker_side: str
    maker_fee: int
    taker_fee: int
    created_at: int

    @classmethod
    def of(cls, e: ev.Trade) -> TradeRecord:
        return cls(
            e.trade_id,
            e.market_id,
            e.price,
            e.size,
            e.maker_order_id,
            e.taker_order_id,
            e.maker_account_id,
            e.taker_account_id,
            str(e.taker_side),
            e.maker_fee,
            e.taker_fee,
            e.time,
        )

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TradeRecord:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _TRADE_FIELDS}

    def fill_for(self, account_id: str) -> FillRecord:
        """The trade as the account on one side of it sees it."""
        maker = self.maker_account_id == account_id
        taker_side = self.taker_side
        return FillRecord(
            self.trade_id,
            self.maker_order_id if maker else self.taker_order_id,
            self.market_id,
            ("sell" if taker_side == "buy" else "buy") if maker else taker_side,
            self.price,
            self.size,
            "maker" if maker else "taker",
            self.maker_fee if maker else self.taker_fee,
            self.created_at,
        )


_ORDER_FIELDS = tuple(f.name for f in fields(OrderRecord))
_TRADE_FIELDS = tuple(f.name for f in fields(TradeRecord))


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One side of a trade: the account's order, side, role and fee."""

    trade_id: int
    order_id: int
    market_id: str
    side: str
    price: int
    size: int
    liquidity: str
    fee: int
    created_at: int
