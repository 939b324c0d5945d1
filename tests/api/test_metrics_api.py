"""/metrics over real HTTP: it parses as Prometheus text, and the counters move by exactly what
the tests did (orders placed, filled, canceled and rejected, rate limits hit, WebSocket
connections opened and refused)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live_server import LiveServer, live_server
from tests.scraped_metrics import Samples, delta, scrape, total, value
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient

OUR_FAMILIES = {
    "ballast_commands": "counter",
    "ballast_commands_refused": "counter",
    "ballast_orders": "counter",
    "ballast_trades": "counter",
    "ballast_traded_contracts": "counter",
    "ballast_matching_seconds": "histogram",
    "ballast_commit_batch_size": "histogram",
    "ballast_commit_seconds": "histogram",
    "ballast_commit_failures": "counter",
    "ballast_commit_backlog": "gauge",
    "ballast_exchange_healthy": "gauge",
    "ballast_open_orders": "gauge",
    "ballast_recovery_seconds": "gauge",
    "ballast_http_requests": "counter",
    "ballast_http_request_seconds": "histogram",
    "ballast_rate_limited": "counter",
    "ballast_stream_connections": "gauge",
    "ballast_stream_connections_opened": "counter",
    "ballast_stream_connections_refused": "counter",
    "ballast_stream_connections_cut": "counter",
}


def order(market_id: str, side: str, price: float, size: int, **extra: object) -> dict[str, object]:
    return {"market_id": market_id, "side": side, "price": price, "size": size, **extra}


def test_metrics_parse_with_help_and_are_not_rate_limited(live: LiveServer) -> None:
    response = httpx.get(f"{live.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response.headers  # exempt, like the health probes
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name, kind in OUR_FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, name
        assert families[name].documentation, name
    assert "process_cpu_seconds" in families  # the process collector, on our own registry
    samples = scrape(live)
    assert value(samples, "ballast_exchange_healthy") == 1.0
    assert value(samples, "ballast_commit_failures_total") == 0.0


def test_order_counters_move_by_what_was_done(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"metrics-{uuid.uuid4().hex[:8]}"
    admin.market(market)
    alice = admin.account("alice", 1_000)
    bob = admin.account("bob", 1_000)
    before = scrape(live)

    resting = alice.post("/orders", order(market, "buy", 0.6, 100))
    assert resting.status_code == 201, resting.text
    spare = alice.post("/orders", order(market, "buy", 0.5, 10))
    assert spare.status_code == 201, spare.text
    # Bob sells 100 into Alice's bid: one trade, both orders filled.
    taken = bob.post("/orders", order(market, "sell", 0.6, 100))
    assert taken.json()["status"] == "filled", taken.text
    canceled = alice.delete(f"/orders/{spare.json()['order_id']}")
    assert canceled.status_code == 200, canceled.text
    # Three rejections by the engine, each with its code.
    poor = alice.post("/orders", order(market, "buy", 0.9, 100_000))
    assert poor.json()["error"]["code"] == "INSUFFICIENT_BALANCE", poor.text
    bob.post("/orders", order(market, "sell", 0.7, 10))
    crossing = alice.post("/orders", order(market, "buy", 0.7, 5, post_only=True))
    assert crossing.json()["error"]["code"] == "POST_ONLY_WOULD_CROSS", crossing.text
    again = alice.delete(f"/orders/{spare.json()['order_id']}")
    assert again.json()["error"]["code"] == "ORDER_NOT_CANCELABLE", again.text
    after = scrape(live)

    def commands(command: str, outcome: str, code: str = "") -> float:
        return delta(
            before, after, "ballast_commands_total", command=command, outcome=outcome, code=code
        )

    assert commands("place_order", "accepted") == 4
    assert commands("place_order", "rejected", "INSUFFICIENT_BALANCE") == 1
    assert commands("place_order", "rejected", "POST_ONLY_WOULD_CROSS") == 1
    assert commands("cancel_order", "accepted") == 1
    # The second cancel reaches the engine as an unknown live order.
    assert commands("cancel_order", "rejected", "ORDER_NOT_FOUND") == 1

    def orders(outcome: str, reason: str = "") -> float:
        return delta(before, after, "ballast_orders_total", outcome=outcome, reason=reason)

    assert orders("accepted") == 4
    assert orders("filled") == 2  # Alice's bid and Bob's sell
    assert orders("canceled", "user") == 1
    assert orders("rejected", "INSUFFICIENT_BALANCE") == 1
    assert orders("rejected", "POST_ONLY_WOULD_CROSS") == 1
    assert delta(before, after, "ballast_trades_total", market=market) == 1
    assert delta(before, after, "ballast_traded_contracts_total", market=market) == 100
    assert value(after, "ballast_open_orders") - value(before, "ballast_open_orders") == 1

    # Every engine execution is timed, rejections included.
    timed = delta(before, after, "ballast_matching_seconds_count", command="place_order")
    assert timed == 6
    assert delta(before, after, "ballast_matching_seconds_sum", command="place_order") > 0
    assert (
        delta(before, after, "ballast_matching_seconds_bucket", command="place_order", le="+Inf")
        == 6
    )

    # Each accepted command is one journal item, stored by some group commit before its reply.
    accepted = total(after, "ballast_commands_total", outcome="accepted") - total(
        before, "ballast_commands_total", outcome="accepted"
    )
    assert accepted == 5
    assert delta(before, after, "ballast_commit_batch_size_sum") == accepted
    assert 1 <= delta(before, after, "ballast_commit_batch_size_count") <= accepted
    assert delta(before, after, "ballast_commit_seconds_count") == delta(
        before, after, "ballast_commit_batch_size_count"
    )

    # The HTTP view of the same requests, by route template.
    def requests(method: str, route: str, status: str) -> float:
        return delta(
            before,
            after,
            "ballast_http_requests_total",
            method=method,
            route=route,
            status=status,
        )

    assert requests("POST", "/v1/orders", "201") == 4
    assert requests("POST", "/v1/orders", "400") == 2
    assert requests("DELETE", "/v1/orders/{order_id}", "200") == 1
    assert requests("DELETE", "/v1/orders/{order_id}", "409") == 1
    assert (
        delta(
            before, after, "ballast_http_request_seconds_count", method="POST", route="/v1/orders"
        )
        == 6
    )


def test_api_refusals_before_the_engine_show_in_http_counts_only(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"metrics-{uuid.uuid4().hex[:8]}"
    admin.market(market)
    carol = admin.account("carol", 100)
    before = scrape(live)
    off_grid = carol.post("/orders", order(market, "buy", 0.8705, 1))
    assert off_grid.json()["error"]["code"] == "INVALID_PRICE"
    unknown = httpx.get(f"{live.api}/no/such/{uuid.uuid4().hex}", timeout=10)
    assert unknown.status_code == 404
    after = scrape(live)
    assert total(after, "ballast_commands_total") == total(before, "ballast_commands_total")
    assert (
        delta(
            before,
            after,
            "ballast_http_requests_total",
            method="POST",
            route="/v1/orders",
            status="400",
        )
        == 1
    )
    # Raw paths never become labels.
    assert (
        delta(
            before,
            after,
            "ballast_http_requests_total",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 1
    )


# ---------------------------------------------------------------- limits and the stream


def fresh_window(margin: float = 5.0) -> None:
    """Rate-limit windows are aligned to the minute: start counting well inside one."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with small limits (the limiter keeps no state in the database: SQLite)."""
    with live_server(
        tmp_path / "var",
        public_rate_limit=3,
        private_rate_limit=4,
        stream_connections_per_ip=2,
    ) as server:
        yield server


def test_rate_limit_rejections_are_counted_by_scope(limited: LiveServer) -> None:
    admin = Admin(limited.api, limited.admin_token)
    market = "metrics-limits"
    admin.market(market)
    trader = admin.account("trader", 1_000)
    fresh_window()
    before = scrape(limited)
    public = [httpx.get(f"{limited.api}/markets", timeout=10).status_code for _ in range(5)]
    assert public == [200, 200, 200, 429, 429]
    private = [trader.get("/orders").status_code for _ in range(6)]
    assert private == [200, 200, 200, 200, 429, 429]

    async def over_the_stream() -> dict[str, object]:
        client = await StreamClient.connect(limited.url)
        try:
            authed = await client.auth(trader.api_key, trader.api_secret)
            assert authed["type"] == "authenticated", authed
            params = order(market, "buy", 0.5, 1)
            return await client.request({"op": "place_order", "params": params})
        finally:
            await client.close()

    reply = asyncio.run(over_the_stream())
    assert reply["error"]["code"] == "RATE_LIMIT_EXCEEDED", reply  # type: ignore[index]
    # The scrapes themselves are not limited, however many.
    for _ in range(5):
        scrape(limited)
    after = scrape(limited)
    assert delta(before, after, "ballast_rate_limited_total", scope="public", via="http") == 2
    assert delta(before, after, "ballast_rate_limited_total", scope="private", via="http") == 2
    assert delta(before, after, "ballast_rate_limited_total", scope="private", via="stream") == 1
    # A 429 is refused before routing, and still counted under its route template.
    limited_gets = delta(
        before,
        after,
        "ballast_http_requests_total",
        method="GET",
        route="/v1/markets",
        status="429",
    )
    assert limited_gets == 2


def connections(samples: Samples) -> tuple[float, float]:
    return (
        value(samples, "ballast_stream_connections", auth="anonymous"),
        value(samples, "ballast_stream_connections", auth="key"),
    )


def eventually(server: LiveServer, check: object, timeout: float = 10) -> Samples:
    """Scrape until ``check(samples)`` holds (connections leave the hub asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if check(samples):  # type: ignore[operator]
            return samples
        assert time.monotonic() < deadline, connections(samples)
        time.sleep(0.05)


def test_websocket_connections_gauge_and_refusals(limited: LiveServer) -> None:
    admin = Admin(limited.api, limited.admin_token)
    trader: SignedClient = admin.account("streamer", 100)
    before = scrape(limited)
    assert connections(before) == (0, 0)

    async def run() -> None:
        first = await StreamClient.connect(limited.url)
        second = await StreamClient.connect(limited.url)
        await first.sync()
        await second.sync()
        assert connections(scrape(limited)) == (2, 0)
        # The address has its two unauthenticated connections: a third is refused.
        third = await StreamClient.connect(limited.url)
        refused = await third.wait_for(lambda m: m["type"] == "error")
        assert refused["error"]["code"] == "TOO_MANY_CONNECTIONS"
        await third.close()
        # Authenticating moves a connection from its address's count to its key's.
        assert (await first.auth(trader.api_key, trader.api_secret))["type"] == "authenticated"
        assert connections(scrape(limited)) == (1, 1)
        admin.post(f"/keys/{trader.api_key}/revoke")
        assert await first.closed_with() == 4001
        await second.close()

    asyncio.run(run())
    after = eventually(limited, lambda s: connections(s) == (0, 0))
    assert delta(before, after, "ballast_stream_connections_opened_total") == 2
    assert delta(before, after, "ballast_stream_connections_refused_total", limit="ip") == 1
    cut = "ballast_stream_connections_cut_total"
    assert delta(before, after, cut, reason="API key revoked") == 1
