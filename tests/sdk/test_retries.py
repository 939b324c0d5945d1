"""Safe retries against real servers: 429 with Retry-After, clock skew, lost responses and
unreachable servers."""

from __future__ import annotations

import math
import random
import socket
import time
from typing import Any

import httpx
import pytest

from ballast import (
    AsyncBallastClient,
    BallastClient,
    BallastError,
    InvalidPriceError,
    NetworkError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from ballast._core import HTTP_LIMITS
from ballast_exchange.config import Settings
from tests.live_server import LiveServer, free_port
from tests.sdk.conftest import (
    TIGHT_LIMIT,
    AccountFactory,
    ClientFactory,
    MarketFactory,
    fresh_window,
)
from tests.signed_client import Admin


def tight_account(tight: tuple[LiveServer, Admin]) -> dict[str, Any]:
    return tight[1].post("/accounts", {"name": "limited", "deposit": 1000})


def exhaust(client: BallastClient) -> None:
    for expected in range(TIGHT_LIMIT - 1, -1, -1):
        client.get_balance()
        assert client.rate_limit is not None
        assert (client.rate_limit.limit, client.rate_limit.remaining) == (TIGHT_LIMIT, expected)


def test_429_raises_rate_limit_error_with_retry_after(tight: tuple[LiveServer, Admin]) -> None:
    server, _ = tight
    account = tight_account(tight)
    fresh_window()
    with BallastClient(
        account["api_key"], account["api_secret"], base_url=server.api, max_retries=0
    ) as client:
        exhaust(client)
        started = time.monotonic()
        with pytest.raises(RateLimitError) as caught:
            client.get_positions()
        assert time.monotonic() - started < 1  # no retry: no waiting
        error = caught.value
        assert (error.code, error.status) == ("RATE_LIMIT_EXCEEDED", 429)
        assert client.rate_limit is not None and client.rate_limit.remaining == 0
        # Retry-After is the rest of the window, rounded up.
        left = client.rate_limit.reset.timestamp() - time.time()
        assert error.retry_after is not None
        assert 1 <= error.retry_after <= 60
        assert math.ceil(left) - 1 <= error.retry_after <= math.ceil(left) + 1


def test_429_longer_than_max_retry_wait_fails_fast(tight: tuple[LiveServer, Admin]) -> None:
    server, _ = tight
    account = tight_account(tight)
    fresh_window()
    with BallastClient(
        account["api_key"],
        account["api_secret"],
        base_url=server.api,
        max_retries=5,
        max_retry_wait=0.5,  # Retry-After is always at least 1 s
    ) as client:
        exhaust(client)
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            client.get_balance()
        assert time.monotonic() - started < 1


class RecordingClient(BallastClient):
    """Records the waits the client asks for. Instead of sleeping out the rest of the
    minute, it lifts the key's limit on the real server (as the window's end would) and
    returns, so the retry that follows runs against the server at once."""

    def __init__(self, admin: Admin, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admin = admin
        self.waits: list[tuple[float, float]] = []  # (asked, seconds left in the window)

    def _sleep(self, seconds: float) -> None:
        assert self.rate_limit is not None
        self.waits.append((seconds, self.rate_limit.reset.timestamp() - time.time()))
        assert self.api_key is not None
        self.admin.post(f"/keys/{self.api_key}/tier", {"tier": "100"})


def test_429_waits_as_retry_after_says_then_succeeds(tight: tuple[LiveServer, Admin]) -> None:
    server, admin = tight
    account = tight_account(tight)
    fresh_window()
    with RecordingClient(
        admin, account["api_key"], account["api_secret"], base_url=server.api, max_retries=2
    ) as client:
        exhaust(client)
        balance = client.get_balance()  # 429, wait, retry: 200
        assert balance.total_balance == 1000
        ((asked, left),) = client.waits
        # It waits the whole Retry-After (the rest of the window, rounded up), plus jitter.
        assert math.ceil(left) - 1 <= asked <= math.ceil(left) + 1.25
        assert asked >= 1
        assert client.rate_limit is not None and client.rate_limit.limit == 100


def test_clock_skew_is_corrected_once(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market = new_market()
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = new_client(http_client=http)
    for skew in (-120_000, 300_000):
        client.clock_offset_ms = skew  # as if the local clock were 2 min slow, then 5 min fast
        sent.clear()
        assert client.get_balance().currency == "USDC"
        assert abs(client.clock_offset_ms) < 2000
        assert [r.url.path for r in sent] == [
            "/v1/account/balance",
            "/v1/time",
            "/v1/account/balance",
        ]
    client.clock_offset_ms = -60_000
    order = client.place_order(market, "buy", price="0.5", size=1)
    assert client.get_order(order.id).status == "open"
    assert len(client.get_orders()) == 1
    http.close()


class LosesResponses(httpx.HTTPTransport):
    """A network that loses the first ``count`` responses to ``method`` after the server
    has acted on the request: the case a timeout leaves a client in."""

    def __init__(self, method: str, count: int = 1) -> None:
        super().__init__()
        self.method = method
        self.left = count

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == self.method and self.left > 0:
            self.left -= 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("the response was lost", request=request)
        return response


def test_a_retried_order_is_placed_once(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    network = LosesResponses("POST", count=2)
    http = httpx.Client(transport=network)
    with BallastClient(
        account["api_key"], account["api_secret"], base_url=server.api, http_client=http
    ) as client:
        order = client.place_order(market, "buy", price="0.5", size=3)
        assert network.left == 0  # two responses lost, the third arrived
        orders = client.get_orders(status="all")
        assert [o.id for o in orders] == [order.id]
        assert order.client_order_id == orders[0].client_order_id
    http.close()


def test_unsafe_calls_are_not_retried(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    http = httpx.Client(transport=LosesResponses("PATCH"))
    with BallastClient(
        account["api_key"], account["api_secret"], base_url=server.api, http_client=http
    ) as client:
        order = client.place_order(market, "buy", price="0.5", size=3)
        with pytest.raises(NetworkError) as caught:
            client.amend_order(order.id, size=2)
        assert (caught.value.code, caught.value.status) == ("NETWORK_ERROR", None)
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        assert client.get_order(order.id).size == 2  # the server did act, once
    http.close()


def test_unreachable_server() -> None:
    port = free_port()  # nothing listens here
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    with BallastClient(
        "bmkt_test_k",
        "bmkt_secret_s",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_retries=2,
        http_client=http,
    ) as client:
        with pytest.raises(NetworkError):
            client.get_markets()
        assert len(sent) == 3  # the first try and two retries
        sent.clear()
        with pytest.raises(NetworkError):
            client.amend_order("ord_1", size=1)
        assert len(sent) == 1
    http.close()
    with socket.socket() as probe:  # the port really was closed
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_retry_policy_decisions() -> None:
    policy = RetryPolicy(max_retries=3, max_retry_wait=30, rng=random.Random(7))
    limited = RateLimitError("slow down", status=429, retry_after=12)
    assert 12 <= (policy.delay(0, False, limited) or 0) <= 12.25  # 429: safe for any call
    assert policy.delay(3, True, limited) is None  # out of retries
    assert policy.delay(0, True, RateLimitError("", status=429, retry_after=45)) is None
    # A whole window (Retry-After 60) is still waited when max_retry_wait allows 60 s.
    whole = RetryPolicy(max_retries=1, max_retry_wait=60).delay(
        0, False, RateLimitError("", status=429, retry_after=60)
    )
    assert whole is not None and 60 <= whole <= 60.25
    down = ServiceUnavailableError("storage", status=503)
    assert policy.delay(0, False, down) is None  # an order without client_order_id: no
    first, second = policy.delay(0, True, down), policy.delay(1, True, down)
    assert first is not None and 0.125 <= first <= 0.25
    assert second is not None and 0.25 <= second <= 0.5
    assert (policy.delay(0, True, down, retry_after=5) or 0) >= 5
    assert policy.delay(0, True, down, retry_after=31) is None
    impatient = RetryPolicy(max_retries=3, max_retry_wait=0.1, backoff_base=1)
    assert impatient.delay(2, True, down) == 0.1  # backoff capped, not abandoned
    lost = NetworkError("reset")
    assert policy.delay(0, True, lost, retryable_failure=True) is not None
    assert policy.delay(0, False, lost, retryable_failure=True) is None
    rejected = InvalidPriceError("off grid", status=400)
    assert policy.delay(0, True, rejected) is None
    assert policy.delay(0, True, BallastError("?", code="HTTP_418", status=418)) is None


def test_idle_connections_are_dropped_before_the_server_closes_them() -> None:
    """A request sent on a kept-alive connection the server is closing at that moment gets no
    answer; the SDK lets idle connections go first (the write-contention soak's client, with
    5 s on both sides, once saw exactly that failure)."""
    server_idle_s = Settings().http_keep_alive_timeout_s
    assert HTTP_LIMITS.keepalive_expiry is not None
    assert HTTP_LIMITS.keepalive_expiry < server_idle_s
    for client in (BallastClient("k", "s"), AsyncBallastClient("k", "s")):
        pool = client._http._transport._pool  # httpcore's pool: what the client really uses
        assert pool._keepalive_expiry == HTTP_LIMITS.keepalive_expiry
