"""A small driver for worked examples: named accounts, one market, readable money."""

from __future__ import annotations

from typing import Any

from ballast_exchange.domain import (
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import Event, OrderClosed, Trade

from .twins import new_engine

USDC = 1_000_000  # micro-USDC per USDC
BINARY_TICK = 1_000  # tick 0.001: micro-USDC per tick per contract
FAR_FUTURE = 10**13


class Scenario:
    """One engine (of the twin under test), one market ``m``, accounts funded in whole USDC;
    time ticks by 1 ms a step."""

    def __init__(
        self,
        kind: MarketKind = MarketKind.BINARY,
        *,
        tick_value: int = BINARY_TICK,
        floor: int = 0,
        cap: int = 1000,
        maker_fee_bps: int = 0,
        taker_fee_bps: int = 0,
        max_position: int = 1_000_000,
        min_size: int = 1,
        close_time: int = FAR_FUTURE,
    ) -> None:
        self.engine = new_engine()
        self.time = 1
        self.run(
            c.CreateMarket(
                self.time,
                "m",
                kind,
                tick_value,
                floor,
                cap,
                close_time,
                min_size=min_size,
                max_position=max_position,
                maker_fee_bps=maker_fee_bps,
                taker_fee_bps=taker_fee_bps,
            )
        )
        self.run(c.ChangeMarketStatus(self.tick(), "m", MarketStatus.OPEN))

    def tick(self) -> int:
        self.time += 1
        return self.time

    def run(self, command: c.Command) -> list[Event]:
        return self.engine.execute(command)

    def fund(self, account: str, usdc: int) -> None:
        if account not in self.engine.accounts:
            self.run(c.CreateAccount(self.tick(), account))
        self.run(c.Deposit(self.tick(), account, usdc * USDC))

    def order(
        self,
        account: str,
        side: str,
        size: int,
        price: int | None = None,
        **options: Any,
    ) -> list[Event]:
        options.setdefault("order_type", OrderType.LIMIT if price is not None else OrderType.MARKET)
        if options["order_type"] is OrderType.MARKET:
            options.setdefault("time_in_force", TimeInForce.IOC)
        return self.run(c.PlaceOrder(self.tick(), account, "m", Side(side), size, price, **options))

    def buy(self, account: str, size: int, price: int | None = None, **o: Any) -> list[Event]:
        return self.order(account, "buy", size, price, **o)

    def sell(self, account: str, size: int, price: int | None = None, **o: Any) -> list[Event]:
        return self.order(account, "sell", size, price, **o)

    # ---- reading state back

    def available(self, account: str) -> int:
        return self.engine.available(account)

    def reserved(self, account: str) -> int:
        return self.engine.reserved(account)

    def total(self, account: str) -> int:
        return self.engine.total_balance(account)

    def size(self, account: str) -> int:
        position = self.engine.position(account, "m")
        return position.size if position is not None else 0

    def collateral(self, account: str) -> int:
        position = self.engine.position(account, "m")
        return position.collateral if position is not None else 0

    def fees(self) -> int:
        return self.engine.ledger.balance("fees:m")

    def book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        book = self.engine.markets["m"].book
        return book.depth(True, 100), book.depth(False, 100)


def trades(events: list[Event]) -> list[tuple[int, int, int, int]]:
    """(maker order id, taker order id, price, size) of each trade."""
    return [
        (e.maker_order_id, e.taker_order_id, e.price, e.size)
        for e in events
        if isinstance(e, Trade)
    ]


def closed(events: list[Event]) -> dict[int, tuple[str, str | None]]:
    """order id -> (status, reason) of each order that closed."""
    return {e.order_id: (e.status, e.reason) for e in events if isinstance(e, OrderClosed)}


def order_id(events: list[Event]) -> int:
    from ballast_exchange.domain.events import OrderAccepted

    return next(e.order_id for e in events if isinstance(e, OrderAccepted))


__all__ = ["BINARY_TICK", "USDC", "Scenario", "SelfTradePrevention", "closed", "order_id", "trades"]
