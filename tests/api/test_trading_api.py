"""Trading over real HTTP: the spec's order shapes, history, amend, cancel, batch, idempotency."""

from __future__ import annotations

from tests.live_server import LiveServer
from tests.signed_client import Admin, SignedClient

SPEC_ORDER = {
    "market_id": "suez-apr2025",
    "side": "buy",
    "type": "limit",
    "price": 0.870,
    "size": 1000,
    "time_in_force": "GTC",
}


def setup(admin: Admin) -> tuple[SignedClient, SignedClient]:
    admin.market("suez-apr2025")
    return admin.account("alice", 10_000), admin.account("bob", 10_000)


def test_place_order_as_the_spec_shows(server: LiveServer, admin: Admin) -> None:
    alice, _ = setup(admin)
    response = alice.post("/orders", SPEC_ORDER)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["order_id"].startswith("ord_")
    assert order["status"] == "open"
    assert order["filled_size"] == 0
    assert order["remaining_size"] == 1000
    assert order["created_at"].endswith("Z")
    assert order["price"] == 0.87
    # Prices may come as decimal strings too.
    response = alice.post("/orders", {**SPEC_ORDER, "price": "0.865", "size": 5})
    assert response.status_code == 201, response.text
    assert response.json()["price"] == 0.865


def test_fills_positions_and_history(server: LiveServer, admin: Admin) -> None:
    alice, bob = setup(admin)
    resting = alice.post("/orders", SPEC_ORDER).json()
    taken = bob.post(
        "/orders", {"market_id": "suez-apr2025", "side": "sell", "price": 0.86, "size": 400}
    ).json()
    # Bob sells at 0.86 into Alice's 0.87 bid: fills at the resting price.
    assert taken["status"] == "filled"
    assert taken["filled_size"] == 400
    assert [(f["price"], f["size"]) for f in taken["fills"]] == [(0.87, 400)]

    order = alice.get(f"/orders/{resting['order_id']}").json()
    assert (order["status"], order["filled_size"], order["remaining_size"]) == ("open", 400, 600)

    positions = alice.get("/positions").json()["positions"]
    assert positions == [
        {
            "market_id": "suez-apr2025",
            "size": 400,
            "average_price": 0.87,
            "current_price": 0.87,
            "unrealized_pnl": 0.0,
            "realized_pnl": 0.0,
            "margin_used": 348.0,  # 400 × 0.87
        }
    ]
    bob_position = bob.get("/positions").json()["positions"][0]
    assert bob_position["size"] == -400
    assert bob_position["margin_used"] == 52.0  # 400 × (1 − 0.87)

    fills = alice.get("/fills").json()["fills"]
    assert len(fills) == 1
    assert fills[0]["liquidity"] == "maker"
    assert fills[0]["side"] == "buy"
    assert fills[0]["order_id"] == resting["order_id"]
    assert bob.get("/fills").json()["fills"][0]["liquidity"] == "taker"

    trades = alice.get("/markets/suez-apr2025/trades").json()["trades"]
    assert [(t["price"], t["size"], t["taker_side"]) for t in trades] == [(0.87, 400, "sell")]

    open_orders = alice.get("/orders?status=open").json()["orders"]
    assert [o["order_id"] for o in open_orders] == [resting["order_id"]]
    assert bob.get("/orders?status=open").json()["orders"] == []
    assert [o["order_id"] for o in bob.get("/orders?status=filled").json()["orders"]] == [
        taken["order_id"]
    ]


def test_balance_is_available_plus_reserved(server: LiveServer, admin: Admin) -> None:
    alice, bob = setup(admin)
    alice.post("/orders", SPEC_ORDER)  # reserves 1,000 × 0.87 = 870
    balance = alice.get("/account/balance").json()
    assert balance == {
        "total_balance": 10_000.0,
        "available": 9_130.0,
        "reserved": 870.0,
        "currency": "USDC",
    }
    bob.post("/orders", {"market_id": "suez-apr2025", "side": "sell", "price": 0.87, "size": 1000})
    balance = alice.get("/account/balance").json()
    # The reservation became position collateral: still reserved, still the same total.
    assert balance["reserved"] == 870.0
    assert balance["total_balance"] == balance["available"] + balance["reserved"] == 10_000.0


def test_order_history_by_date_and_pagination(server: LiveServer, admin: Admin) -> None:
    alice, _ = setup(admin)
    ids = [
        alice.post("/orders", {**SPEC_ORDER, "price": f"0.1{i}", "size": 1}).json()["order_id"]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        query = "/orders?status=all&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = alice.get(query).json()
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once
    today = alice.get("/time").json()["iso"][:10]
    assert len(alice.get(f"/orders?start_date={today}&end_date={today}").json()["orders"]) == 7
    assert alice.get("/orders?start_date=2020-01-01&end_date=2020-01-02").json()["orders"] == []


def test_cancel_cancel_all_and_amend(server: LiveServer, admin: Admin) -> None:
    alice, bob = setup(admin)
    first = alice.post("/orders", {**SPEC_ORDER, "size": 10}).json()["order_id"]
    second = alice.post("/orders", {**SPEC_ORDER, "price": 0.5, "size": 10}).json()["order_id"]
    third = alice.post("/orders", {**SPEC_ORDER, "price": 0.4, "size": 10}).json()["order_id"]

    canceled = alice.delete(f"/orders/{first}")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    again = alice.delete(f"/orders/{first}")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ORDER_NOT_CANCELABLE"

    amended = alice.patch(f"/orders/{second}", {"price": 0.55, "size": 6})
    assert amended.status_code == 200, amended.text
    assert (amended.json()["price"], amended.json()["size"]) == (0.55, 6)
    book = alice.get("/markets/suez-apr2025/orderbook").json()
    assert book["bids"] == [{"price": 0.55, "size": 6}, {"price": 0.4, "size": 10}]

    result = alice.delete("/orders?market_id=suez-apr2025").json()
    assert sorted(result["canceled"]) == sorted([second, third])
    assert alice.get("/account/balance").json()["reserved"] == 0.0
    assert bob.delete("/orders").json() == {"canceled": [], "count": 0}


def test_batch_orders_succeed_or_fail_independently(server: LiveServer, admin: Admin) -> None:
    alice, _ = setup(admin)
    body = {
        "orders": [
            {**SPEC_ORDER, "size": 1},
            {**SPEC_ORDER, "price": 0.8705, "size": 1},  # off the grid
            {**SPEC_ORDER, "market_id": "nowhere", "size": 1},
            {**SPEC_ORDER, "price": 0.2, "size": 2},
        ]
    }
    results = alice.post("/orders/batch", body).json()["results"]
    assert [r["status"] for r in results] == [201, 400, 404, 201]
    assert results[1]["error"]["code"] == "INVALID_PRICE"
    assert results[2]["error"]["code"] == "MARKET_NOT_FOUND"
    assert len(alice.get("/orders?status=open").json()["orders"]) == 2
    too_many = alice.post("/orders/batch", {"orders": [SPEC_ORDER] * 21})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "INVALID_REQUEST"


def test_client_order_id_retry_returns_the_first_result(server: LiveServer, admin: Admin) -> None:
    alice, _ = setup(admin)
    order = {**SPEC_ORDER, "client_order_id": "desk-7:0001"}
    first = alice.post("/orders", order)
    retry = alice.post("/orders", order)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["order_id"] == first.json()["order_id"]
    assert len(alice.get("/orders?status=open").json()["orders"]) == 1
    assert alice.get("/account/balance").json()["reserved"] == 870.0  # reserved once
    # Even after the order is gone, the id stays bound to it.
    alice.delete(f"/orders/{first.json()['order_id']}")
    again = alice.post("/orders", order)
    assert again.status_code == 200
    assert again.json()["status"] == "canceled"


def test_client_order_id_reused_for_another_order_is_refused(
    server: LiveServer, admin: Admin
) -> None:
    alice, _ = setup(admin)
    order = {**SPEC_ORDER, "client_order_id": "desk-7:0002"}
    first = alice.post("/orders", order).json()
    for change in ({"price": 0.86}, {"size": 999}, {"side": "sell"}, {"post_only": True}):
        reused = alice.post("/orders", {**order, **change})
        assert reused.status_code == 409, (change, reused.text)
        error = reused.json()["error"]
        assert error["code"] == "DUPLICATE_CLIENT_ORDER_ID"
        assert error["details"] == {"client_order_id": "desk-7:0002", "order_id": first["order_id"]}
    assert len(alice.get("/orders?status=open").json()["orders"]) == 1
    assert alice.post("/orders", order).status_code == 200  # the identical retry still answers


def test_orders_filter_by_client_order_id(server: LiveServer, admin: Admin) -> None:
    alice, _ = setup(admin)
    tagged = alice.post("/orders", {**SPEC_ORDER, "client_order_id": "find-me"}).json()
    alice.post("/orders", {**SPEC_ORDER, "client_order_id": "not-me"})
    alice.post("/orders", SPEC_ORDER)
    found = alice.get("/orders?status=all&client_order_id=find-me").json()["orders"]
    assert [o["order_id"] for o in found] == [tagged["order_id"]]
    assert alice.get("/orders?status=all&client_order_id=nobody").json()["orders"] == []


def test_market_orders_and_time_in_force(server: LiveServer, admin: Admin) -> None:
    alice, bob = setup(admin)
    bob.post("/orders", {"market_id": "suez-apr2025", "side": "sell", "price": 0.6, "size": 5})
    bob.post("/orders", {"market_id": "suez-apr2025", "side": "sell", "price": 0.7, "size": 5})
    bought = alice.post(
        "/orders", {"market_id": "suez-apr2025", "side": "buy", "type": "market", "size": 8}
    ).json()
    assert bought["status"] == "filled"
    assert [(f["price"], f["size"]) for f in bought["fills"]] == [(0.6, 5), (0.7, 3)]
    fok = alice.post("/orders", {**SPEC_ORDER, "price": 0.7, "size": 5, "time_in_force": "FOK"})
    assert fok.json()["status"] == "canceled"
    assert fok.json()["cancel_reason"] == "fok_unfilled"
    ioc = alice.post("/orders", {**SPEC_ORDER, "price": 0.7, "size": 5, "time_in_force": "IOC"})
    assert (ioc.json()["status"], ioc.json()["filled_size"]) == ("canceled", 2)
