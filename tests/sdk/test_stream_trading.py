"""Order entry and private channels over the stream, against REST on the same real server;
connection limits and revocation."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from ballast import (
    AsyncBallastClient,
    BalanceMessage,
    BallastClient,
    BallastError,
    Disconnected,
    FillsMessage,
    ForbiddenError,
    InsufficientBalanceError,
    InvalidPriceError,
    MarketNotFoundError,
    NetworkError,
    Order,
    OrderNotCancelableError,
    OrderNotFoundError,
    OrdersMessage,
    PositionsMessage,
    Stream,
    StreamMessage,
    SyncStream,
    TooManyConnectionsError,
    UnauthorizedError,
)
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, MarketFactory
from tests.sdk.stream_helpers import read_until
from tests.signed_client import Admin


def client_of(server: LiveServer, account: dict[str, Any], **options: Any) -> AsyncBallastClient:
    return AsyncBallastClient(
        account["api_key"], account["api_secret"], base_url=server.api, **options
    )


def as_read(order: Order) -> dict[str, Any]:
    """An order as ``GET /orders/{id}`` shows it (without the fills of its arrival, and
    without the stream's ``event``)."""
    fields = {f.name: getattr(order, f.name) for f in dataclasses.fields(Order)}
    fields.pop("fills")
    fields.pop("extra")
    return fields


def test_socket_order_methods_take_the_rest_arguments() -> None:
    for name in ("place_order", "amend_order", "cancel_order", "cancel_all"):
        rest, sync_rest = getattr(AsyncBallastClient, name), getattr(BallastClient, name)
        assert inspect.signature(getattr(Stream, name)) == inspect.signature(rest), name
        assert inspect.signature(getattr(SyncStream, name)) == inspect.signature(sync_rest), name
        assert inspect.iscoroutinefunction(getattr(Stream, name))


def test_socket_order_entry_agrees_with_rest(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    me, other = new_account(), new_account()

    async def run() -> None:
        rest, them = client_of(server, me), client_of(server, other)
        async with rest.stream() as stream:
            placed = await stream.place_order(market, "buy", price=0.4, size=10)
            assert placed.status == "open" and placed.price == Decimal("0.4")
            assert placed.client_order_id and placed.client_order_id.startswith("py-")
            assert as_read(placed) == as_read(await rest.get_order(placed.id))

            amended = await stream.amend_order(placed.id, price="0.41", size=12)
            assert (amended.price, amended.size) == (Decimal("0.41"), 12)
            assert as_read(amended) == as_read(await rest.get_order(placed.id))

            canceled = await stream.cancel_order(placed.id)
            assert canceled.status == "canceled" and canceled.cancel_reason == "user"
            assert as_read(canceled) == as_read(await rest.get_order(placed.id))

            # A taker over the socket gets its fills, as REST would give them.
            await them.place_order(market, "sell", price="0.45", size=5)
            taker = await stream.place_order(market, "buy", price="0.5", size=5)
            assert taker.status == "filled" and [(f.price, f.size) for f in taker.fills] == [
                (Decimal("0.45"), 5)
            ]
            assert as_read(taker) == as_read(await rest.get_order(taker.id))

            # A retry with the same client_order_id returns the first order.
            first = await stream.place_order(
                market, "buy", price="0.3", size=2, client_order_id="again-1"
            )
            retry = await stream.place_order(
                market, "buy", price="0.3", size=2, client_order_id="again-1"
            )
            assert retry.id == first.id and as_read(retry) == as_read(first)
            same_id = [o for o in await rest.get_orders(status="all") if o.id == first.id]
            assert len(same_id) == 1

            # Pipelining: twenty orders in flight at once, each answered by its own id.
            prices = [Decimal(f"0.{200 + i}") for i in range(20)]
            many = await asyncio.gather(
                *(stream.place_order(market, "buy", price=p, size=1) for p in prices)
            )
            assert [o.price for o in many] == prices
            assert len({o.id for o in many}) == 20

            swept = await stream.cancel_all(market)
            assert set(swept.canceled) == {first.id, *(o.id for o in many)}
            assert swept.count == 21
            assert await rest.get_orders(status="open") == []
        await rest.close()
        await them.close()

    asyncio.run(asyncio.wait_for(run(), 30))


async def both(
    rest_call: Callable[[], Awaitable[Any]], socket_call: Callable[[], Awaitable[Any]]
) -> tuple[BallastError, BallastError]:
    """The errors REST and the socket raise for the same request."""
    errors: list[BallastError] = []
    for call in (rest_call, socket_call):
        with pytest.raises(BallastError) as caught:
            await call()
        errors.append(caught.value)
    return errors[0], errors[1]


def test_socket_errors_are_the_rest_errors(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    poor = new_account(deposit=100)

    async def run() -> None:
        rest = client_of(server, poor, validate_orders=False)
        async with rest.stream() as stream:

            def buy(market_id: str, price: str, size: int) -> Callable[[Any], Any]:
                return lambda c: c.place_order(market_id, "buy", price=price, size=size)

            cases: list[tuple[type[BallastError], Callable[[Any], Any]]] = [
                (InsufficientBalanceError, buy(market, "0.5", 1000)),
                (InvalidPriceError, buy(market, "0.4005", 1)),
                (InvalidPriceError, buy(market, "1.5", 1)),
                (MarketNotFoundError, buy("no-such-market", "0.5", 1)),
                (OrderNotFoundError, lambda c: c.cancel_order("ord_999999999")),
                (OrderNotFoundError, lambda c: c.amend_order("ord_999999999", size=3)),
                (MarketNotFoundError, lambda c: c.cancel_all("no-such-market")),
            ]
            for expected, call in cases:
                by_rest, by_socket = await both(partial(call, rest), partial(call, stream))
                assert type(by_rest) is type(by_socket) is expected, (by_rest, by_socket)
                assert (by_socket.code, by_socket.status, by_socket.message) == (
                    by_rest.code,
                    by_rest.status,
                    by_rest.message,
                )
                assert by_socket.details == by_rest.details
            order = await stream.place_order(market, "buy", price="0.1", size=1)
            await stream.cancel_order(order.id)
            by_rest, by_socket = await both(
                lambda: rest.cancel_order(order.id), lambda: stream.cancel_order(order.id)
            )
            assert type(by_rest) is type(by_socket) is OrderNotCancelableError
            assert by_socket.status == by_rest.status == 409
            assert stream.connected  # errors leave the connection open

        # With local checks on (the client's default) the stream refuses as REST does.
        checked = client_of(server, poor)
        async with checked.stream() as stream:
            with pytest.raises(InvalidPriceError) as caught:
                await stream.place_order(market, "buy", price="0.4005", size=1)
            assert caught.value.details["tick_size"] == "0.001"
            with pytest.raises(MarketNotFoundError):
                await stream.place_order("no-such-market", "buy", price="0.5", size=1)
            with pytest.raises(MarketNotFoundError):
                await stream.subscribe("orderbook", "no-such-market")
        await rest.close()
        await checked.close()

        # Without a key: market data only.
        anonymous = AsyncBallastClient(base_url=server.api)
        async with anonymous.stream() as stream:
            assert stream.account_id is None
            with pytest.raises(UnauthorizedError):
                await stream.subscribe("orders")
            with pytest.raises(UnauthorizedError):
                await stream.place_order(market, "buy", price="0.5", size=1)
            await stream.subscribe("markets")
        await anonymous.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_a_read_only_key_streams_but_cannot_trade(
    server: LiveServer, admin: Admin, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    key = admin.post("/keys", {"account_id": account["account_id"], "scopes": ["read"]})

    async def run() -> None:
        reader = client_of(server, key, validate_orders=False)
        async with reader.stream() as stream:
            assert stream.account_id == account["account_id"]
            await stream.subscribe("orders")
            with pytest.raises(ForbiddenError):
                await stream.place_order(market, "buy", price="0.5", size=1)
        await reader.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_the_sync_stream_takes_orders(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account(deposit=100)
    with BallastClient(account["api_key"], account["api_secret"], base_url=server.api) as rest:
        with rest.stream() as stream:
            order = stream.place_order(market, "sell", price="0.6", size=5)
            assert stream.amend_order(order.id, size=4).size == 4
            with pytest.raises(InsufficientBalanceError):
                stream.place_order(market, "buy", price="0.5", size=10_000)
            assert stream.cancel_order(order.id).status == "canceled"
            assert stream.cancel_all().count == 0
        assert rest.get_order(order.id).status == "canceled"


def test_private_channels_carry_typed_updates_of_the_own_account(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    me, other = new_account(), new_account()

    async def run() -> None:
        rest, them = client_of(server, me), client_of(server, other)
        async with rest.stream() as stream:
            snapshots = [await stream.subscribe(c) for c in ("orders", "fills", "positions")]
            balance_snapshot = await stream.subscribe("balance")
            assert [type(m) for m in snapshots] == [OrdersMessage, FillsMessage, PositionsMessage]
            assert isinstance(balance_snapshot, BalanceMessage)
            assert balance_snapshot.balance == await rest.get_balance()

            resting = await stream.place_order(market, "sell", price="0.6", size=10)
            theirs = await them.place_order(market, "buy", price="0.6", size=4)
            assert theirs.status == "filled"
            await stream.ping()
            seen: list[StreamMessage] = stream.drain()

            orders = [o for m in seen if isinstance(m, OrdersMessage) for o in m.orders]
            assert [(o.order_id, o.event, o.status, o.filled_size) for o in orders] == [
                (resting.id, "accepted", "open", 0),
                (resting.id, "filled", "open", 4),
            ]
            assert {o.id for o in orders} == {resting.id}  # never the other account's orders
            assert as_read(orders[-1]) == as_read(await rest.get_order(resting.id))

            fills = [f for m in seen if isinstance(m, FillsMessage) for f in m.fills]
            assert fills == await rest.get_fills(market)
            assert fills[0].price == Decimal("0.6") and fills[0].liquidity == "maker"
            assert fills[0].created_at is not None and fills[0].created_at.tzinfo is not None

            positions = [p for m in seen if isinstance(m, PositionsMessage) for p in m.positions]
            assert positions[-1] == (await rest.get_positions())[0]
            assert positions[-1].size == -4

            balances = [m.balance for m in seen if isinstance(m, BalanceMessage)]
            assert balances[-1] == await rest.get_balance()
            assert all(isinstance(b.available, Decimal) for b in balances)

            for message in seen:
                if isinstance(message, (OrdersMessage, FillsMessage, PositionsMessage)):
                    assert message.market_id is None and message.time.tzinfo is not None
        await rest.close()
        await them.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_cancel_on_disconnect_cancels_the_streams_orders(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()

    async def run() -> None:
        rest = client_of(server, account)
        by_rest = await rest.place_order(market, "buy", price="0.2", size=1)
        async with rest.stream(cancel_on_disconnect=True) as stream:
            guarded = [
                await stream.place_order(market, "buy", price=p, size=1) for p in ("0.3", "0.31")
            ]
            assert await stream.set_cancel_on_disconnect(False) is False
            kept = await stream.place_order(market, "buy", price="0.32", size=1)
        for _ in range(50):
            statuses = [(await rest.get_order(o.id)).status for o in guarded]
            if statuses == ["canceled", "canceled"]:
                break
            await asyncio.sleep(0.05)
        assert statuses == ["canceled", "canceled"]
        assert (await rest.get_order(kept.id)).status == "open"
        assert (await rest.get_order(by_rest.id)).status == "open"
        await rest.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_a_revoked_key_ends_the_stream_without_reconnecting(
    server: LiveServer, admin: Admin, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()

    async def run() -> None:
        rest = client_of(server, account)
        async with rest.stream(backoff_base=0.01) as stream:
            await stream.subscribe("orders")
            await stream.place_order(market, "buy", price="0.3", size=1)  # rules now cached
            admin.post(f"/keys/{account['api_key']}/revoke")
            with pytest.raises((NetworkError, UnauthorizedError)):
                await stream.place_order(market, "buy", price="0.3", size=1)
            seen = await read_until(stream, lambda m: isinstance(m, Disconnected))
            gone = seen[-1]
            assert isinstance(gone, Disconnected)
            assert (gone.code, gone.reconnecting) == (4001, False)
            assert isinstance(gone.error, UnauthorizedError)
            with pytest.raises(UnauthorizedError):
                await stream.receive(1)
            with pytest.raises(UnauthorizedError):
                await stream.ping()
            assert stream.closed and stream.reconnects == 0
        await rest.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_a_sixth_connection_of_a_key_is_refused(
    server: LiveServer, new_account: AccountFactory
) -> None:
    account = new_account()

    async def run() -> None:
        rest = client_of(server, account)
        streams = [rest.stream() for _ in range(5)]
        for stream in streams:
            await stream.connect()
        with pytest.raises(TooManyConnectionsError):
            async with rest.stream():
                pass
        await streams.pop().close()
        await asyncio.sleep(0.1)
        async with rest.stream() as again:
            assert again.connected
        for stream in streams:
            await stream.close()
        await rest.close()

    asyncio.run(asyncio.wait_for(run(), 30))
