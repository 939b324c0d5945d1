"""Order groups through the Python SDK (sync client, async client and the stream) against a
real server: create, place in, trigger by fills, typed refusals, reset, list, delete."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from ballast import (
    AsyncBallastClient,
    BallastClient,
    DeletedOrderGroup,
    InvalidRequestError,
    OrderGroup,
    OrderGroupNotFoundError,
    OrderGroupsMessage,
    OrderGroupTriggeredError,
    OrderRequest,
    OrdersMessage,
    Stream,
    SyncStream,
)
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, ClientFactory, MarketFactory
from tests.sdk.stream_helpers import read_until

METHODS = (
    "create_order_group",
    "get_order_groups",
    "get_order_group",
    "reset_order_group",
    "delete_order_group",
)


def test_the_clients_and_streams_offer_the_same_methods() -> None:
    for name in METHODS:
        sync, async_ = getattr(BallastClient, name), getattr(AsyncBallastClient, name)
        assert inspect.signature(sync) == inspect.signature(async_), name
        assert inspect.signature(getattr(Stream, name)) == inspect.signature(async_), name
        assert inspect.signature(getattr(SyncStream, name)) == inspect.signature(sync), name
    for cls in (BallastClient, AsyncBallastClient, Stream, SyncStream):
        assert "order_group_id" in inspect.signature(cls.place_order).parameters, cls


def test_a_group_triggers_refuses_resets_and_deletes(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market()
    client, street = new_client(), new_client()
    group = client.create_order_group(8, window_s=120)
    assert isinstance(group, OrderGroup)
    assert (group.status, group.max_filled_size, group.window_s, group.triggered) == (
        "active",
        8,
        120,
        False,
    )
    assert group.id == group.order_group_id and group.id.startswith("grp_")
    assert client.create_order_group(3).window_s == 15  # the server's default window

    resting = client.place_order(market, "sell", price="0.6", size=5, order_group_id=group.id)
    second = client.place_order(market, "sell", price="0.61", size=5, order_group_id=group.id)
    assert resting.order_group_id == group.id
    street.place_order(market, "buy", price="0.61", size=9)  # 5 + 4 fill: 9 of 8
    shown = client.get_order_group(group.id)
    assert (shown.triggered, shown.filled_in_window, shown.open_orders) == (True, 9, 0)
    assert shown.triggered_at is not None
    canceled = client.get_order(second.id)
    assert (canceled.status, canceled.cancel_reason, canceled.filled_size) == (
        "canceled",
        "order_group_limit",
        4,
    )

    with pytest.raises(OrderGroupTriggeredError) as refused:
        client.place_order(market, "sell", price="0.7", size=1, order_group_id=group.id)
    assert (refused.value.status, refused.value.details["order_group_id"]) == (409, group.id)
    batch = client.place_orders(
        [OrderRequest(market, "sell", price="0.7", size=1, order_group_id=group.id)]
    )
    assert isinstance(batch[0].error, OrderGroupTriggeredError)
    with pytest.raises(OrderGroupNotFoundError):
        client.place_order(market, "sell", price="0.7", size=1, order_group_id="grp_nope")
    with pytest.raises(OrderGroupNotFoundError):
        street.get_order_group(group.id)  # not theirs
    with pytest.raises(InvalidRequestError):
        client.create_order_group(0)

    again = client.reset_order_group(group.id)
    assert (again.status, again.filled_in_window, again.reset_at is not None) == (
        "active",
        0,
        True,
    )
    kept = client.place_order(market, "sell", price="0.7", size=2, order_group_id=group.id)
    assert client.get_order_groups()[0].id == group.id
    deleted = client.delete_order_group(group.id)
    assert isinstance(deleted, DeletedOrderGroup)
    assert (deleted.order_group_id, deleted.canceled, deleted.count) == (group.id, [kept.id], 1)
    assert client.get_order(kept.id).cancel_reason == "user"
    with pytest.raises(OrderGroupNotFoundError):
        client.get_order_group(group.id)
    client.cancel_all()
    street.cancel_all()


def test_the_async_client_and_the_stream_manage_groups_and_hear_a_trigger(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    me, other = new_account(), new_account()

    def client_of(account: dict[str, Any]) -> AsyncBallastClient:
        return AsyncBallastClient(account["api_key"], account["api_secret"], base_url=server.api)

    async def run() -> None:
        async with client_of(me) as rest, client_of(other) as them, rest.stream() as stream:
            snapshot = await stream.subscribe("order_groups")
            assert isinstance(snapshot, OrderGroupsMessage) and snapshot.order_groups == []
            await stream.subscribe("orders")
            group = await stream.create_order_group(4, window_s=30)
            assert [g.id for g in await stream.get_order_groups()] == [group.id]
            assert (await rest.get_order_group(group.id)).status == "active"
            order = await stream.place_order(
                market, "buy", price="0.4", size=10, order_group_id=group.id
            )
            await them.place_order(market, "sell", price="0.4", size=4)
            seen = await read_until(
                stream,
                lambda m: (
                    isinstance(m, OrdersMessage)
                    and any(u.cancel_reason == "order_group_limit" for u in m.orders)
                ),
            )
            notices = [m for m in seen if isinstance(m, OrderGroupsMessage) and m.type == "update"]
            assert len(notices) == 1
            (triggered,) = notices[0].order_groups
            assert (triggered.id, triggered.event, triggered.triggered) == (
                group.id,
                "triggered",
                True,
            )
            assert (triggered.filled_in_window, triggered.max_filled_size) == (4, 4)
            assert (await stream.get_order_group(group.id)).triggered
            assert (await rest.get_order(order.id)).status == "canceled"
            with pytest.raises(OrderGroupTriggeredError):
                await stream.place_order(
                    market, "buy", price="0.3", size=1, order_group_id=group.id
                )
            assert (await stream.reset_order_group(group.id)).status == "active"
            deleted = await rest.delete_order_group(group.id)
            assert deleted.canceled == []
            with pytest.raises(OrderGroupNotFoundError):
                await stream.delete_order_group(group.id)

    asyncio.run(run())
