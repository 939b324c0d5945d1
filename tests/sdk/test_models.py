"""Models: Decimal prices, aware times, unknown fields kept; every documented field modelled."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

import ballast
from ballast import InvalidResponseError, Market, Model, Order
from ballast.models import parse_datetime
from tests.live_server import LiveServer

ORDER = {
    "order_id": "ord_123",
    "client_order_id": "mine-1",
    "market_id": "suez-apr2025",
    "side": "buy",
    "type": "limit",
    "price": 0.87,
    "size": 1000,
    "filled_size": 0,
    "remaining_size": 1000,
    "status": "open",
    "cancel_reason": None,
    "time_in_force": "GTC",
    "expire_at": None,
    "post_only": False,
    "reduce_only": False,
    "stp": "cancel_newest",
    "created_at": "2025-03-15T10:31:05.000Z",
    "updated_at": "2025-03-15T10:31:05.000Z",
}


def test_unknown_fields_are_kept_not_fatal() -> None:
    order = Order.from_dict({**ORDER, "venue_latency_us": 42, "tags": ["desk-1"]})
    assert order.extra == {"venue_latency_us": 42, "tags": ["desk-1"]}
    assert order.id == order.order_id == "ord_123"
    assert order.order_type == "limit"
    assert order.price == Decimal("0.87")  # a float goes through str(): no binary noise
    assert isinstance(order.price, Decimal)
    assert order.created_at == datetime(2025, 3, 15, 10, 31, 5, tzinfo=UTC)
    assert order.created_at is not None and order.created_at.tzinfo is not None
    # Nested models keep theirs too.
    market = Market.from_dict(
        {
            "id": "suez-apr2025",
            "rules": {"tick_size": "0.001", "floor": 0, "cap": 1, "lot": 5},
            "hedge_ratio": "0.5",
        }
    )
    assert market.extra == {"hedge_ratio": "0.5"}
    assert market.rules is not None
    assert market.rules.extra == {"lot": 5}
    assert market.rules.tick_size == Decimal("0.001")
    assert market.rules.cap == Decimal(1)


def test_unreadable_replies_raise_invalid_response() -> None:
    with pytest.raises(InvalidResponseError):
        Order.from_dict({**ORDER, "price": "cheap"})
    with pytest.raises(InvalidResponseError):
        Order.from_dict({"status": "open"})  # no order_id


def test_times_parse_to_aware_utc() -> None:
    expected = datetime(2025, 3, 15, 10, 31, 5, tzinfo=UTC)
    assert parse_datetime("2025-03-15T10:31:05.000Z") == expected
    assert parse_datetime("2025-03-15T12:31:05+02:00") == expected
    assert parse_datetime(1742034665000) == expected
    assert parse_datetime("2025-03-15T10:31:05").tzinfo is not None


# The OpenAPI schemas of replies and the models that read them.
SCHEMA_MODELS: dict[str, type[Model]] = {
    "Order": ballast.Order,
    "PlacedOrder": ballast.Order,
    "Fill": ballast.OrderFill,
    "Market": ballast.Market,
    "Rules": ballast.MarketRules,
    "SettlementView": ballast.Settlement,
    "Proposal": ballast.SettlementProposal,
    "SettlementRecord": ballast.SettlementRecord,
    "FaucetGrant": ballast.FaucetGrant,
    "OrderBook": ballast.OrderBook,
    "Level": ballast.BookLevel,
    "PublicTrade": ballast.Trade,
    "Candle": ballast.Candle,
    "ServerTime": ballast.ServerTime,
    "Balance": ballast.Balance,
    "Position": ballast.Position,
    "AccountFill": ballast.Fill,
    "LedgerEntry": ballast.LedgerEntry,
    "Canceled": ballast.CanceledOrders,
}


def test_models_cover_every_field_of_the_openapi_document(server: LiveServer) -> None:
    document: dict[str, Any] = httpx.get(f"{server.api}/openapi.json").json()
    schemas = document["components"]["schemas"]
    missing = set(SCHEMA_MODELS) - set(schemas)
    assert not missing, f"schemas renamed or gone: {missing}"
    for name, model in SCHEMA_MODELS.items():
        fields = set(model._field_hints())
        unmodelled = set(schemas[name].get("properties", {})) - fields
        assert not unmodelled, f"{name}: {unmodelled} not on {model.__name__}"
