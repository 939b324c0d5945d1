"""Each error the server can give the SDK arrives as its own exception class, with the
server's code, status, message and details."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from ballast import (
    AuthenticationError,
    BallastClient,
    BallastError,
    ConflictError,
    ForbiddenError,
    InsufficientBalanceError,
    InternalServerError,
    InvalidRequestError,
    InvalidSignatureError,
    MarketClosedError,
    MarketNotFoundError,
    NotFoundError,
    OrderNotCancelableError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderSizeTooLargeError,
    PositionLimitExceededError,
    PostOnlyWouldCrossError,
    RateLimitError,
    ReduceOnlyWouldIncreaseError,
    ServerError,
    ServiceUnavailableError,
    TimestampExpiredError,
    UnauthorizedError,
)
from ballast._core import decode_json
from ballast.errors import error_class, error_from_body
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, ClientFactory, MarketFactory
from tests.signed_client import Admin, SignedClient


def test_insufficient_balance(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market = new_market()
    client = new_client(deposit=850)
    with pytest.raises(InsufficientBalanceError) as caught:
        client.place_order(market, "buy", price="0.5", size=2000)
    error = caught.value
    assert (error.code, error.status) == ("INSUFFICIENT_BALANCE", 400)
    assert error.details == {"required": Decimal("1000"), "available": Decimal("850")}
    assert isinstance(error, OrderRejectedError) and isinstance(error, BallastError)
    assert "INSUFFICIENT_BALANCE (HTTP 400)" in str(error)


def test_order_rejections_by_the_engine(
    admin: Admin, new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market(max_position=100, max_order_size=500)
    maker, taker = new_client(), new_client()
    with pytest.raises(OrderSizeTooLargeError) as too_large:
        maker.place_order(market, "buy", price="0.5", size=501)
    assert too_large.value.details == {"size": 501, "max_order_size": 500}
    with pytest.raises(PositionLimitExceededError) as too_big:
        maker.place_order(market, "buy", price="0.5", size=101)
    assert too_big.value.details["max_position"] == 100
    maker.place_order(market, "sell", price="0.6", size=10)
    with pytest.raises(PostOnlyWouldCrossError) as crossing:
        taker.place_order(market, "buy", price="0.6", size=1, post_only=True)
    assert crossing.value.details == {"price": Decimal("0.6"), "opposite_best": Decimal("0.6")}
    with pytest.raises(ReduceOnlyWouldIncreaseError):
        taker.place_order(market, "sell", price="0.6", size=1, reduce_only=True)
    with pytest.raises(InvalidRequestError) as invalid:
        taker.place_order(market, "buy", price="0.5", size=1, time_in_force="GTD")
    assert invalid.value.details["field"] == "expire_at"

    admin.post(f"/markets/{market}/halt")
    with pytest.raises(MarketClosedError) as closed:
        taker.place_order(market, "buy", price="0.5", size=1)
    assert (closed.value.code, closed.value.status) == ("MARKET_CLOSED", 409)
    assert isinstance(closed.value, ConflictError)


def test_not_found_and_not_cancelable(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market = new_market()
    client = new_client()
    with pytest.raises(MarketNotFoundError) as no_market:
        client.get_market("atlantis-2099")
    assert (no_market.value.code, no_market.value.status) == ("MARKET_NOT_FOUND", 404)
    assert isinstance(no_market.value, NotFoundError)
    with pytest.raises(MarketNotFoundError):
        client.get_orderbook("atlantis-2099")
    with pytest.raises(MarketNotFoundError):
        client.place_order("atlantis-2099", "buy", price="0.5", size=1)
    with pytest.raises(MarketNotFoundError):  # the server's own answer, without local checks
        client.validate_orders = False
        client.place_order("atlantis-2099", "buy", price="0.5", size=1)

    for call in (client.get_order, client.cancel_order):
        with pytest.raises(OrderNotFoundError) as no_order:
            call("ord_999999999")
        assert no_order.value.details == {"order_id": "ord_999999999"}
    with pytest.raises(OrderNotFoundError):
        client.amend_order("not-an-order", size=1)

    order = client.place_order(market, "buy", price="0.5", size=1)
    client.cancel_order(order.id)
    with pytest.raises(OrderNotCancelableError) as twice:
        client.cancel_order(order.id)
    assert (twice.value.code, twice.value.status) == ("ORDER_NOT_CANCELABLE", 409)
    assert twice.value.details == {"order_id": order.id, "status": "canceled"}
    # Someone else's order does not exist for this account.
    other = new_client()
    with pytest.raises(OrderNotFoundError):
        other.get_order(order.id)


def test_authentication_errors(
    server: LiveServer, admin: Admin, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    with BallastClient(account["api_key"], "bmkt_secret_wrong", base_url=server.api) as wrong:
        with pytest.raises(InvalidSignatureError) as bad_signature:
            wrong.get_balance()
        error = bad_signature.value
        assert (error.code, error.status) == ("INVALID_SIGNATURE", 401)
        assert error.details["path"] == "/v1/account/balance"
        assert isinstance(error, AuthenticationError)
        # Market data with a bad signature is refused too: sent headers must be valid.
        with pytest.raises(InvalidSignatureError):
            wrong.get_markets()

    with BallastClient("bmkt_test_nobody", "bmkt_secret_x", base_url=server.api) as unknown:
        with pytest.raises(UnauthorizedError) as unauthorized:
            unknown.get_orders()
        assert (unauthorized.value.code, unauthorized.value.status) == ("UNAUTHORIZED", 401)

    read_only = admin.post("/keys", {"account_id": account["account_id"], "scopes": ["read"]})
    with BallastClient(
        read_only["api_key"], read_only["api_secret"], base_url=server.api
    ) as reader:
        assert reader.get_balance().total_balance == Decimal(10_000)
        with pytest.raises(ForbiddenError) as forbidden:
            reader.place_order(market, "buy", price="0.5", size=1)
        assert (forbidden.value.code, forbidden.value.status) == ("FORBIDDEN", 403)
        assert forbidden.value.details["required_scope"] == "trade"
        with pytest.raises(ForbiddenError):
            reader.cancel_all()

    # A trade-only key may not sign market data (the server wants the read scope there), so
    # the client asks for market data unsigned; it still trades, and still may not read orders.
    trade_only = admin.post("/keys", {"account_id": account["account_id"], "scopes": ["trade"]})
    with BallastClient(trade_only["api_key"], trade_only["api_secret"], base_url=server.api) as bot:
        assert market in {m.id for m in bot.get_markets()}
        order = bot.place_order(market, "buy", price="0.5", size=1)
        assert bot.cancel_order(order.id).status == "canceled"
        with pytest.raises(ForbiddenError) as no_read:
            bot.get_order(order.id)
        assert no_read.value.details["required_scope"] == "read"

    admin.post(f"/keys/{account['api_key']}/revoke")
    with (
        BallastClient(account["api_key"], account["api_secret"], base_url=server.api) as revoked,
        pytest.raises(UnauthorizedError),
    ):
        revoked.get_balance()


def test_timestamp_expired_maps_to_its_class(
    server: LiveServer, new_account: AccountFactory
) -> None:
    # The client recovers from TIMESTAMP_EXPIRED by itself (test_retries), so ask the server
    # directly with an old timestamp and read its answer as the client does.
    account = new_account()
    raw = SignedClient(server.api, account["api_key"], account["api_secret"])
    response = raw.get("/account/balance", timestamp=int(time.time() * 1000) - 120_000)
    raw.close()
    error = error_from_body(response.status_code, decode_json(response.content))
    assert isinstance(error, TimestampExpiredError)
    assert (error.code, error.status) == ("TIMESTAMP_EXPIRED", 401)
    assert abs(error.details["skew_ms"] + 120_000) < 5_000


def test_codes_map_to_classes_and_unknown_codes_stay_readable() -> None:
    assert error_class("RATE_LIMIT_EXCEEDED") is RateLimitError
    assert error_class("SERVICE_UNAVAILABLE") is ServiceUnavailableError
    assert error_class("INTERNAL_ERROR") is InternalServerError
    assert error_class("SOMETHING_NEW") is BallastError
    future = error_from_body(
        418, {"error": {"code": "SOMETHING_NEW", "message": "m", "details": {"x": 1}}}
    )
    assert type(future) is BallastError
    assert (future.code, future.status, future.message, future.details) == (
        "SOMETHING_NEW",
        418,
        "m",
        {"x": 1},
    )
    proxy = error_from_body(502, None)
    assert isinstance(proxy, ServerError) and proxy.code == "HTTP_502"
    limited = error_from_body(429, None, retry_after=7)
    assert isinstance(limited, RateLimitError) and limited.retry_after == 7


# Every code the server knows has a class of the same name in the SDK.
SERVER_CODES = [
    "INVALID_REQUEST", "INVALID_PRICE", "INSUFFICIENT_BALANCE", "ORDER_SIZE_TOO_SMALL",
    "ORDER_SIZE_TOO_LARGE", "POSITION_LIMIT_EXCEEDED", "REDUCE_ONLY_WOULD_INCREASE",
    "POST_ONLY_WOULD_CROSS", "INVALID_SETTLEMENT", "UNAUTHORIZED", "INVALID_SIGNATURE",
    "TIMESTAMP_EXPIRED", "FORBIDDEN", "MARKET_NOT_FOUND", "ORDER_NOT_FOUND", "ACCOUNT_NOT_FOUND",
    "KEY_NOT_FOUND", "NOT_FOUND", "METHOD_NOT_ALLOWED", "MARKET_CLOSED", "ORDER_NOT_CANCELABLE",
    "DUPLICATE_CLIENT_ORDER_ID", "INVALID_TRANSITION", "MARKET_EXISTS", "ACCOUNT_EXISTS",
    "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMIT_EXCEEDED", "FAUCET_LIMIT_EXCEEDED",
    "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TOO_MANY_CONNECTIONS", "ORDER_GROUP_NOT_FOUND",
    "ORDER_GROUP_TRIGGERED",
]  # fmt: skip


@pytest.mark.parametrize("code", SERVER_CODES)
def test_every_server_code_has_a_class(code: str) -> None:
    cls = error_class(code)
    assert cls is not BallastError, code
    assert cls.default_code == code
    assert (
        error_from_body(400, {"error": {"code": code, "message": "", "details": {}}}).code == code
    )


def test_the_sdk_knows_every_code_the_server_has() -> None:
    from ballast_exchange.wire.errors import STATUS

    assert set(STATUS) <= set(SERVER_CODES)
