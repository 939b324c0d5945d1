"""The exchange's domain: pure, deterministic, no I/O, no clock, no randomness (DESIGN §1).

Feed ``Engine.execute`` commands from ``commands``; it returns events from ``events`` or raises
``DomainError``. ``snapshot``/``restore``/``digest`` capture and compare whole states.
"""

from . import commands, events
from .engine import Engine
from .errors import DomainError, ErrorCode
from .snapshot import digest, restore, snapshot
from .types import (
    CancelReason,
    MarketKind,
    MarketStatus,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

__all__ = [
    "CancelReason",
    "DomainError",
    "Engine",
    "ErrorCode",
    "MarketKind",
    "MarketStatus",
    "OrderStatus",
    "OrderType",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "commands",
    "digest",
    "events",
    "restore",
    "snapshot",
]
