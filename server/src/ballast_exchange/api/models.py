"""Request bodies, validated by pydantic; the OpenAPI document is generated from them.

Prices and amounts arrive as JSON numbers or decimal strings and are kept as given (``str`` or
number) until ``money`` converts them against the market's grid, so nothing is rounded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, StrictInt
from pydantic.json_schema import WithJsonSchema


def _number(value: Any) -> Any:
    # true/false are not numbers here, and a union would report the field as "price.int".
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number or a decimal string")
    return value


Number = Annotated[
    int | float | str,
    PlainValidator(_number),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}]}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceOrderRequest(Strict):
    market_id: str = Field(min_length=1, max_length=64, examples=["suez-apr2025"])
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"] = "limit"
    price: Number | None = Field(
        default=None,
        description="Limit price (limit orders) or protection price (market orders), on the "
        "market's tick grid, as a number or a decimal string.",
        examples=[0.87],
    )
    size: StrictInt = Field(gt=0, description="Contracts.", examples=[1000])
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


class BatchOrdersRequest(Strict):
    orders: list[PlaceOrderRequest] = Field(min_length=1, max_length=20)


class AmendOrderRequest(Strict):
    price: Number | None = None
    size: StrictInt | None = Field(default=None, gt=0, description="New total size.")


class CreateAccountRequest(Strict):
    name: str = Field(min_length=1, max_length=100)
    deposit: Number | None = None


class AmountRequest(Strict):
    amount: Number


class SettlementProposal(Strict):
    value: Number
    evidence: dict[str, Any]


class FaucetRequest(Strict):
    amount: Number | None = None


class CreateKeyRequest(Strict):
    account_id: str
    scopes: list[Literal["read", "trade"]] = ["read", "trade"]  # pydantic copies defaults
    label: str | None = Field(default=None, max_length=100)
    tier: str | None = None


class TierRequest(Strict):
    tier: str | None


class CreateMarketRequest(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)
    type: Literal["binary", "index"]
    close_time: datetime | StrictInt
    settlement_date: datetime | StrictInt | None = None
    tick_size: Number | None = None
    floor: Number | None = None
    cap: Number | None = None
    min_size: StrictInt = Field(default=1, gt=0)
    max_order_size: StrictInt = Field(default=1_000_000, gt=0)
    max_position: StrictInt = Field(default=10_000_000, gt=0)
    maker_fee_bps: StrictInt = 0
    taker_fee_bps: StrictInt = 0
    question: str | None = None
    description: str | None = None
    resolution_source: str | None = None
