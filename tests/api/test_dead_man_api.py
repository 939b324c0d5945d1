"""The dead-man switch on a real server: a key that stops heartbeating has its account's orders
canceled with the reason ``heartbeat_expired``; heartbeats keep them; over REST, the socket and
across a restart."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.live_server import LiveServer, live_server
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient

TIMEOUT_S = 5  # the shortest a switch may be armed for


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def markets(admin: Admin) -> tuple[str, str]:
    names = (f"dm-{random.randrange(10**9)}", f"dm-{random.randrange(10**9)}")
    for name in names:
        admin.market(name)
    return names


def rest(trader: SignedClient, market_id: str, price: float = 0.4) -> str:
    body = {"market_id": market_id, "side": "buy", "price": price, "size": 10}
    response = trader.post("/orders", body)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def order(trader: SignedClient, order_id: str) -> dict[str, Any]:
    response = trader.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def canceled_by_switch(trader: SignedClient, order_id: str) -> bool:
    found = order(trader, order_id)
    if found["status"] == "open":
        return False
    assert (found["status"], found["cancel_reason"]) == ("canceled", "heartbeat_expired"), found
    return True


def test_a_silent_key_has_every_open_order_canceled(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    first, second = markets(admin)
    trader = admin.account("desk", 1_000)
    bystander = admin.account("other", 1_000)
    orders = [rest(trader, first), rest(trader, second, 0.3)]
    theirs = rest(bystander, first, 0.2)
    before = int(time.time() * 1000)
    armed = trader.post("/heartbeat", {"timeout_s": TIMEOUT_S})
    assert armed.status_code == 200, armed.text
    reply = armed.json()
    assert (reply["armed"], reply["timeout_s"]) == (True, TIMEOUT_S)
    assert before + TIMEOUT_S * 1000 <= ms(reply["deadline"]) <= time.time() * 1000 + 5_000
    late = rest(trader, first, 0.35)  # placed after arming: covered too
    for order_id in [*orders, late]:
        wait_for(lambda o=order_id: canceled_by_switch(trader, o), f"{order_id} canceled")
    # Not before its deadline; and another account's orders are untouched.
    assert ms(order(trader, late)["updated_at"]) >= ms(reply["deadline"])
    assert order(bystander, theirs)["status"] == "open"
    # Fired means disarmed: a new order rests until the key arms the switch again.
    after = rest(trader, first)
    assert order(trader, after)["status"] == "open"
    trader.delete("/orders")


def test_heartbeats_keep_the_orders_and_disarming_stops_the_switch(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market, _ = markets(admin)
    trader = admin.account("desk", 1_000)
    kept = rest(trader, market)
    first = trader.post("/heartbeat", {"timeout_s": TIMEOUT_S}).json()
    # Heartbeat every second until well past the first deadline: each moves it on.
    while time.time() * 1000 < ms(first["deadline"]) + 2_000:
        beat = trader.post("/heartbeat", {"timeout_s": TIMEOUT_S})
        assert beat.status_code == 200, beat.text
        assert order(trader, kept)["status"] == "open"
        time.sleep(1)  # the client's heartbeat cadence, not synchronisation
    last = trader.post("/heartbeat", {"timeout_s": TIMEOUT_S}).json()
    assert ms(last["deadline"]) > ms(first["deadline"]) + 2_000
    # Disarmed (DELETE, or timeout_s 0), nothing fires after the deadline.
    off = trader.delete("/heartbeat")
    assert off.json() == {"armed": False, "timeout_s": 0, "deadline": None}
    assert trader.post("/heartbeat", {"timeout_s": 0}).json()["armed"] is False
    wait_for(lambda: time.time() * 1000 > ms(last["deadline"]) + 1_000, "the old deadline")
    assert order(trader, kept)["status"] == "open"
    trader.delete("/orders")


def test_a_heartbeat_outside_the_allowed_range_is_refused(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    trader = admin.account("desk", 1_000)
    for bad in (1, 4, 61, -1, 5.5, "10", True, None):
        response = trader.post("/heartbeat", {"timeout_s": bad})
        assert response.status_code == 400, (bad, response.text)
        error = response.json()["error"]
        assert (error["code"], error["details"].get("field")) == ("INVALID_REQUEST", "timeout_s")
    assert trader.post("/heartbeat", {}).status_code == 400
    assert trader.post("/heartbeat", {"timeout_s": 60}).json()["timeout_s"] == 60
    assert trader.delete("/heartbeat").json()["armed"] is False
    # A key without the trade scope cannot arm one.
    account_id = trader.account_id  # type: ignore[attr-defined]
    reader_key = admin.post("/keys", {"account_id": account_id, "scopes": ["read"]})
    reader = SignedClient(live.api, reader_key["api_key"], reader_key["api_secret"])
    assert reader.post("/heartbeat", {"timeout_s": 10}).status_code == 403


def test_the_socket_arms_the_switch_of_its_key(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market, _ = markets(admin)
    trader = admin.account("desk", 1_000)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        refused = await client.request({"op": "heartbeat", "params": {"timeout_s": TIMEOUT_S}})
        assert (refused["type"], refused["error"]["code"]) == ("error", "UNAUTHORIZED")
        assert (await client.auth(trader.api_key, trader.api_secret))["type"] == "authenticated"
        bad = await client.request({"op": "heartbeat", "params": {"timeout_s": 2}})
        assert (bad["type"], bad["status"], bad["error"]["code"]) == (
            "error",
            400,
            "INVALID_REQUEST",
        )
        placed = await client.request(
            {
                "op": "place_order",
                "params": {"market_id": market, "side": "buy", "price": 0.4, "size": 5},
            }
        )
        assert placed["status"] == 201, placed
        armed = await client.request({"op": "heartbeat", "params": {"timeout_s": TIMEOUT_S}})
        assert (armed["type"], armed["op"], armed["status"]) == ("result", "heartbeat", 200)
        assert (armed["data"]["armed"], armed["data"]["timeout_s"]) == (True, TIMEOUT_S)
        # The connection stays open but says nothing more: the switch fires all the same.
        order_id = placed["data"]["order_id"]
        await asyncio.to_thread(
            wait_for, lambda: canceled_by_switch(trader, order_id), "the socket's order canceled"
        )
        off = await client.request({"op": "heartbeat", "params": {"timeout_s": 0}})
        assert off["data"] == {"armed": False, "timeout_s": 0, "deadline": None}
        await client.close()

    asyncio.run(run())


def test_a_deadline_that_lapsed_while_the_server_was_down_fires_at_recovery(
    tmp_path: Path, database_url: str
) -> None:
    var = tmp_path / "var"
    with live_server(var, database_url=database_url) as server:
        admin = Admin(server.api, server.admin_token)
        market, _ = markets(admin)
        desk, calm = admin.account("desk", 1_000), admin.account("calm", 1_000)
        lapsing = rest(desk, market)
        lasting = rest(calm, market, 0.3)
        deadline = ms(desk.post("/heartbeat", {"timeout_s": TIMEOUT_S}).json()["deadline"])
        assert calm.post("/heartbeat", {"timeout_s": 60}).status_code == 200
    # Down past the desk's deadline (not the calm key's).
    wait_for(lambda: time.time() * 1000 > deadline + 500, "the deadline to pass while down")
    with live_server(var, database_url=database_url) as server:
        desk = SignedClient(server.api, desk.api_key, desk.api_secret)
        calm = SignedClient(server.api, calm.api_key, calm.api_secret)
        # Recovery fired it before serving: the order is canceled at the first look.
        assert canceled_by_switch(desk, lapsing)
        assert order(calm, lasting)["status"] == "open"
        # The calm key's switch is still armed (its heartbeat is answered as moving it on).
        assert calm.post("/heartbeat", {"timeout_s": 60}).json()["armed"] is True
