"""The whole engine state as plain JSON-ready data, and back; its SHA-256 is the state digest.

Derived structures (reservation sums, client id maps, the expiry heap) are rebuilt on restore,
so the snapshot holds only what cannot be recomputed. Book levels keep their time order.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .engine import Engine
from .ledger import collateral_key
from .market import Market, Settlement
from .order import Order
from .position import Position
from .state import Account
from .types import (
    MarketKind,
    MarketStatus,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

_ORDER_FIELDS = (
    "order_id",
    "account_id",
    "side",
    "order_type",
    "price",
    "size",
    "remaining",
    "filled",
    "time_in_force",
    "expire_at",
    "post_only",
    "reduce_only",
    "client_order_id",
    "stp",
    "created_at",
    "order_group_id",
)

_MARKET_FIELDS = (
    "market_id",
    "kind",
    "tick_value",
    "floor",
    "cap",
    "close_time",
    "min_size",
    "max_order_size",
    "max_position",
    "maker_fee_bps",
    "taker_fee_bps",
    "status",
    "open_interest",
    "last_price",
)


@contextmanager
def paused_collection() -> Iterator[None]:
    """No cycle collection while a whole state is built: with a million orders every pass walks
    everything built so far, again and again (most of the time of a copy), and nothing built
    here is garbage until the caller drops it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def snapshot(engine: Engine) -> dict[str, Any]:
    with paused_collection():
        return _snapshot(engine)


def _snapshot(engine: Engine) -> dict[str, Any]:
    markets = []
    for market in engine.markets.values():
        data: dict[str, Any] = {f: _plain(getattr(market, f)) for f in _MARKET_FIELDS}
        s = market.settlement
        data["settlement"] = (
            None
            if s is None
            else {
                "value": s.value,
                "evidence_hash": s.evidence_hash,
                "proposer": s.proposer,
                "proposed_at": s.proposed_at,
                "final_after": s.final_after,
            }
        )
        data["orders"] = [
            {f: _plain(getattr(o, f)) for f in _ORDER_FIELDS} for o in market.book.orders()
        ]
        data["positions"] = [
            {
                "account_id": p.account_id,
                "size": p.size,
                "collateral": p.collateral,
                "realized_pnl": p.realized_pnl,
                "held_buy": p.held_buy,
                "held_sell": p.held_sell,
            }
            for p in market.positions.values()
        ]
        markets.append(data)
    return {
        "seq": engine.seq,
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
        "accounts": list(engine.accounts),
        "ledger": dict(sorted(engine.ledger.balances.items())),
        "markets": markets,
    }


def restore(data: dict[str, Any]) -> Engine:
    with paused_collection():
        return _restore(data)


def _restore(data: dict[str, Any]) -> Engine:
    engine = Engine()
    engine.seq = data["seq"]
    engine.next_order_id = data["next_order_id"]
    engine.next_trade_id = data["next_trade_id"]
    for account_id in data["accounts"]:
        engine.accounts[account_id] = Account(account_id)
    engine.ledger.balances.update(data["ledger"])
    for m in data["markets"]:
        market = Market(
            m["market_id"],
            MarketKind(m["kind"]),
            m["tick_value"],
            m["floor"],
            m["cap"],
            m["close_time"],
            m["min_size"],
            m["max_order_size"],
            m["max_position"],
            m["maker_fee_bps"],
            m["taker_fee_bps"],
        )
        market.status = MarketStatus(m["status"])
        market.open_interest = m["open_interest"]
        market.last_price = m["last_price"]
        s = m["settlement"]
        if s is not None:
            market.settlement = Settlement(
                s["value"], s["evidence_hash"], s["proposer"], s["proposed_at"], s["final_after"]
            )
        engine.markets[market.market_id] = market
        for p in m["positions"]:
            account = engine.accounts[p["account_id"]]
            if account.account_id in market.positions:
                raise ValueError(f"two positions of {account.account_id} in {market.market_id}")
            position = Position(
                account.account_id,
                market.market_id,
                collateral_key(account.account_id, market.market_id),
            )
            position.size = p["size"]
            position.collateral = p["collateral"]
            position.realized_pnl = p["realized_pnl"]
            position.held_buy = p["held_buy"]
            position.held_sell = p["held_sell"]
            account.positions[market.market_id] = position
            market.positions[account.account_id] = position
        for o in m["orders"]:
            order = Order(
                o["order_id"],
                o["account_id"],
                market.market_id,
                Side(o["side"]),
                OrderType(o["order_type"]),
                o["price"],
                o["size"],
                TimeInForce(o["time_in_force"]),
                o["expire_at"],
                o["post_only"],
                o["reduce_only"],
                o["client_order_id"],
                SelfTradePrevention(o["stp"]),
                o["created_at"],
                o["order_group_id"],
            )
            order.remaining = o["remaining"]
            order.filled = o["filled"]
            order.status = OrderStatus.OPEN
            order.unit_lock = market.lock_per_contract(order.is_buy, order.price)
            order.unit_fee = market.fee_reserve_per_contract(order.price)
            account = engine.accounts[order.account_id]
            market.book.add(order)
            account.positions[market.market_id].add_order(order)
            engine.orders[order.order_id] = order
            if order.client_order_id is not None:
                account.client_order_ids[order.client_order_id] = order.order_id
            if order.expire_at is not None:
                engine._gtd.append((order.expire_at, order.order_id))
        market.book.touched.clear()
    heapq.heapify(engine._gtd)
    return engine


def digest(engine: Engine) -> str:
    """SHA-256 over the canonical JSON of the snapshot: equal digests, equal states."""
    canonical = json.dumps(snapshot(engine), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") and not isinstance(value, int) else value
