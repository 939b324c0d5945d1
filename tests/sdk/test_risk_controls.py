"""The dead-man switch, batch cancel and amend, and queue position through the SDK (sync and
async) against a real server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ballast import (
    AsyncBallastClient,
    DeadManSwitch,
    InvalidRequestError,
    OrderAmend,
    OrderNotCancelableError,
    OrderNotFoundError,
    QueuePosition,
)
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, ClientFactory, MarketFactory


def test_batch_cancel_amend_and_queue_position(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market()
    client, other = new_client(), new_client()
    ahead = other.place_order(market_id=market, side="buy", price="0.5", size=30)
    first = client.place_order(market_id=market, side="buy", price="0.5", size=10)
    second = client.place_order(market_id=market, side="buy", price="0.4", size=10)

    position = client.get_queue_position(first.id)
    assert isinstance(position, QueuePosition)
    assert (position.order_id, position.price) == (first.id, Decimal("0.5"))
    assert (position.contracts_ahead, position.orders_ahead) == (30, 1)

    amended = client.amend_orders(
        [OrderAmend(first.id, size=4), {"order_id": second.id, "price": "0.45"}, OrderAmend("x")]
    )
    assert [r.status for r in amended] == [200, 200, 404]
    assert amended[0].order is not None and amended[0].order.size == 4
    assert amended[1].order is not None and amended[1].order.price == Decimal("0.45")
    assert isinstance(amended[2].error, OrderNotFoundError)
    # A smaller size keeps its place.
    assert client.get_queue_position(first.id).contracts_ahead == 30

    canceled = client.cancel_orders([first.id, second.id, ahead.id, first.id])
    assert [r.ok for r in canceled] == [True, True, False, False]
    assert canceled[0].order is not None and canceled[0].order.status == "canceled"
    assert isinstance(canceled[2].error, OrderNotFoundError)  # another account's
    assert isinstance(canceled[3].error, OrderNotCancelableError)
    try:
        client.get_queue_position(first.id)
        raise AssertionError("a canceled order has no queue position")
    except OrderNotCancelableError as error:
        assert error.details["status"] == "canceled"


def test_heartbeat_arms_and_the_switch_fires(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market()
    client = new_client()
    order = client.place_order(market_id=market, side="buy", price="0.5", size=10)
    try:
        client.heartbeat(3)
        raise AssertionError("3 s is below the shortest timeout")
    except InvalidRequestError as error:
        assert error.details["field"] == "timeout_s"
    armed = client.heartbeat(5)
    assert isinstance(armed, DeadManSwitch)
    assert (armed.armed, armed.timeout_s) == (True, 5)
    assert armed.deadline is not None
    assert armed.deadline - datetime.now(UTC) <= timedelta(seconds=6)
    deadline = time.monotonic() + 30
    while client.get_order(order.id).status == "open":
        assert time.monotonic() < deadline, "the switch did not fire"
        time.sleep(0.05)
    canceled = client.get_order(order.id)
    assert (canceled.status, canceled.cancel_reason) == ("canceled", "heartbeat_expired")
    off = client.disarm_heartbeat()
    assert (off.armed, off.timeout_s, off.deadline) == (False, 0, None)


def test_the_async_client_has_them_too(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market, account = new_market(), new_account()

    async def scenario() -> None:
        async with AsyncBallastClient(
            account["api_key"], account["api_secret"], base_url=server.api
        ) as client:
            order = await client.place_order(market_id=market, side="sell", price="0.7", size=5)
            assert (await client.get_queue_position(order.id)).orders_ahead == 0
            amended = await client.amend_orders([OrderAmend(order.id, price="0.72")])
            assert amended[0].order is not None and amended[0].order.price == Decimal("0.72")
            armed = await client.heartbeat(60)
            assert armed.armed and armed.timeout_s == 60
            assert (await client.heartbeat(0)).armed is False
            assert (await client.disarm_heartbeat()).deadline is None
            canceled = await client.cancel_orders([order.id])
            assert canceled[0].ok

    asyncio.run(scenario())


def test_the_socket_feeds_the_switch(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market, account = new_market(), new_account()

    async def scenario() -> None:
        async with AsyncBallastClient(
            account["api_key"], account["api_secret"], base_url=server.api
        ) as client:
            order = await client.place_order(market_id=market, side="buy", price="0.3", size=5)
            async with client.stream() as stream:
                armed = await stream.heartbeat(5)
                assert (armed.armed, armed.timeout_s) == (True, 5)
                deadline = time.monotonic() + 30
                while (await client.get_order(order.id)).status == "open":
                    assert time.monotonic() < deadline, "the switch did not fire"
                    await asyncio.sleep(0.05)
                assert (await client.get_order(order.id)).cancel_reason == "heartbeat_expired"
                assert (await stream.heartbeat(0)).armed is False

    asyncio.run(scenario())
