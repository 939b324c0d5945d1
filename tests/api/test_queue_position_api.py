"""GET /v1/orders/{id}/queue_position on a real server: what rests ahead of an open order at
its price, by time priority; 404 for an order that is not the account's, 409 once it is done."""

from __future__ import annotations

import random

from tests.live_server import LiveServer
from tests.signed_client import Admin, SignedClient


def rest(trader: SignedClient, market_id: str, side: str, price: float, size: int) -> str:
    body = {"market_id": market_id, "side": side, "price": price, "size": size}
    response = trader.post("/orders", body)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def test_queue_position_counts_what_rests_ahead_at_the_price(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    m = f"qp-{random.randrange(10**9)}"
    admin.market(m)
    alice, bob, carol = (admin.account(n, 1_000) for n in ("alice", "bob", "carol"))
    first = rest(bob, m, "sell", 0.6, 10)
    rest(carol, m, "sell", 0.59, 50)  # a better price: not in the queue at 0.6
    second = rest(carol, m, "sell", 0.6, 7)
    mine = rest(alice, m, "sell", 0.6, 5)
    rest(bob, m, "sell", 0.6, 100)  # behind alice
    rest(bob, m, "buy", 0.6 - 0.1, 30)  # the other side

    position = alice.get(f"/orders/{mine}/queue_position")
    assert position.status_code == 200, position.text
    assert position.json() == {
        "order_id": mine,
        "price": 0.6,
        "contracts_ahead": 17,
        "orders_ahead": 2,
    }
    assert bob.get(f"/orders/{first}/queue_position").json()["contracts_ahead"] == 0
    # A taker eats into the head; a cancel ahead moves alice up.
    taken = admin.account("dave", 1_000).post(
        "/orders", {"market_id": m, "side": "buy", "price": 0.6, "size": 54}
    )
    assert taken.status_code == 201, taken.text  # 50 at 0.59, then 4 of bob's 10
    assert alice.get(f"/orders/{mine}/queue_position").json()["contracts_ahead"] == 13
    assert carol.delete(f"/orders/{second}").status_code == 200
    after = alice.get(f"/orders/{mine}/queue_position").json()
    assert (after["contracts_ahead"], after["orders_ahead"]) == (6, 1)

    # Not theirs, unknown or not an id: 404. Finished: 409.
    for who, ref in ((bob, mine), (alice, "ord_999999999"), (alice, "bogus")):
        missing = who.get(f"/orders/{ref}/queue_position")
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "ORDER_NOT_FOUND"
    done = carol.get(f"/orders/{second}/queue_position")
    assert done.status_code == 409, done.text
    error = done.json()["error"]
    assert (error["code"], error["details"]["status"]) == ("ORDER_NOT_CANCELABLE", "canceled")
