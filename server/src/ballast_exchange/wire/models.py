"""Request bodies, validated by pydantic; the OpenAPI document is generated from them.

Prices and amounts arrive as JSON numbers or decimal strings and are kept as given (``str`` or
number) until ``money`` converts them against the market's grid, so nothing is rounded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
)
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from ..domain.state import MAX_FEE_BPS, MAX_SIZE


def _number(value: Any) -> Any:
    # true/false are not numbers here, and a union would report the field as "price.int".
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number or a decimal string")
    return value


def _whole(value: Any) -> Any:
    # JSON Schema calls 85529.0 an integer, so the API does too; 1.5 and "3" stay refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# What the document promises is what validation accepts (a schema-driven client or fuzzer
# that follows it is never refused as malformed): decimal strings without exponents, and
# numbers within any market's reach. Validation itself is more lenient (it also takes
# "8.7e-1"), never stricter.
DECIMAL = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
# Money has six decimals; a positive amount (below a billion, the most one deposit moves) has a
# non-zero digit among them or before.
POSITIVE_MONEY = (
    r"^(0*[1-9][0-9]{0,8}(\.[0-9]{1,6})?"
    r"|0*\.([1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}"
    r"|0000[1-9][0-9]?|00000[1-9]))$"
)
MONEY = r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"

Number = Annotated[
    int | float | str,
    PlainValidator(_number),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": -1e15, "maximum": 1e15},
                {"type": "string", "pattern": DECIMAL},
            ]
        }
    ),
]
Money = Annotated[
    int | float | str,
    PlainValidator(_number),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": -1e12, "maximum": 1e12, "multipleOf": 0.000001},
                {"type": "string", "pattern": MONEY},
            ]
        }
    ),
]
PositiveMoney = Annotated[
    int | float | str,
    PlainValidator(_number),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": 1e9,
                    "multipleOf": 0.000001,
                },
                {"type": "string", "pattern": POSITIVE_MONEY},
            ]
        }
    ),
]
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole)]
# The bound first: after the validator pydantic would write it as "gt", which is no JSON Schema.
Contracts = Annotated[StrictInt, Field(gt=0), BeforeValidator(_whole)]
TIER = r"^(standard|market_maker|[1-9][0-9]{0,8})$"  # a named tier, or requests a minute

NOT_NULL = {"not": {"type": "null"}}
# The rules between a placement's fields, in the document as validation applies them.
PLACE_ORDER_RULES: dict[str, Any] = {
    "allOf": [
        {  # a market order is immediate-or-cancel and cannot be post-only; a limit needs a price
            "if": {"properties": {"type": {"const": "market"}}, "required": ["type"]},
            "then": {
                "properties": {
                    "time_in_force": {"enum": ["IOC", None]},
                    "post_only": {"const": False},
                }
            },
            "else": {"required": ["price"], "properties": {"price": NOT_NULL}},
        },
        {  # GTD orders, and only they, expire
            "if": {
                "properties": {"time_in_force": {"const": "GTD"}},
                "required": ["time_in_force"],
            },
            "then": {"required": ["expire_at"], "properties": {"expire_at": NOT_NULL}},
            "else": {"properties": {"expire_at": {"type": "null"}}},
        },
        {  # a post-only order must be able to rest
            "if": {
                "properties": {"time_in_force": {"enum": ["IOC", "FOK"]}},
                "required": ["time_in_force"],
            },
            "then": {"properties": {"post_only": {"const": False}}},
        },
    ]
}

# An amend changes the price, the size or both.
AMEND_ORDER_RULES: dict[str, Any] = {
    "anyOf": [
        {"required": ["price"], "properties": {"price": NOT_NULL}},
        {"required": ["size"], "properties": {"size": NOT_NULL}},
    ]
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceOrderRequest(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=PLACE_ORDER_RULES)

    market_id: str = Field(min_length=1, max_length=64, examples=["suez-apr2025"])
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"] = "limit"
    price: Number | None = Field(
        default=None,
        description="Limit price (limit orders) or protection price (market orders), on the "
        "market's tick grid, as a number or a decimal string.",
        examples=[0.87],
    )
    size: Contracts = Field(description="Contracts.", examples=[1000])
    time_in_force: Literal["GTC", "IOC", "FOK", "GTD"] | None = Field(
        default=None, description="Default GTC for limit orders, IOC for market orders."
    )
    expire_at: datetime | StrictInt | None = Field(
        default=None, description="GTD only: ISO-8601 time or Unix milliseconds."
    )
    post_only: StrictBool = False
    reduce_only: StrictBool = False
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Your id for the order. A retry with the same id returns the first result.",
    )
    stp: Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"] = "cancel_newest"
    order_group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Place the order in this order group of yours (POST /v1/order_groups): "
        "its fills count toward the group's contract limit.",
        examples=["grp_3f9a1c2b7d4e5f60"],
    )


class BatchOrdersRequest(Strict):
    orders: list[PlaceOrderRequest] = Field(min_length=1, max_length=20)


class AmendOrderRequest(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=AMEND_ORDER_RULES)

    price: Number | None = None
    size: Contracts | None = Field(default=None, description="New total size.")


class BatchAmendItem(AmendOrderRequest):
    order_id: str = Field(min_length=1, max_length=64, examples=["ord_123"])


class BatchAmendRequest(Strict):
    orders: list[BatchAmendItem] = Field(min_length=1, max_length=20)


class BatchCancelRequest(Strict):
    order_ids: list[str] = Field(min_length=1, max_length=20, examples=[["ord_123", "ord_124"]])


class CreateAccountRequest(Strict):
    name: str = Field(min_length=1, max_length=100)
    deposit: PositiveMoney | None = None


class AmountRequest(Strict):
    amount: PositiveMoney


class SettlementProposal(Strict):
    value: Money
    evidence: dict[str, Any]


class FaucetRequest(Strict):
    amount: PositiveMoney | None = None


class CreateKeyRequest(Strict):
    account_id: str
    scopes: list[Literal["read", "trade"]] = Field(default=["read", "trade"], min_length=1)
    label: str | None = Field(default=None, max_length=100)
    tier: str | None = Field(default=None, pattern=TIER)


class TierRequest(Strict):
    tier: str | None = Field(pattern=TIER)


SLUG = r"^[a-z0-9][a-z0-9._-]*$"
# Tags are lower case (one spelling per tag, so a filter finds them all); spaces are allowed.
Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9 ._-]*$")]
Category = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


class MarketGroupRef(Strict):
    """A series (the market recurs in it: "Suez weekly availability") or an event (markets
    resolved together), by a stable id and a title."""

    id: str = Field(min_length=1, max_length=64, pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)


class MarketDiscovery(Strict):
    category: Category | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    series: MarketGroupRef | None = None
    event: MarketGroupRef | None = None


class UpdateMarketRequest(MarketDiscovery):
    """The descriptive fields to change; a field left out keeps its value, null clears it."""

    # Left out keeps the name; null is refused (a market keeps one), so the document says string.
    name: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    question: str | None = None
    description: str | None = None
    resolution_source: str | None = None
    settlement_date: datetime | StrictInt | None = None


class CreateMarketRequest(MarketDiscovery):
    id: str = Field(min_length=1, max_length=64, pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    type: Literal["binary", "index"]
    close_time: datetime | StrictInt
    settlement_date: datetime | StrictInt | None = None
    tick_size: Number | None = None
    floor: Number | None = None
    cap: Number | None = None
    min_size: WholeNumber = Field(default=1, gt=0, le=MAX_SIZE)
    max_order_size: WholeNumber = Field(default=1_000_000, gt=0, le=MAX_SIZE)
    max_position: WholeNumber = Field(default=10_000_000, gt=0, le=MAX_SIZE)
    maker_fee_bps: WholeNumber = Field(default=0, ge=-MAX_FEE_BPS, le=MAX_FEE_BPS)
    taker_fee_bps: WholeNumber = Field(default=0, ge=0, le=MAX_FEE_BPS)
    question: str | None = None
    description: str | None = None
    resolution_source: str | None = None
