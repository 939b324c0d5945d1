"""The exchange engine: a deterministic state machine over markets, books, positions and money.

``Engine.execute(command)`` validates the command completely before it changes anything, so a
rejected command (a ``DomainError``) leaves the state exactly as it was and uses no sequence
number. An accepted command returns its events, numbered by one global sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import commands as cmd
from .errors import DomainError, ErrorCode, invalid
from .events import (
    AccountCreated,
    Event,
    MarketCreated,
)
from .ledger import (
    EXTERNAL,
)
from .market import Market
from .order_entry import OrderEntry
from .settling import Settling
from .state import (
    MAX_AMOUNT,
    MAX_CONTRACT_VALUE,
    MAX_FEE_BPS,
    MAX_SIZE,
    MAX_TIME_MS,
    MICRO,
    MIN_TICK_VALUE,
    Account,
    is_int,
    parse_enum,
)
from .types import (
    CancelReason,
    MarketKind,
    MarketStatus,
)


class Engine(OrderEntry, Settling):
    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[type, Callable[[Any], None]] = {
            cmd.CreateAccount: self._create_account,
            cmd.Deposit: self._deposit,
            cmd.Withdraw: self._withdraw,
            cmd.CreateMarket: self._create_market,
            cmd.ChangeMarketStatus: self._change_market_status,
            cmd.PlaceOrder: self._place_order,
            cmd.CancelOrder: self._cancel_order,
            cmd.CancelAll: self._cancel_all,
            cmd.AmendOrder: self._amend_order,
            cmd.ExpireOrders: self._expire_orders,
            cmd.ProposeSettlement: self._propose_settlement,
            cmd.OverturnSettlement: self._overturn_settlement,
            cmd.FinalizeSettlement: self._finalize_settlement,
        }

    def execute(self, command: cmd.Command) -> list[Event]:
        """Apply one command; return its events, or raise ``DomainError`` having changed nothing."""
        handler = self._handlers.get(type(command))
        if handler is None:
            raise invalid("command", f"unknown command {type(command).__name__}")
        if not is_int(command.time) or not 0 <= command.time <= MAX_TIME_MS:
            raise invalid("time", "must be milliseconds between 1970 and 9999")
        out: list[Event] = []
        self._out = out
        handler(command)
        return out

    def execute_many(self, commands: Iterable[cmd.Command]) -> list[list[Event] | DomainError]:
        """Apply commands in order; one entry per command: its events, or the ``DomainError``
        that rejected it (which changed nothing). The sequencer's batch entry point."""
        results: list[list[Event] | DomainError] = []
        for command in commands:
            try:
                results.append(self.execute(command))
            except DomainError as error:
                results.append(error)
        return results

    def execute_batch(self, commands: Iterable[cmd.Command]) -> EventBatch:
        """``execute_many``, answered as an ``EventBatch``: the compiled twin keeps the events
        as compact records until ``results()`` is asked for (docs/adr/0008); here they are
        simply the lists ``execute_many`` returns."""
        return EventBatch(self.execute_many(commands))

    def _create_account(self, c: cmd.CreateAccount) -> None:
        if not isinstance(c.account_id, str) or not c.account_id:
            raise invalid("account_id", "must be a non-empty string")
        if c.account_id in self.accounts:
            raise DomainError(
                ErrorCode.ACCOUNT_EXISTS,
                f"account {c.account_id!r} already exists",
                {"account_id": c.account_id},
            )
        self.accounts[c.account_id] = Account(c.account_id)
        self.seq += 1
        self._out.append(AccountCreated(self.seq, c.time, c.account_id))

    def _deposit(self, c: cmd.Deposit) -> None:
        account = self.account(c.account_id)
        self._check_amount(c.amount)
        self._move(EXTERNAL, account.cash_key, c.amount, "deposit", c.ref, c.time)

    def _withdraw(self, c: cmd.Withdraw) -> None:
        account = self.account(c.account_id)
        self._check_amount(c.amount)
        available = self.ledger.balance(account.cash_key)
        if c.amount > available:
            raise DomainError(
                ErrorCode.INSUFFICIENT_BALANCE,
                "insufficient available balance for this withdrawal",
                {"required": c.amount, "available": available},
            )
        self._move(account.cash_key, EXTERNAL, c.amount, "withdrawal", c.ref, c.time)

    @staticmethod
    def _check_amount(amount: object) -> None:
        if not is_int(amount) or not 0 < amount <= MAX_AMOUNT:  # type: ignore[operator]
            raise invalid("amount", f"must be a positive integer of micro-USDC up to {MAX_AMOUNT}")

    def _create_market(self, c: cmd.CreateMarket) -> None:
        if not isinstance(c.market_id, str) or not c.market_id:
            raise invalid("market_id", "must be a non-empty string")
        if c.market_id in self.markets:
            raise DomainError(
                ErrorCode.MARKET_EXISTS,
                f"market {c.market_id!r} already exists",
                {"market_id": c.market_id},
            )
        kind = parse_enum(MarketKind, c.kind, "kind")
        for field in (
            "tick_value",
            "floor",
            "cap",
            "close_time",
            "min_size",
            "max_order_size",
            "max_position",
            "maker_fee_bps",
            "taker_fee_bps",
        ):
            if not is_int(getattr(c, field)):
                raise invalid(field, "must be an integer")
        if c.tick_value < MIN_TICK_VALUE:
            raise invalid("tick_value", f"must be at least {MIN_TICK_VALUE} micro-USDC")
        if c.floor < 0 or c.cap <= c.floor:
            raise invalid("cap", "floor must be >= 0 and cap above floor")
        if c.cap * c.tick_value > MAX_CONTRACT_VALUE:
            raise invalid("cap", f"a contract may pay at most {MAX_CONTRACT_VALUE} micro-USDC")
        if not 0 <= c.close_time <= MAX_TIME_MS:
            raise invalid("close_time", "must be milliseconds between 1970 and 9999")
        if kind is MarketKind.BINARY and (c.floor != 0 or c.cap * c.tick_value != MICRO):
            raise invalid("cap", "a binary market runs from 0 to 1")
        if c.min_size < 1:
            raise invalid("min_size", "must be at least 1")
        if not c.min_size <= c.max_order_size <= MAX_SIZE:
            raise invalid("max_order_size", f"must be between min_size and {MAX_SIZE}")
        if not 1 <= c.max_position <= MAX_SIZE:
            raise invalid("max_position", f"must be between 1 and {MAX_SIZE}")
        if not 0 <= c.taker_fee_bps <= MAX_FEE_BPS:
            raise invalid("taker_fee_bps", f"must be between 0 and {MAX_FEE_BPS}")
        # Rebates are paid out of the taker fee of the same fill, so they can never exceed it.
        if not -c.taker_fee_bps <= c.maker_fee_bps <= MAX_FEE_BPS:
            raise invalid("maker_fee_bps", "a rebate may not exceed the taker fee")
        market = Market(
            c.market_id,
            kind,
            c.tick_value,
            c.floor,
            c.cap,
            c.close_time,
            c.min_size,
            c.max_order_size,
            c.max_position,
            c.maker_fee_bps,
            c.taker_fee_bps,
        )
        self.markets[c.market_id] = market
        self.seq += 1
        self._out.append(
            MarketCreated(
                self.seq,
                c.time,
                c.market_id,
                kind.value,
                c.floor,
                c.cap,
                c.tick_value,
                c.close_time,
            )
        )

    def _change_market_status(self, c: cmd.ChangeMarketStatus) -> None:
        market = self.market(c.market_id)
        status = parse_enum(MarketStatus, c.status, "status")
        if status not in (MarketStatus.OPEN, MarketStatus.HALTED, MarketStatus.CLOSED):
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "resolving and settled are reached through settlement commands",
                {"market_id": market.market_id, "status": str(market.status), "to": str(status)},
            )
        market.check_transition(status)
        self._set_status(market, status, c.time)
        if status is MarketStatus.CLOSED:
            for order in list(market.book.orders()):
                self._cancel(order, CancelReason.MARKET_CLOSED, c.time)
            self._flush_book(market, c.time)


class EventBatch:
    """``execute_batch``'s answer: per command, its events or the ``DomainError`` that
    rejected it, as ``execute_many`` returns them."""

    __slots__ = ("_results",)

    def __init__(self, results: list[list[Event] | DomainError]) -> None:
        self._results = results

    def __len__(self) -> int:
        return len(self._results)

    @property
    def event_count(self) -> int:
        """How many events the batch's accepted commands emitted."""
        return sum(len(r) for r in self._results if not isinstance(r, DomainError))

    def results(self) -> list[list[Event] | DomainError]:
        """One entry per command: its list of events, or its ``DomainError``."""
        return self._results
