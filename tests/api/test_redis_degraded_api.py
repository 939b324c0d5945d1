"""A Redis that stops answering, or refuses, must not slow or stop trading (issue 13 #4).

Rate limits and the replay cache fall back to the process after one short timeout; Redis is
retried on a schedule, not on every request; ``/readyz`` stays ready but says what is degraded;
``/metrics`` shows it; the log says it once per change of state.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.live_server import NO_LIMITS, live_server
from tests.scraped_metrics import reading, scrape
from tests.signed_client import Admin


@contextmanager
def unresponsive_peer() -> Iterator[tuple[int, list[int]]]:
    """A TCP server on loopback that takes connections and reads, and never answers: a Redis
    host that hangs. Yields its port and the count of connections it took (one element)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    taken = [0]
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            taken[0] += 1
            held.append(conn)  # kept open, never read from or written to

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], taken
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed on return: connecting is refused


def test_a_hanging_redis_costs_one_short_timeout_not_every_request(tmp_path: Path) -> None:
    with (
        unresponsive_peer() as (port, taken),
        live_server(tmp_path / "var", redis_url=f"redis://127.0.0.1:{port}/0", **NO_LIMITS) as live,
    ):
        admin = Admin(live.api, live.admin_token)
        admin.market("hang")
        trader = admin.account("hang-trader")
        slowest = 0.0
        for n in range(20):
            started = time.monotonic()
            body = {"market_id": "hang", "side": "buy", "price": 0.3, "size": 1}
            response = trader.post("/orders", body) if n % 2 else trader.get("/account/balance")
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code in (200, 201), response.text
        # Before the breaker every request waited 5 s on Redis; now only a probe may, briefly.
        assert slowest < 3.0, slowest
        assert 1 <= taken[0] <= 3, f"Redis was tried {taken[0]} times for 20 requests"
        ready = httpx.get(f"{live.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert "redis unavailable" in ready.json()["degraded"]["redis"]
        metrics = scrape(live)
        assert reading(metrics, "ballast_redis_up") == 0
        assert reading(metrics, "ballast_redis_fallbacks") >= 1


def test_a_refused_redis_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ballast_exchange.access.redis_breaker")
    url = f"redis://127.0.0.1:{refused_port()}/0"
    with live_server(tmp_path / "var", redis_url=url, **NO_LIMITS) as live:
        admin = Admin(live.api, live.admin_token)
        trader = admin.account("refused")
        for _ in range(30):
            assert trader.get("/account/balance").status_code == 200
    warnings = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
