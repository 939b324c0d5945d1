"""The exchange's domain: pure, deterministic, no I/O, no clock, no randomness (DESIGN §1).

Feed ``Engine.execute`` commands from ``commands``; it returns events from ``events`` or raises
``DomainError``. ``snapshot``/``restore``/``digest`` capture and compare whole states.

Two twins implement the engine: ``Engine`` here is the pure-Python reference (the rules, to
read); ``compiled.Engine`` is the same rules as typed Cython (the speed). ``select_engine()``
says which one to run (``BALLAST_ENGINE=reference`` forces the reference).
"""

from . import commands, events
from .engine import Engine
from .errors import DomainError, ErrorCode
from .selection import (
    ENGINE_ENV,
    EngineChoice,
    compiled_status,
    engine_name,
    make_engine,
    restore_engine,
    select_engine,
)
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
    "ENGINE_ENV",
    "CancelReason",
    "DomainError",
    "Engine",
    "EngineChoice",
    "ErrorCode",
    "MarketKind",
    "MarketStatus",
    "OrderStatus",
    "OrderType",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "commands",
    "compiled_status",
    "digest",
    "engine_name",
    "events",
    "make_engine",
    "restore",
    "restore_engine",
    "select_engine",
    "snapshot",
]
