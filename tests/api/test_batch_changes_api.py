"""Batch cancel (DELETE /v1/orders/batch) and batch amend (PATCH /v1/orders/batch) on a real
server: each item succeeds or fails alone, in order, every item checked before any runs."""

from __future__ import annotations

import random
from typing import Any

from tests.live_server import LiveServer
from tests.signed_client import Admin, SignedClient


def market(admin: Admin) -> str:
    name = f"bc-{random.randrange(10**9)}"
    admin.market(name)
    return name


def rest(trader: SignedClient, market_id: str, price: float, size: int = 10) -> str:
    body = {"market_id": market_id, "side": "buy", "price": price, "size": size}
    response = trader.post("/orders", body)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["results"]
    return found


def codes(found: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [
        (r["status"], r["order"]["status"] if "order" in r else r["error"]["code"]) for r in found
    ]


def test_batch_cancel_answers_each_id_in_order(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    m = market(admin)
    alice, bob = admin.account("alice", 1_000), admin.account("bob", 1_000)
    first, second = rest(alice, m, 0.40), rest(alice, m, 0.41)
    done = rest(alice, m, 0.42)
    assert alice.delete(f"/orders/{done}").status_code == 200
    bobs = rest(bob, m, 0.30)
    body = {"order_ids": [first, "ord_999999999", "nonsense", done, bobs, second, first]}
    found = results(alice.request("DELETE", "/orders/batch", body))
    assert codes(found) == [
        (200, "canceled"),
        (404, "ORDER_NOT_FOUND"),
        (404, "ORDER_NOT_FOUND"),
        (409, "ORDER_NOT_CANCELABLE"),
        (404, "ORDER_NOT_FOUND"),  # another account's order is not this one's to see
        (200, "canceled"),
        (409, "ORDER_NOT_CANCELABLE"),  # canceled earlier in this same batch
    ]
    assert found[0]["order"]["order_id"] == first
    assert found[0]["order"]["cancel_reason"] == "user"
    assert found[1]["error"]["details"] == {"order_id": "ord_999999999"}
    assert alice.get(f"/orders/{second}").json()["status"] == "canceled"
    assert bob.get(f"/orders/{bobs}").json()["status"] == "open"


def test_batch_cancel_refuses_a_malformed_batch_whole(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    m = market(admin)
    alice = admin.account("alice", 1_000)
    kept = rest(alice, m, 0.40)
    for body in ({"order_ids": []}, {"order_ids": [kept] * 21}, {}, {"order_ids": [kept, 7]}):
        response = alice.request("DELETE", "/orders/batch", body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert alice.get(f"/orders/{kept}").json()["status"] == "open"
    # The single-order routes still take their own ids.
    assert alice.delete("/orders/batch").status_code in (400, 404)
    assert alice.get(f"/orders/{kept}").json()["status"] == "open"


def test_batch_amend_checks_every_item_first(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    m = market(admin)
    alice = admin.account("alice", 1_000)
    smaller, repriced, untouched = rest(alice, m, 0.40), rest(alice, m, 0.41), rest(alice, m, 0.2)
    gone = rest(alice, m, 0.42)
    alice.delete(f"/orders/{gone}")
    body = {
        "orders": [
            {"order_id": smaller, "size": 4},
            {"order_id": untouched, "price": 0.4005},  # off the grid: its slot only
            {"order_id": repriced, "price": 0.45, "size": 12},
            {"order_id": gone, "size": 1},
            {"order_id": "ord_x", "size": 1},
            {"order_id": untouched, "size": 9_000},  # too poor for it
        ]
    }
    found = results(alice.patch("/orders/batch", body))
    assert [r["status"] for r in found] == [200, 400, 200, 409, 404, 400]
    assert (found[0]["order"]["size"], found[0]["order"]["price"]) == (4, 0.4)
    assert (found[2]["order"]["size"], found[2]["order"]["price"]) == (12, 0.45)
    assert found[1]["error"]["code"] == "INVALID_PRICE"
    assert found[5]["error"]["code"] == "INSUFFICIENT_BALANCE"
    assert alice.get(f"/orders/{untouched}").json()["size"] == 10
    # An item that asks for nothing is refused in its slot; a batch of 21 as a whole.
    empty = results(alice.patch("/orders/batch", {"orders": [{"order_id": smaller}]}))
    assert (empty[0]["status"], empty[0]["error"]["code"]) == (400, "INVALID_REQUEST")
    too_many = alice.patch("/orders/batch", {"orders": [{"order_id": smaller, "size": 1}] * 21})
    assert too_many.status_code == 400
