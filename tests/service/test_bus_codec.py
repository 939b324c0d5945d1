"""What crosses the bus between gateways and the sequencer comes back as it left, and nothing
else can be built from a message (service/bus_codec.py)."""

from __future__ import annotations

import json

import pytest

from ballast_exchange.domain import (
    CancelReason,
    DomainError,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.service.bus_codec import (
    BusMessageInvalid,
    decode,
    encode,
    error_from_wire,
    error_to_wire,
    from_wire,
    to_wire,
)
from ballast_exchange.service.order_groups import DeletedGroup
from ballast_exchange.service.trading import OrderOutcome
from ballast_exchange.store.order_records import FillRecord, OrderRecord


def through_the_bus(value: object) -> object:
    return from_wire(decode(encode({"value": to_wire(value)}))["value"])


def test_a_placement_and_its_outcome_round_trip() -> None:
    order = c.PlaceOrder(
        0,
        "acc_1",
        "suez",
        Side.BUY,
        5,
        420,
        OrderType.LIMIT,
        TimeInForce.GTD,
        1_900_000_000_000,
        True,
        False,
        "my-1",
        SelfTradePrevention.CANCEL_BOTH,
        "grp_1",
    )
    assert through_the_bus(order) == order
    record = OrderRecord(
        7,
        "acc_1",
        "suez",
        "buy",
        "limit",
        420,
        5,
        2,
        3,
        "open",
        None,
        "GTC",
        None,
        False,
        False,
        None,
        "cancel_newest",
        1,
        2,
        None,
    )
    fill = FillRecord(9, 7, "suez", "buy", 420, 2, "taker", 1_200, 2)
    outcome = OrderOutcome(record, (fill,))
    back = through_the_bus(outcome)
    assert back == outcome and isinstance(back, OrderOutcome)
    assert through_the_bus(DeletedGroup("grp_1", (1, 2))) == DeletedGroup("grp_1", (1, 2))
    assert through_the_bus([CancelReason.DISCONNECT, None, 3]) == (CancelReason.DISCONNECT, None, 3)
    assert type(through_the_bus(Side.SELL)) is Side  # an enum, not the str it also is


def test_a_refusal_keeps_its_code_message_and_details() -> None:
    error = DomainError("ORDER_NOT_CANCELABLE", "the order is filled", {"order_id": 7})
    back = error_from_wire(json.loads(json.dumps(error_to_wire(error))))
    assert (back.code, back.message, back.details) == (error.code, error.message, error.details)


@pytest.mark.parametrize(
    "data",
    [
        {"record": "Popen", "fields": ["rm -rf /"]},  # only the records the bus names
        {"enum": "Signals", "value": 9},
        {"record": "DeletedGroup", "fields": ["grp_1"]},  # the wrong number of fields
        {"neither": 1},
    ],
)
def test_nothing_else_is_built_from_a_message(data: object) -> None:
    with pytest.raises(BusMessageInvalid):
        from_wire(data)


def test_what_does_not_travel_is_refused_on_the_way_out() -> None:
    with pytest.raises(TypeError):
        to_wire(object())
    with pytest.raises(BusMessageInvalid):
        decode(b"[1, 2]")
    with pytest.raises(BusMessageInvalid):
        decode(b"{not json")
