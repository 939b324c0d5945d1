"""Rate limits over real HTTP (spec "Rate limits", DESIGN §7): headers, 429s, buckets, tiers,
and a Redis backend shared by two servers.

The limiter keeps no state in the database, so these run on SQLite only. Windows are fixed
and aligned to the minute: a test that counts requests first makes sure it is not about to
cross into the next window.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.live_server import LiveServer, live_server
from tests.services import require_redis
from tests.signed_client import Admin, SignedClient

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def settle(response: httpx.Response) -> None:
    """After a 5xx, let the server thread finish logging its traceback before we fail.

    On Python 3.11 the traceback module's ast.parse shares state between threads: pytest
    formatting our failure while the server formats its own traceback can crash pytest itself.
    """
    if response.status_code >= 500:
        time.sleep(0.3)


def fresh_window(margin: float = 3.0) -> None:
    """Wait for the next minute if fewer than ``margin`` seconds are left in this one."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def limits(response: httpx.Response) -> tuple[int, int, int]:
    """The rate-limit headers as (limit, remaining, reset), checked for sanity."""
    settle(response)
    missing = [name for name in RATE_HEADERS if name not in response.headers]
    assert not missing, (
        response.status_code,
        response.request.url,
        missing,
        dict(response.headers),
    )
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    now = time.time()
    assert 0 <= remaining <= limit, dict(response.headers)
    # Unix seconds (not milliseconds, not "seconds from now"), within the next minute.
    assert now - 1 < reset <= now + 61, (reset, now)
    return limit, remaining, reset


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    assert "Traceback" not in response.text
    code: str = body["error"]["code"]
    return code


def assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert error_code(response) == "RATE_LIMIT_EXCEEDED"
    _, remaining, reset = limits(response)
    assert remaining == 0
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert abs((time.time() + retry_after) - reset) <= 2, (retry_after, reset)


def open_market(boss: Admin) -> str:
    market_id = f"rl-{uuid.uuid4().hex[:10]}"
    boss.market(market_id)
    return market_id


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The spec's limits: 100 a minute per IP, 300 per key."""
    with live_server(tmp_path_factory.mktemp("rl-default") / "var") as server:
        yield server


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """5 requests a minute per key (public requests are not the subject here)."""
    data_dir = tmp_path_factory.mktemp("rl-tight") / "var"
    with live_server(data_dir, private_rate_limit=5, public_rate_limit=10_000) as server:
        yield server


@pytest.fixture(scope="module")
def tight_admin(tight_server: LiveServer) -> Iterator[Admin]:
    admin = Admin(tight_server.api, tight_server.admin_token)
    yield admin
    admin.http.close()


# --- headers -----------------------------------------------------------------------------------


def test_every_api_response_carries_the_headers(
    default_server: LiveServer, http: httpx.Client
) -> None:
    api = default_server.api
    boss = Admin(api, default_server.admin_token)
    client = boss.account("headers")
    market = open_market(boss)
    fresh_window()
    public = [
        http.get(f"{api}/time"),
        http.get(f"{api}/markets"),
        http.get(f"{api}/markets/{market}/orderbook"),
        http.get(f"{api}/markets/no-such-market"),  # 404 MARKET_NOT_FOUND
        http.get(f"{api}/markets/{market}/orderbook?depth=0"),  # 400
        http.get(f"{api}/no-such-route"),  # 404
        http.put(f"{api}/markets"),  # 405
        http.get(f"{api}/orders"),  # 401 without a key
        http.get(f"{api}/orders", headers={"Authorization": "Bearer bmkt_test_unknown"}),  # 401
    ]
    statuses = [r.status_code for r in public]
    assert statuses == [200, 200, 200, 404, 400, 404, 405, 401, 401], statuses
    without = [
        (r.status_code, str(r.request.url)) for r in public if RATE_HEADERS[0] not in r.headers
    ]
    assert not without, f"responses without X-RateLimit-* headers: {without}"
    remaining_seen = []
    for response in public:
        limit, remaining, _ = limits(response)
        assert limit == 100, (response.request.url, limit)
        remaining_seen.append(remaining)
    # One IP bucket: each request counts once.
    assert remaining_seen == sorted(remaining_seen, reverse=True)
    assert len(set(remaining_seen)) == len(remaining_seen), remaining_seen

    private = [
        client.get("/account/balance"),
        client.get("/orders?status=open"),
        client.post("/orders", {"market_id": market, "side": "buy", "price": 0.4, "size": 1}),
        client.post("/orders", {"market_id": market, "side": "buy", "price": "abc", "size": 1}),
        client.get("/orders/ord_999999999"),  # 404
        client.get("/orders", headers={"X-BM-Signature": "0" * 64}),  # 401 bad signature
        client.get("/orders", timestamp=int(time.time() * 1000) - 40_000),  # 401 expired
    ]
    statuses = [r.status_code for r in private]
    assert statuses == [200, 200, 201, 400, 404, 401, 401], statuses
    for response in private:
        limit, _, _ = limits(response)
        # A failed authentication spends the IP's budget, never the key's (issue 13 #8).
        expected = 100 if response.status_code == 401 else 300
        assert limit == expected, (response.request.url, limit)
    client.close()
    boss.http.close()


def test_body_limit_rejections_carry_the_headers(
    default_server: LiveServer, http: httpx.Client
) -> None:
    """413 and 415 are responses too: they carry the headers (and count like any request)."""
    api = default_server.api
    json_type = {"Content-Type": "application/json"}
    responses = [
        http.post(f"{api}/orders", content=b"x" * (64 * 1024 + 1), headers=json_type),
        http.post(f"{api}/orders", content=b"{}", headers={"Content-Type": "text/plain"}),
    ]
    assert [r.status_code for r in responses] == [413, 415]
    without = [
        (r.status_code, str(r.request.url)) for r in responses if RATE_HEADERS[0] not in r.headers
    ]
    assert not without, f"responses without X-RateLimit-* headers: {without}"
    for response in responses:
        limits(response)


def test_responses_outside_v1_carry_the_headers(
    default_server: LiveServer, http: httpx.Client
) -> None:
    """DESIGN §7: *every* response, including a 404 for a path outside the API's base."""
    for path in ("/nope", "/v2/markets"):
        response = http.get(default_server.url + path)
        assert response.status_code == 404
        limits(response)


# --- public: per IP ------------------------------------------------------------------------------


def test_public_limit_per_ip(tmp_path: Path, http: httpx.Client) -> None:
    with live_server(tmp_path / "var", public_rate_limit=5) as server:
        boss = Admin(server.api, server.admin_token)
        client = boss.account("public")
        market = open_market(boss)
        fresh_window()
        seen = []
        for _ in range(5):
            response = http.get(f"{server.api}/markets/{market}")
            assert response.status_code == 200, response.text
            seen.append(limits(response)[:2])
        assert seen == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0)]

        assert_429(http.get(f"{server.api}/markets/{market}"))
        # The whole IP is limited, on every public endpoint ...
        assert_429(http.get(f"{server.api}/time"))
        assert_429(http.get(f"{server.api}/markets/{market}/orderbook"))
        # ... and an unknown key is not a way around it.
        bogus = http.get(
            f"{server.api}/markets", headers={"Authorization": "Bearer bmkt_test_bogus"}
        )
        assert_429(bogus)

        # A real key has its own bucket, on market data and trading alike.
        signed_public = client.get(f"/markets/{market}")
        assert signed_public.status_code == 200, signed_public.text
        balance = client.get("/account/balance")
        assert balance.status_code == 200, balance.text
        assert limits(balance)[0] == 300
        client.close()
        boss.http.close()


# --- private: per key ----------------------------------------------------------------------------


def test_private_limit_per_key(
    tight_server: LiveServer, tight_admin: Admin, http: httpx.Client
) -> None:
    market = open_market(tight_admin)
    alice = tight_admin.account(f"alice-{uuid.uuid4().hex[:6]}")
    bob = tight_admin.account(f"bob-{uuid.uuid4().hex[:6]}")
    data = tight_admin.post("/keys", {"account_id": alice.account_id, "label": "second"})  # type: ignore[attr-defined]
    alice2 = SignedClient(tight_server.api, data["api_key"], data["api_secret"])
    fresh_window()

    seen = []
    for _ in range(5):
        response = alice.get("/account/balance")
        assert response.status_code == 200, response.text
        seen.append(limits(response)[:2])
    assert seen == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0)]

    assert_429(alice.get("/account/balance"))
    # A refused order is not placed.
    order = {"market_id": market, "side": "buy", "price": 0.4, "size": 1}
    assert_429(alice.post("/orders", order))

    # Other keys have their own buckets: another account's, and the same account's second key.
    for other in (bob, alice2):
        response = other.get("/account/balance")
        assert response.status_code == 200, response.text
        assert limits(response)[:2] == (5, 4)
    assert alice2.get("/orders?status=all").json()["orders"] == []

    # Public requests from the same IP count elsewhere.
    public = http.get(f"{tight_server.api}/time")
    assert public.status_code == 200
    assert limits(public)[0] == 10_000
    for client in (alice, bob, alice2):
        client.close()


def test_tier_override_raises_one_keys_limit(tight_server: LiveServer, tight_admin: Admin) -> None:
    maker = tight_admin.account(f"maker-{uuid.uuid4().hex[:6]}")
    other = tight_admin.account(f"other-{uuid.uuid4().hex[:6]}")
    changed = tight_admin.post(f"/keys/{maker.api_key}/tier", {"tier": "50"})
    assert changed["tier"] == "50"
    fresh_window()

    for expected in range(49, 41, -1):  # 8 requests, beyond the default 5
        response = maker.get("/account/balance")
        assert response.status_code == 200, response.text
        assert limits(response)[:2] == (50, expected)
    # The default still holds for everyone else.
    response = other.get("/account/balance")
    assert response.status_code == 200
    assert limits(response)[0] == 5

    # The named market-maker tier is higher still.
    tight_admin.post(f"/keys/{maker.api_key}/tier", {"tier": "market_maker"})
    response = maker.get("/account/balance")
    assert response.status_code == 200
    assert limits(response)[0] > 50

    # Back to the default: 10 requests already this minute is over 5.
    tight_admin.post(f"/keys/{maker.api_key}/tier", {"tier": None})
    assert_429(maker.get("/account/balance"))

    # A tier given when the key is made applies from its first request.
    made = tight_admin.post(
        "/keys",
        {"account_id": other.account_id, "label": "fast", "tier": "20"},  # type: ignore[attr-defined]
    )
    fast = SignedClient(tight_server.api, made["api_key"], made["api_secret"])
    response = fast.get("/account/balance")
    assert response.status_code == 200
    assert limits(response)[:2] == (20, 19)

    # Nonsense tiers and unknown keys are refused in the envelope.
    bad = tight_admin.http.post(
        f"{tight_server.api}/admin/keys/{maker.api_key}/tier", json={"tier": "fast"}
    )
    assert bad.status_code == 400 and error_code(bad) == "INVALID_REQUEST"
    unknown = tight_admin.http.post(
        f"{tight_server.api}/admin/keys/bmkt_test_nope/tier", json={"tier": "50"}
    )
    assert unknown.status_code == 404
    for client in (maker, other, fast):
        client.close()


# --- Redis: shared by servers --------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(require_redis())
    yield client
    client.close()


def test_two_servers_on_one_redis_share_the_counts(
    tmp_path: Path, http: httpx.Client, redis_client: redis.Redis
) -> None:
    url = require_redis()
    # The per-IP bucket (ip:127.0.0.1) is shared with anything else on this Redis, so the limit
    # is far above what anyone uses and the test measures from what it sees.
    settings: dict[str, Any] = {
        "redis_url": url,
        "public_rate_limit": 1_000_000,
        "private_rate_limit": 5,
    }
    with (
        live_server(tmp_path / "a", **settings) as server_a,
        live_server(tmp_path / "b", **settings) as server_b,
    ):
        boss = Admin(server_a.api, server_a.admin_token)
        client = boss.account("shared")
        created_keys = [f"ballast:rl:key:{client.api_key}:*"]
        try:
            for attempt in range(2):
                fresh_window()
                sequence = []
                for server in (server_a, server_b, server_a, server_b):
                    response = http.get(f"{server.api}/time")
                    assert response.status_code == 200, response.text
                    sequence.append(limits(response))
                if len({reset for _, _, reset in sequence}) == 1 or attempt == 1:
                    break  # else a window turned over mid-way: measure again
            remaining = [r for _, r, _ in sequence]
            # Each server sees the other's requests: one count, strictly falling across both.
            # (Two in-memory limiters would each start again from their own count.)
            assert all(later < earlier for earlier, later in itertools.pairwise(remaining)), (
                remaining
            )

            # The Redis counter is the one both servers answered from.
            window_start = sequence[-1][2] - 60
            stored = redis_client.get(f"ballast:rl:ip:127.0.0.1:{window_start}")
            assert stored is not None
            assert int(stored) >= 1_000_000 - remaining[-1]

            # A key's bucket on Redis: 5, then 429 with Retry-After.
            fresh_window()
            for expected in (4, 3, 2, 1, 0):
                response = client.get("/account/balance")
                assert response.status_code == 200, response.text
                assert limits(response)[:2] == (5, expected)
            assert_429(client.get("/account/balance"))
            stored_key = redis_client.keys(f"ballast:rl:key:{client.api_key}:*")
            assert stored_key, "the key's counter is not in Redis"
            assert int(redis_client.get(stored_key[0]) or 0) == 6
            ttl = redis_client.ttl(stored_key[0])
            assert 0 < ttl <= 120, ttl
        finally:
            for pattern in created_keys:
                for key in redis_client.keys(pattern):
                    redis_client.delete(key)
            client.close()
            boss.http.close()


def test_redis_limits_survive_a_restart(tmp_path: Path, redis_client: redis.Redis) -> None:
    """A key's count lives in Redis, not in the process: restarting the server does not reset it."""
    url = require_redis()
    data_dir = tmp_path / "var"
    settings: dict[str, Any] = {"redis_url": url, "private_rate_limit": 3}
    fresh_window(6)
    with live_server(data_dir, **settings) as server:
        boss = Admin(server.api, server.admin_token)
        client = boss.account("restart")
        boss.http.close()
        for _ in range(3):
            assert client.get("/account/balance").status_code == 200
    try:
        with live_server(data_dir, **settings) as server:
            again = SignedClient(server.api, client.api_key, client.api_secret)
            assert_429(again.get("/account/balance"))
            again.close()
    finally:
        for key in redis_client.keys(f"ballast:rl:key:{client.api_key}:*"):
            redis_client.delete(key)
        client.close()


def test_memory_limiter_is_per_process(tmp_path: Path, http: httpx.Client) -> None:
    """The contrast to Redis: without it, each server counts only its own requests."""
    with (
        live_server(tmp_path / "a", public_rate_limit=3) as server_a,
        live_server(tmp_path / "b", public_rate_limit=3) as server_b,
    ):
        fresh_window()
        for _ in range(3):
            assert http.get(f"{server_a.api}/time").status_code == 200
        assert_429(http.get(f"{server_a.api}/time"))
        response = http.get(f"{server_b.api}/time")
        assert response.status_code == 200
        assert limits(response)[:2] == (3, 2)
