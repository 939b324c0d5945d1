"""Typed replies: frozen dataclasses with prices and money as ``Decimal`` and times as
timezone-aware ``datetime`` (UTC).

Every model is built with ``Model.from_dict`` from the server's JSON, which the client decodes
with ``Decimal`` for every JSON decimal, so ``0.87`` arrives as ``Decimal("0.87")`` exactly.
Fields a newer server adds are kept in ``extra`` (a dict) rather than dropped or rejected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, Union

from .errors import BallastError, InvalidResponseError

__all__ = [
    "Balance",
    "BatchResult",
    "BookLevel",
    "CanceledOrders",
    "Candle",
    "DeadManSwitch",
    "DeletedOrderGroup",
    "FaucetGrant",
    "Fill",
    "LedgerEntry",
    "Market",
    "MarketRules",
    "Model",
    "Order",
    "OrderBook",
    "OrderFill",
    "OrderGroup",
    "Position",
    "QueuePosition",
    "RateLimit",
    "ServerTime",
    "Settlement",
    "SettlementProposal",
    "SettlementRecord",
    "Trade",
    "parse_datetime",
]

M = TypeVar("M", bound="Model")


def parse_datetime(value: Any) -> datetime:
    """ISO-8601 text (``2025-03-15T10:31:05.000Z``) or Unix milliseconds, as an aware UTC
    datetime. Naive times are taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    elif isinstance(value, (int, Decimal)):
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        raise ValueError(f"not a time: {value!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, (int, str)):
        return Decimal(value)
    raise ValueError(f"not a number: {value!r}")


def _convert(hint: Any, value: Any) -> Any:
    """Convert one JSON value to the field's annotated type (best effort for the unknown)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        return [_convert(item, v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {value!r}")
        return value
    if hint is Decimal:
        return _decimal(value)
    if hint is datetime:
        return parse_datetime(value)
    if hint is int and isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(hint, type) and issubclass(hint, Model):
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {value!r}")
        return hint.from_dict(value)
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class Model:
    """Base of every reply model. ``extra`` holds fields this SDK does not know yet."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def _field_hints(cls) -> dict[str, Any]:
        hints = Model._hints.get(cls)
        if hints is None:
            resolved = typing.get_type_hints(cls)
            hints = {f.name: resolved[f.name] for f in dataclasses.fields(cls) if f.init}
            hints.pop("extra", None)
            Model._hints[cls] = hints
        return hints

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """Build from the server's JSON object; unknown keys go to ``extra``."""
        hints = cls._field_hints()
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in hints:
                try:
                    values[key] = _convert(hints[key], value)
                except (ValueError, ArithmeticError, TypeError) as error:
                    raise InvalidResponseError(
                        f"{cls.__name__}.{key}: cannot read {value!r} ({error})",
                        details={"model": cls.__name__, "field": key},
                    ) from None
            else:
                extra[key] = value
        try:
            return cls(**values, extra=extra)
        except TypeError as error:
            raise InvalidResponseError(
                f"{cls.__name__}: the server's reply lacks a field ({error})",
                details={"model": cls.__name__, "keys": sorted(data)},
            ) from None


# --------------------------------------------------------------------------- market data


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketRules(Model):
    """A market's trading rules: its price grid, range, sizes and fees."""

    tick_size: Decimal
    floor: Decimal
    cap: Decimal
    min_size: int = 1
    max_order_size: int | None = None
    max_position: int | None = None
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Settlement(Model):
    """A market's proposed or final settlement value and its evidence hash.

    ``dispute_ends_at`` is when the proposal may no longer be overturned (and may be
    finalized); the evidence itself is on :class:`SettlementRecord` (``get_settlement``).
    """

    value: Decimal | None = None
    evidence_hash: str | None = None
    proposed_at: datetime | None = None
    dispute_ends_at: datetime | None = None
    final: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class SettlementProposal(Model):
    """One settlement proposal with its evidence, so anyone can check its hash.

    ``evidence_hash`` is the hex SHA-256 of ``evidence_canonical``, the evidence as RFC 8785
    canonical JSON; ``evidence`` is the same evidence decoded (decimals as ``Decimal``).
    ``outcome`` is ``proposed``, ``overturned`` or ``finalized``.
    """

    value: Decimal
    evidence_hash: str
    evidence: dict[str, Any] | None = None
    evidence_canonical: str | None = None
    proposer: str = ""
    proposed_at: datetime | None = None
    dispute_ends_at: datetime | None = None
    outcome: str = "proposed"
    decided_by: str | None = None
    decided_at: datetime | None = None

    @property
    def hash_matches(self) -> bool:
        """``sha256(evidence_canonical) == evidence_hash`` (``False`` without the evidence)."""
        if self.evidence_canonical is None:
            return False
        digest = hashlib.sha256(self.evidence_canonical.encode("utf-8")).hexdigest()
        return digest == self.evidence_hash.strip().lower()

    def verify(self) -> bool:
        """Whether the published hash holds: ``evidence_canonical`` hashes to
        ``evidence_hash``, and ``evidence`` is what ``evidence_canonical`` says."""
        if not self.hash_matches or self.evidence_canonical is None:
            return False
        try:
            canonical = json.loads(self.evidence_canonical, parse_float=Decimal)
        except ValueError:
            return False
        return self.evidence is None or _same_json(canonical, self.evidence)


def _same_json(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers by value (``1 == 1.0``) but booleans never numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_json(a[key], b[key]) for key in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, (int, Decimal)):
        return isinstance(b, (int, Decimal)) and a == b
    return type(a) is type(b) and a == b


@dataclass(frozen=True, kw_only=True, slots=True)
class SettlementRecord(Model):
    """``GET /markets/{id}/settlement``: the current proposal and every one before it (oldest
    first, overturned ones included)."""

    market_id: str
    status: str = ""
    hash_algorithm: str = ""
    current: SettlementProposal | None = None
    proposals: list[SettlementProposal] = field(default_factory=list)

    def _every_proposal(self) -> list[SettlementProposal]:
        return [*self.proposals, *([] if self.current is None else [self.current])]

    @property
    def hash_matches(self) -> bool:
        """Every proposal's ``evidence_canonical`` hashes to its ``evidence_hash``."""
        return all(p.hash_matches for p in self._every_proposal())

    def verify(self) -> bool:
        """:meth:`SettlementProposal.verify` for the current proposal and every earlier one
        (``True`` when there is none yet)."""
        return all(p.verify() for p in self._every_proposal())


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketGroupRef(Model):
    """A market's series (what it recurs in) or event (what it is resolved with)."""

    id: str
    title: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketGroup(Model):
    """A series or an event, as ``GET /series`` and ``GET /events`` list them."""

    id: str
    title: str | None = None
    market_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, slots=True)
class Market(Model):
    """A market, as ``GET /markets`` and ``GET /markets/{id}`` describe it."""

    id: str
    name: str = ""
    type: str = "binary"
    status: str = "open"
    question: str | None = None
    description: str | None = None
    resolution_source: str | None = None
    settlement_date: datetime | None = None
    close_time: datetime | None = None
    last_price: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    midpoint: Decimal | None = None  # of the best bid and ask; None when a side is empty
    change_24h: Decimal | None = None  # last_price minus the last trade price a day ago
    volume_24h: int = 0
    open_interest: int = 0
    rules: MarketRules | None = None
    settlement: Settlement | None = None
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    series: MarketGroupRef | None = None
    event: MarketGroupRef | None = None

    @property
    def market_id(self) -> str:
        return self.id


@dataclass(frozen=True, kw_only=True, slots=True)
class BookLevel(Model):
    """One aggregated price level."""

    price: Decimal
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderBook(Model):
    """An aggregated book: bids best (highest) first, asks best (lowest) first."""

    market_id: str
    timestamp: datetime
    seq: int | None = None
    bids: list[BookLevel] = field(default_factory=list)
    asks: list[BookLevel] = field(default_factory=list)

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def spread(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid

    @property
    def mid(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2


@dataclass(frozen=True, kw_only=True, slots=True)
class Trade(Model):
    """A public trade."""

    trade_id: str
    market_id: str
    price: Decimal
    size: int
    taker_side: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Candle(Model):
    """An OHLCV candle starting at ``start``."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerTime(Model):
    """The server's clock."""

    server_time: datetime
    iso: str = ""

    @property
    def timestamp_ms(self) -> int:
        """Server time in Unix milliseconds."""
        return _to_ms(self.server_time)


def _to_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


# --------------------------------------------------------------------------- trading


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFill(Model):
    """A trade an order made on arrival (in ``Order.fills`` of a new order)."""

    trade_id: str
    price: Decimal
    size: int
    fee: Decimal = Decimal(0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Order(Model):
    """An order. ``id`` is the same as ``order_id``.

    ``fills`` lists what a new order traded on arrival; it is empty on orders read back later
    (and on a ``client_order_id`` retry, which returns the order as it is now).
    """

    order_id: str
    client_order_id: str | None = None
    order_group_id: str | None = None
    market_id: str = ""
    side: str = ""
    type: str = "limit"
    price: Decimal | None = None
    size: int = 0
    filled_size: int = 0
    remaining_size: int = 0
    status: str = ""
    cancel_reason: str | None = None
    time_in_force: str | None = None
    expire_at: datetime | None = None
    post_only: bool = False
    reduce_only: bool = False
    stp: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    fills: list[OrderFill] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.order_id

    @property
    def order_type(self) -> str:
        return self.type

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, kw_only=True, slots=True)
class CanceledOrders(Model):
    """What a cancel-all canceled."""

    canceled: list[str] = field(default_factory=list)
    count: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadManSwitch(Model):
    """The dead-man switch of this API key: armed until ``deadline`` (UTC) unless another
    heartbeat comes; when it passes, every open order of the account is canceled."""

    armed: bool = False
    timeout_s: int = 0
    deadline: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderGroup(Model):
    """An order group: its orders may fill ``max_filled_size`` contracts within a rolling
    ``window_s``; reaching it cancels them and refuses new ones until a reset (``status``
    ``triggered``). ``id`` is the same as ``order_group_id``."""

    order_group_id: str
    status: str = "active"
    max_filled_size: int = 0
    window_s: int = 0
    filled_in_window: int = 0
    open_orders: int = 0
    created_at: datetime | None = None
    triggered_at: datetime | None = None
    reset_at: datetime | None = None
    event: str | None = None  # "triggered" on the stream's order_groups channel

    @property
    def id(self) -> str:
        return self.order_group_id

    @property
    def triggered(self) -> bool:
        return self.status == "triggered"


@dataclass(frozen=True, kw_only=True, slots=True)
class DeletedOrderGroup(Model):
    """A deleted order group and the orders its deletion canceled."""

    order_group_id: str
    deleted: bool = True
    canceled: list[str] = field(default_factory=list)
    count: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class QueuePosition(Model):
    """Where an open order waits at its price: what rests before it, by time priority."""

    order_id: str
    price: Decimal
    contracts_ahead: int = 0
    orders_ahead: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchResult:
    """One order of a batch: ``order`` when it was placed (status 201, or 200 for a
    ``client_order_id`` retry), else ``error``, the exception the order alone would raise."""

    status: int
    order: Order | None = None
    error: BallastError | None = None

    @property
    def ok(self) -> bool:
        return self.order is not None and self.error is None


# --------------------------------------------------------------------------- account


@dataclass(frozen=True, kw_only=True, slots=True)
class Balance(Model):
    """``total_balance = available + reserved``, in ``currency`` (USDC)."""

    total_balance: Decimal
    available: Decimal
    reserved: Decimal
    currency: str = "USDC"


@dataclass(frozen=True, kw_only=True, slots=True)
class FaucetGrant(Model):
    """What the sandbox faucet deposited: ``amount``, today's total for the account
    (``granted_today``, at most ``daily_cap``) and the new ``balance``."""

    amount: Decimal
    granted_today: Decimal
    daily_cap: Decimal
    balance: Balance


@dataclass(frozen=True, kw_only=True, slots=True)
class Position(Model):
    """A net position: ``size`` is signed (negative is short). A ``settled`` one is shown as it
    stood when its market settled, marked at the final value, with its ``payout``."""

    market_id: str
    size: int
    status: str = "open"
    average_price: Decimal | None = None
    current_price: Decimal | None = None
    unrealized_pnl: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    margin_used: Decimal = Decimal(0)
    payout: Decimal | None = None
    settled_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SettledPosition(Model):
    """A position a settlement paid out: ``size`` held (signed), ``cost_basis`` its locked
    collateral, ``payout`` what the settlement paid, ``settlement_pnl = payout - cost_basis``,
    ``realized_pnl`` the position's realized PnL in the market (fees aside)."""

    market_id: str
    final_value: Decimal
    size: int
    cost_basis: Decimal = Decimal(0)
    payout: Decimal = Decimal(0)
    settlement_pnl: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    settled_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class FeePeriod(Model):
    """Fees paid and rebates earned in one UTC day or month (``net_fees`` = fees - rebates)."""

    period_start: datetime
    period_end: datetime
    fees_paid: Decimal = Decimal(0)
    rebates_earned: Decimal = Decimal(0)
    net_fees: Decimal = Decimal(0)
    fee_count: int = 0
    rebate_count: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Fill(Model):
    """One of the account's fills."""

    trade_id: str
    order_id: str
    market_id: str
    side: str
    price: Decimal
    size: int
    liquidity: str = ""
    fee: Decimal = Decimal(0)
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LedgerEntry(Model):
    """One movement of the account's money (double entry: ``debit`` and ``credit`` accounts)."""

    entry_id: int
    kind: str
    amount: Decimal
    debit: str = ""
    credit: str = ""
    market_id: str | None = None
    ref: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The ``X-RateLimit-*`` headers of the last response."""

    limit: int
    remaining: int
    reset: datetime  # when the current window ends
