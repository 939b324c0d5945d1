"""Order entry over the socket answers as REST does; bad messages get the error envelope."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import NO_LIMITS, LiveServer, live_server, sqlite_only
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient, auth_message

IGNORED = {"order_id", "created_at", "updated_at", "client_order_id"}


def comparable(order: dict[str, Any]) -> dict[str, Any]:
    """An order reply without what differs between two accounts' equal orders."""
    view = {k: v for k, v in order.items() if k not in IGNORED}
    if "fills" in view:
        view["fills"] = [{k: v for k, v in f.items() if k != "trade_id"} for f in view["fills"]]
    return view


async def trader_socket(live: LiveServer, trader: SignedClient) -> StreamClient:
    client = await StreamClient.connect(live.url)
    assert (await client.auth(trader.api_key, trader.api_secret))["type"] == "authenticated"
    return client


def test_socket_orders_answer_like_rest(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"oe-{random.randrange(10**9)}"
    admin.market(market)
    index = f"oei-{random.randrange(10**9)}"
    admin.market(index, "index", floor=0, cap=100, tick_size=0.1)
    rest, sock = admin.account("rest", 1_000), admin.account("sock", 1_000)
    cases: list[dict[str, Any]] = [
        {"market_id": market, "side": "buy", "price": 0.4, "size": 100},
        {"market_id": market, "side": "buy", "price": 0.4005, "size": 10},  # off the grid
        {"market_id": market, "side": "buy", "price": 1.5, "size": 10},  # out of range
        {"market_id": market, "side": "buy", "price": 0.9, "size": 1_000_000},  # too poor
        {"market_id": "nope", "side": "buy", "price": 0.5, "size": 10},
        {"market_id": market, "side": "buy", "size": 10},  # a limit order needs a price
        {"market_id": market, "side": "up", "price": 0.5, "size": 10},
        {"market_id": market, "side": "buy", "price": 0.5, "size": 0},
        {"market_id": market, "side": "buy", "price": 0.5, "size": 5, "bogus": 1},
        {"market_id": index, "side": "sell", "price": 55.5, "size": 3, "post_only": True},
    ]

    async def run() -> None:
        client = await trader_socket(live, sock)
        for body in cases:
            expected = rest.post("/orders", body)
            reply = await client.request({"op": "place_order", "params": body})
            if expected.status_code >= 400:
                assert reply["type"] == "error", (body, reply)
                assert reply["status"] == expected.status_code
                assert reply["error"]["code"] == expected.json()["error"]["code"], body
                assert reply["error"]["details"] == expected.json()["error"]["details"]
            else:
                assert reply["type"] == "result" and reply["status"] == expected.status_code
                assert comparable(reply["data"]) == comparable(expected.json())
        opened = await client.request(
            {"op": "place_order", "params": {**cases[0], "client_order_id": "sock-1"}}
        )
        order_id = opened["data"]["order_id"]
        # A retry with the same client_order_id returns the first order, 200, as REST does.
        retry = await client.request(
            {"op": "place_order", "params": {**cases[0], "client_order_id": "sock-1"}}
        )
        assert (retry["status"], retry["data"]["order_id"]) == (200, order_id)
        assert retry["data"] == sock.get(f"/orders/{order_id}").json()
        amended = await client.request(
            {"op": "amend_order", "params": {"order_id": order_id, "size": 60}}
        )
        assert amended["data"] == sock.get(f"/orders/{order_id}").json()
        assert amended["data"]["remaining_size"] == 60
        canceled = await client.request({"op": "cancel_order", "params": {"order_id": order_id}})
        assert canceled["data"]["status"] == "canceled"
        again = await client.request({"op": "cancel_order", "params": {"order_id": order_id}})
        rest_again = sock.delete(f"/orders/{order_id}")
        assert again["error"]["code"] == rest_again.json()["error"]["code"]
        assert again["error"]["code"] == "ORDER_NOT_CANCELABLE"
        foreign = rest.post("/orders", cases[0]).json()["order_id"]
        for op, params in (
            ("cancel_order", {"order_id": foreign}),
            ("amend_order", {"order_id": foreign, "size": 1}),
            ("cancel_order", {"order_id": "ord_999999999"}),
            ("cancel_order", {"order_id": "garbage"}),
        ):
            reply = await client.request({"op": op, "params": params})
            assert reply["error"]["code"] == "ORDER_NOT_FOUND", (op, reply)
        await client.request({"op": "place_order", "params": cases[0]})
        everything = await client.request({"op": "cancel_all", "params": {"market_id": market}})
        # The first case's order rests too.
        assert everything["data"]["count"] == 2
        await client.close()

    asyncio.run(run())


def test_pipelined_orders_execute_in_arrival_order(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"pipe-{random.randrange(10**9)}"
    admin.market(market)
    trader = admin.account("pipe", 100_000)

    async def run() -> None:
        client = await trader_socket(live, trader)
        ids = []
        for i in range(200):
            price = round(0.01 + i % 40 / 100, 2)
            params = {"market_id": market, "side": "buy", "price": price, "size": 1}
            ids.append(await client.send({"op": "place_order", "params": params}))
        while sum(m["type"] in ("result", "error") for m in client.messages) < 200:
            await client.receive()
        replies = {m["id"]: m for m in client.messages if m["type"] in ("result", "error")}
        numbers = [int(replies[i]["data"]["order_id"].removeprefix("ord_")) for i in ids]
        assert numbers == sorted(numbers) and len(set(numbers)) == 200
        await client.close()

    asyncio.run(run())


def test_each_reply_describes_the_state_its_own_command_produced(live: LiveServer) -> None:
    """An amend pipelined just before a cancel answers the amended open order, not the
    canceled one the store holds by the time the amend's reply is sent."""
    admin = Admin(live.api, live.admin_token)
    market = f"own-{random.randrange(10**9)}"
    admin.market(market)
    trader = admin.account("own", 100_000)

    async def run() -> None:
        client = await trader_socket(live, trader)
        for _ in range(5):
            params = {"market_id": market, "side": "buy", "price": 0.4, "size": 10}
            placed = await client.request({"op": "place_order", "params": params})
            order_id = placed["data"]["order_id"]
            amend = await client.send(
                {"op": "amend_order", "params": {"order_id": order_id, "size": 7}}
            )
            cancel = await client.send({"op": "cancel_order", "params": {"order_id": order_id}})
            amended = await client.wait_for(lambda m, i=amend: m.get("id") == i)
            canceled = await client.wait_for(lambda m, i=cancel: m.get("id") == i)
            assert amended["type"] == "result", amended
            assert (amended["data"]["status"], amended["data"]["size"]) == ("open", 7)
            assert amended["data"]["remaining_size"] == 7
            assert (canceled["data"]["status"], canceled["data"]["size"]) == ("canceled", 7)
        await client.close()

    asyncio.run(run())


@sqlite_only
def test_bad_messages_get_the_error_envelope(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    trader = admin.account("bad", 100)
    read_only = admin.post(
        "/keys",
        {"account_id": trader.account_id, "scopes": ["read"]},  # type: ignore[attr-defined]
    )
    market = f"bad-{random.randrange(10**9)}"
    admin.market(market)
    bad_signature = {**auth_message(trader.api_key, trader.api_secret, ""), "signature": "00" * 32}
    # Signed right, but over no nonce: the connection's welcome nonce is part of the message.
    unbound = auth_message(trader.api_key, trader.api_secret, "")
    place = {"market_id": market, "side": "buy", "price": 0.5, "size": 1}
    cases: list[tuple[Any, str, str | None]] = [
        ("not json", "INVALID_REQUEST", "body"),
        ("[1, 2]", "INVALID_REQUEST", "body"),
        ({"op": "dance"}, "INVALID_REQUEST", "op"),
        ({"id": 1}, "INVALID_REQUEST", "op"),
        ({"op": "subscribe", "channel": "gossip"}, "INVALID_REQUEST", "channel"),
        ({"op": "subscribe", "channel": "orderbook"}, "INVALID_REQUEST", "market_id"),
        ({"op": "subscribe", "channel": "trades", "market_id": "nope"}, "MARKET_NOT_FOUND", None),
        (
            {"op": "subscribe", "channel": "orderbook", "market_id": market, "depth": 0},
            "INVALID_REQUEST",
            "depth",
        ),
        ({"op": "unsubscribe", "channel": "ticker", "market_id": market}, "INVALID_REQUEST", None),
        ({"op": "subscribe", "channel": "orders"}, "UNAUTHORIZED", None),
        ({"op": "place_order", "params": place}, "UNAUTHORIZED", None),
        ({"op": "cancel_on_disconnect", "enabled": True}, "UNAUTHORIZED", None),
        ({"op": "auth", "api_key": "bmkt_test_nobody"}, "UNAUTHORIZED", None),
        (bad_signature, "INVALID_SIGNATURE", None),
        (unbound, "INVALID_SIGNATURE", None),
    ]

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        old = auth_message(trader.api_key, trader.api_secret, await client.nonce())
        old["timestamp"] = str(int(old["timestamp"]) - 120_000)
        cases.append((old, "TIMESTAMP_EXPIRED", None))
        for message, code, field in cases:
            raw = message if isinstance(message, str) else json.dumps({"id": "x", **message})
            await client.send(raw)
            reply = await client.wait_for(lambda m: m["type"] in ("error", "result"))
            assert reply["type"] == "error", (message, reply)
            assert set(reply["error"]) == {"code", "message", "details"}
            assert reply["error"]["code"] == code, (message, reply)
            if field is not None:
                assert reply["error"]["details"]["field"] == field, (message, reply)
        await client.ws.send(b"\x00binary")
        reply = await client.wait_for(lambda m: m["type"] == "error")
        assert reply["error"]["code"] == "INVALID_REQUEST"
        # The connection survived all of it.
        assert (await client.auth(read_only["api_key"], read_only["api_secret"]))["type"] == (
            "authenticated"
        )
        reply = await client.request({"op": "place_order", "params": place})
        assert reply["error"]["code"] == "FORBIDDEN"
        reply = await client.auth(trader.api_key, trader.api_secret)
        assert reply["error"]["code"] == "INVALID_REQUEST"
        await client.close()

    asyncio.run(run())


def test_oversized_frames_close_the_connection(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", **NO_LIMITS) as live:

        async def run() -> int | None:
            client = await StreamClient.connect(live.url, max_size=None)
            await client.nonce()  # the welcome
            await client.send("x" * (70 * 1024))
            with pytest.raises(Exception) as closed:
                await client.receive(timeout=5)
            return getattr(getattr(closed.value, "rcvd", None), "code", None)

        assert asyncio.run(run()) == 1009


def test_socket_order_entry_counts_against_the_keys_limit(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", private_rate_limit=5, public_rate_limit=10**9) as live:
        admin = Admin(live.api, live.admin_token)
        admin.market("rl")
        trader = admin.account("rl", 1_000)

        async def run() -> None:
            client = await trader_socket(live, trader)
            params = {"market_id": "rl", "side": "buy", "price": 0.1, "size": 1}
            replies = [
                await client.request({"op": "place_order", "params": params}) for _ in range(6)
            ]
            codes = [r.get("status") for r in replies]
            refused = [r for r in replies if r["type"] == "error"]
            assert refused and refused[-1]["error"]["code"] == "RATE_LIMIT_EXCEEDED", codes
            assert refused[-1]["error"]["details"]["retry_after"] >= 0
            # REST sees the same bucket spent.
            assert trader.get("/orders").status_code == 429
            await client.close()

        asyncio.run(run())


@sqlite_only
def test_hostile_messages_get_the_envelope_and_the_connection_stays(live: LiveServer) -> None:
    """Overflowing numbers, non-ASCII ids and JSON nested past the parser's depth each get an
    error in the envelope; the connection stays open (so cancel-on-disconnect never fires)."""
    admin = Admin(live.api, live.admin_token)
    market = f"hostile-{random.randrange(10**9)}"
    admin.market(market)
    trader = admin.account("hostile", 100)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        reply = await client.auth(trader.api_key, trader.api_secret, cancel_on_disconnect=True)
        assert reply["type"] == "authenticated", reply
        resting = {"market_id": market, "side": "buy", "price": 0.1, "size": 1}
        placed = await client.request({"op": "place_order", "params": resting})
        assert placed["type"] == "result" and placed["status"] == 201, placed
        order_id = placed["data"]["order_id"]
        nested = "[" * 20_000 + "]" * 20_000  # 40 KB, under the frame limit
        cases: list[tuple[Any, str]] = [
            ({"op": "place_order", "params": {**resting, "price": "1e999999999"}}, "INVALID_PRICE"),
            (
                {"op": "amend_order", "params": {"order_id": order_id, "price": "1e999999999"}},
                "INVALID_PRICE",
            ),
            ({"op": "cancel_order", "params": {"order_id": "ord_\u00b2"}}, "ORDER_NOT_FOUND"),
            ({"op": "cancel_order", "params": {"order_id": "ord_\u0661"}}, "ORDER_NOT_FOUND"),
            (nested, "INVALID_REQUEST"),
            ('{"op": "ping", "op": "ping"}', "INVALID_REQUEST"),
        ]
        for message, code in cases:
            raw = message if isinstance(message, str) else json.dumps({"id": "h", **message})
            await client.send(raw)
            reply = await client.wait_for(lambda m: m["type"] in ("error", "result"))
            assert reply["type"] == "error", (message, reply)
            assert reply["error"]["code"] == code, (str(message)[:80], reply)
        pong = await client.request({"op": "ping"})
        assert pong["type"] == "pong"  # still open, still answering
        await client.close()

    asyncio.run(run())
    rest = SignedClient(live.api, trader.api_key, trader.api_secret)
    orders = rest.get("/orders?status=all").json()["orders"]
    assert [o["status"] for o in orders] == ["canceled"]  # canceled once closed, not before
    assert orders[0]["cancel_reason"] == "disconnect"


@sqlite_only
def test_a_captured_auth_message_is_useless_on_another_connection(live: LiveServer) -> None:
    trader = Admin(live.api, live.admin_token).account("captured", 100)

    async def run() -> None:
        first = await StreamClient.connect(live.url)
        captured = auth_message(trader.api_key, trader.api_secret, await first.nonce())
        assert (await first.request(captured))["type"] == "authenticated"
        second = await StreamClient.connect(live.url)
        await second.nonce()  # a different one
        replayed = await second.request(captured)
        assert replayed["type"] == "error", replayed
        assert replayed["error"]["code"] == "INVALID_SIGNATURE"
        assert (await second.request({"op": "subscribe", "channel": "orders"}))["type"] == "error"
        await first.close()
        await second.close()

    asyncio.run(run())
