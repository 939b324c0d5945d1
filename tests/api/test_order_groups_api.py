"""Order groups on a real server: a group's fills (as maker or taker) over a rolling window
reach its contract limit, the group triggers, its open orders are canceled with the reason
``order_group_limit`` and new ones are refused until a reset; over REST, the socket and across
a restart; bad input is refused whole."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.live_server import LiveServer, live_server
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def new_market(admin: Admin) -> str:
    market_id = f"og-{random.randrange(10**9)}"
    admin.market(market_id)
    return market_id


def create(trader: SignedClient, max_filled_size: int, window_s: int = 60) -> dict[str, Any]:
    response = trader.post(
        "/order_groups", {"max_filled_size": max_filled_size, "window_s": window_s}
    )
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


def group(trader: SignedClient, group_id: str) -> dict[str, Any]:
    response = trader.get(f"/order_groups/{group_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def place(
    trader: SignedClient,
    market_id: str,
    side: str,
    price: float,
    size: int,
    group_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"market_id": market_id, "side": side, "price": price, "size": size}
    if group_id is not None:
        body["order_group_id"] = group_id
    response = trader.post("/orders", body)
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


def order(trader: SignedClient, order_id: str) -> dict[str, Any]:
    response = trader.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def refusal(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_fills_reaching_the_limit_cancel_the_group_and_refuse_new_orders(
    live: LiveServer,
) -> None:
    admin = Admin(live.api, live.admin_token)
    market = new_market(admin)
    desk, street = admin.account("desk", 1_000), admin.account("street", 1_000)
    created = create(desk, 10)
    grp = created["order_group_id"]
    assert grp.startswith("grp_")
    assert {k: created[k] for k in ("status", "max_filled_size", "window_s")} == {
        "status": "active",
        "max_filled_size": 10,
        "window_s": 60,
    }
    assert (created["filled_in_window"], created["open_orders"], created["triggered_at"]) == (
        0,
        0,
        None,
    )
    first = place(desk, market, "buy", 0.4, 6, grp)
    second = place(desk, market, "buy", 0.39, 6, grp)
    outside = place(desk, market, "buy", 0.38, 5)  # not in the group
    assert (first["order_group_id"], outside["order_group_id"]) == (grp, None)
    assert group(desk, grp)["open_orders"] == 2

    # 6 contracts fill as maker: under the limit, nothing happens.
    place(street, market, "sell", 0.4, 6)
    assert order(desk, first["order_id"])["status"] == "filled"
    shown = group(desk, grp)
    assert (shown["status"], shown["filled_in_window"], shown["open_orders"]) == ("active", 6, 1)

    # 4 more reach 10: the group triggers, its open order is canceled, the other order stays.
    place(street, market, "sell", 0.39, 4)
    canceled = order(desk, second["order_id"])
    assert (canceled["status"], canceled["cancel_reason"]) == ("canceled", "order_group_limit")
    assert (canceled["filled_size"], canceled["order_group_id"]) == (4, grp)
    assert order(desk, outside["order_id"])["status"] == "open"
    triggered = group(desk, grp)
    assert (triggered["status"], triggered["filled_in_window"], triggered["open_orders"]) == (
        "triggered",
        10,
        0,
    )
    assert triggered["triggered_at"] is not None

    # New orders in the group are refused, alone or in a batch; others still go through.
    body = {"market_id": market, "side": "buy", "price": 0.3, "size": 1, "order_group_id": grp}
    assert refusal(desk.post("/orders", body)) == (409, "ORDER_GROUP_TRIGGERED")
    batch = desk.post("/orders/batch", {"orders": [body, {**body, "order_group_id": None}]})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert (results[0]["status"], results[0]["error"]["code"]) == (409, "ORDER_GROUP_TRIGGERED")
    assert results[1]["status"] == 201
    listed = desk.get("/order_groups").json()["order_groups"]
    assert [g["order_group_id"] for g in listed] == [grp]
    assert listed[0]["status"] == "triggered"

    # A reset starts the count afresh and lets the group take orders again.
    reset = desk.post(f"/order_groups/{grp}/reset")
    assert reset.status_code == 200, reset.text
    again = reset.json()
    assert (again["status"], again["filled_in_window"], again["triggered_at"]) == (
        "active",
        0,
        None,
    )
    assert again["reset_at"] is not None
    # Taker fills count too; one match may pass the limit, and the group triggers after it.
    place(street, market, "sell", 0.45, 15)
    taker = place(desk, market, "buy", 0.45, 12, grp)
    assert (taker["status"], taker["filled_size"]) == ("filled", 12)
    after = group(desk, grp)
    assert (after["status"], after["filled_in_window"]) == ("triggered", 12)
    desk.delete("/orders")
    street.delete("/orders")


def test_the_window_rolls_and_a_delete_cancels_the_groups_orders(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = new_market(admin)
    desk, street = admin.account("desk", 1_000), admin.account("street", 1_000)
    grp = create(desk, 10, window_s=1)["order_group_id"]
    resting = place(desk, market, "buy", 0.4, 20, grp)
    place(street, market, "sell", 0.4, 6)
    assert group(desk, grp)["filled_in_window"] == 6
    # A second later those 6 no longer count: 6 more do not reach 10.
    wait_for(lambda: group(desk, grp)["filled_in_window"] == 0, "the window to roll on")
    place(street, market, "sell", 0.4, 6)
    shown = group(desk, grp)
    assert (shown["status"], shown["filled_in_window"], shown["open_orders"]) == ("active", 6, 1)

    # Deleting the group cancels its open orders (as a user cancel) and forgets it.
    deleted = desk.delete(f"/order_groups/{grp}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "order_group_id": grp,
        "deleted": True,
        "canceled": [resting["order_id"]],
        "count": 1,
    }
    gone = order(desk, resting["order_id"])
    assert (gone["status"], gone["cancel_reason"], gone["filled_size"]) == ("canceled", "user", 12)
    assert refusal(desk.get(f"/order_groups/{grp}")) == (404, "ORDER_GROUP_NOT_FOUND")
    assert refusal(desk.delete(f"/order_groups/{grp}")) == (404, "ORDER_GROUP_NOT_FOUND")
    body = {"market_id": market, "side": "buy", "price": 0.3, "size": 1, "order_group_id": grp}
    assert refusal(desk.post("/orders", body)) == (404, "ORDER_GROUP_NOT_FOUND")
    street.delete("/orders")


def test_bad_input_and_other_accounts_groups_are_refused(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = new_market(admin)
    desk, other = admin.account("desk", 1_000), admin.account("other", 1_000)
    for bad, field in [
        ({"max_filled_size": 0}, "max_filled_size"),
        ({"max_filled_size": -3}, "max_filled_size"),
        ({"max_filled_size": 1.5}, "max_filled_size"),
        ({"max_filled_size": "10"}, "max_filled_size"),
        ({"max_filled_size": 10**10}, "max_filled_size"),
        ({}, "max_filled_size"),
        ({"max_filled_size": 5, "window_s": 0}, "window_s"),
        ({"max_filled_size": 5, "window_s": 86_401}, "window_s"),
        ({"max_filled_size": 5, "window_s": None}, "window_s"),
        ({"max_filled_size": 5, "limit": 3}, "limit"),
    ]:
        response = desk.post("/order_groups", bad)
        assert refusal(response) == (400, "INVALID_REQUEST"), (bad, response.text)
        assert response.json()["error"]["details"]["field"] == field, bad
    assert desk.get("/order_groups").json() == {"order_groups": []}  # nothing half-made

    theirs = create(other, 5)["order_group_id"]
    for path in (f"/order_groups/{theirs}", "/order_groups/grp_nope"):
        assert refusal(desk.get(path)) == (404, "ORDER_GROUP_NOT_FOUND")
        assert refusal(desk.post(f"{path}/reset")) == (404, "ORDER_GROUP_NOT_FOUND")
        assert refusal(desk.delete(path)) == (404, "ORDER_GROUP_NOT_FOUND")
    body = {"market_id": market, "side": "buy", "price": 0.3, "size": 1}
    for group_id in (theirs, "grp_nope"):
        response = desk.post("/orders", {**body, "order_group_id": group_id})
        assert refusal(response) == (404, "ORDER_GROUP_NOT_FOUND")
        assert response.json()["error"]["details"] == {"order_group_id": group_id}
    assert refusal(desk.post("/orders", {**body, "order_group_id": ""})) == (
        400,
        "INVALID_REQUEST",
    )
    assert desk.get("/orders").json()["orders"] == []  # nothing was placed
    assert group(other, theirs)["open_orders"] == 0

    # A read-only key lists and reads, and cannot create, reset or delete.
    account_id = desk.account_id  # type: ignore[attr-defined]
    key = admin.post("/keys", {"account_id": account_id, "scopes": ["read"]})
    reader = SignedClient(live.api, key["api_key"], key["api_secret"])
    mine = create(desk, 3)["order_group_id"]
    assert [g["order_group_id"] for g in reader.get("/order_groups").json()["order_groups"]] == [
        mine
    ]
    assert group(reader, mine)["max_filled_size"] == 3
    assert refusal(reader.post("/order_groups", {"max_filled_size": 3})) == (403, "FORBIDDEN")
    assert refusal(reader.post(f"/order_groups/{mine}/reset")) == (403, "FORBIDDEN")
    assert refusal(reader.delete(f"/order_groups/{mine}")) == (403, "FORBIDDEN")
    # A client_order_id retry must name the same group as the first placement.
    first = {**body, "client_order_id": "og-retry", "order_group_id": mine}
    assert desk.post("/orders", first).status_code == 201
    assert desk.post("/orders", first).status_code == 200
    moved = desk.post("/orders", {**first, "order_group_id": None})
    assert refusal(moved) == (409, "DUPLICATE_CLIENT_ORDER_ID")
    desk.delete("/orders")


def test_the_socket_manages_groups_and_announces_a_trigger(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = new_market(admin)
    desk, street = admin.account("desk", 1_000), admin.account("street", 1_000)

    placed_ids: list[str] = []

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        before = await client.request({"op": "list_order_groups"})
        assert (before["type"], before["error"]["code"]) == ("error", "UNAUTHORIZED")
        assert (await client.auth(desk.api_key, desk.api_secret))["type"] == "authenticated"
        made = await client.request(
            {"op": "create_order_group", "params": {"max_filled_size": 5, "window_s": 30}}
        )
        assert (made["type"], made["status"]) == ("result", 201), made
        grp = made["data"]["order_group_id"]
        bad = await client.request({"op": "create_order_group", "params": {"window_s": 30}})
        assert (bad["status"], bad["error"]["code"]) == (400, "INVALID_REQUEST")
        listed = await client.request({"op": "list_order_groups"})
        assert [g["order_group_id"] for g in listed["data"]["order_groups"]] == [grp]
        snapshot = await client.subscribe("order_groups")
        assert snapshot["data"] == {"order_groups": []}
        placed = await client.request(
            {
                "op": "place_order",
                "params": {
                    "market_id": market,
                    "side": "sell",
                    "price": 0.6,
                    "size": 9,
                    "order_group_id": grp,
                },
            }
        )
        assert (placed["status"], placed["data"]["order_group_id"]) == (201, grp)
        placed_ids.append(placed["data"]["order_id"])
        # Another account takes 5 of them: the group triggers and the socket says so.
        place(street, market, "buy", 0.6, 5)
        notice = await client.wait_for(
            lambda m: m.get("channel") == "order_groups" and m["type"] == "update"
        )
        (announced,) = notice["data"]["order_groups"]
        assert {k: announced[k] for k in ("order_group_id", "event", "status")} == {
            "order_group_id": grp,
            "event": "triggered",
            "status": "triggered",
        }
        assert (announced["filled_in_window"], announced["max_filled_size"]) == (5, 5)
        got = await client.request({"op": "get_order_group", "params": {"order_group_id": grp}})
        assert (got["data"]["status"], got["data"]["open_orders"]) == ("triggered", 0)
        refused = await client.request(
            {
                "op": "place_order",
                "params": {
                    "market_id": market,
                    "side": "sell",
                    "price": 0.7,
                    "size": 1,
                    "order_group_id": grp,
                },
            }
        )
        assert (refused["status"], refused["error"]["code"]) == (409, "ORDER_GROUP_TRIGGERED")
        reset = await client.request({"op": "reset_order_group", "params": {"order_group_id": grp}})
        assert (reset["status"], reset["data"]["status"]) == (200, "active")
        deleted = await client.request(
            {"op": "delete_order_group", "params": {"order_group_id": grp}}
        )
        assert (deleted["status"], deleted["data"]["deleted"]) == (200, True)
        missing = await client.request({"op": "get_order_group", "params": {"order_group_id": grp}})
        assert (missing["status"], missing["error"]["code"]) == (404, "ORDER_GROUP_NOT_FOUND")
        await client.close()

    asyncio.run(run())
    canceled = order(desk, placed_ids[0])
    assert (canceled["filled_size"], canceled["cancel_reason"]) == (5, "order_group_limit")


def test_groups_their_orders_and_window_survive_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    var = tmp_path / "var"
    with live_server(var, database_url=database_url) as server:
        admin = Admin(server.api, server.admin_token)
        market = new_market(admin)
        desk, street = admin.account("desk", 1_000), admin.account("street", 1_000)
        counting = create(desk, 10)["order_group_id"]
        spent = create(desk, 2)["order_group_id"]
        resting = place(desk, market, "buy", 0.4, 20, counting)
        place(street, market, "sell", 0.4, 6)  # 6 of 10 used
        place(desk, market, "sell", 0.7, 2, spent)
        place(street, market, "buy", 0.7, 2)  # the second group triggers
        assert group(desk, spent)["status"] == "triggered"
    with live_server(var, database_url=database_url) as server:
        desk = SignedClient(server.api, desk.api_key, desk.api_secret)
        street = SignedClient(server.api, street.api_key, street.api_secret)
        kept = group(desk, counting)
        # The group, its open order and the fills still in its window came back.
        assert (kept["status"], kept["filled_in_window"], kept["open_orders"]) == ("active", 6, 1)
        assert group(desk, spent)["status"] == "triggered"
        body = {"market_id": market, "side": "buy", "price": 0.3, "size": 1}
        refused = desk.post("/orders", {**body, "order_group_id": spent})
        assert refusal(refused) == (409, "ORDER_GROUP_TRIGGERED")
        # 4 more fills of the order placed before the restart reach the limit.
        place(street, market, "sell", 0.4, 4)
        canceled = order(desk, resting["order_id"])
        assert (canceled["status"], canceled["cancel_reason"]) == ("canceled", "order_group_limit")
        assert group(desk, counting)["status"] == "triggered"
