"""A real Ballast server for the SDK's tests, and helpers to make accounts and markets on it.

One SQLite server serves the whole session (the SDK's behaviour does not depend on the
database); every test makes its own markets and accounts, so tests never share state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ballast import BallastClient
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("sdk") / "var", **NO_LIMITS) as live:
        yield live


@pytest.fixture(scope="session")
def admin(server: LiveServer) -> Iterator[Admin]:
    boss = Admin(server.api, server.admin_token)
    yield boss
    boss.http.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


MarketFactory = Callable[..., str]
AccountFactory = Callable[..., dict[str, Any]]
ClientFactory = Callable[..., BallastClient]


@pytest.fixture
def new_market(admin: Admin) -> MarketFactory:
    """Create and open a market with a unique id; ``fields`` as the admin API takes them."""

    def make(kind: str = "binary", **fields: Any) -> str:
        market_id = unique(kind)
        admin.market(market_id, kind, **fields)
        return market_id

    return make


@pytest.fixture
def new_account(admin: Admin) -> AccountFactory:
    """Create a funded account: ``{"account_id", "api_key", "api_secret", ...}``."""

    def make(deposit: float = 10_000) -> dict[str, Any]:
        return admin.post("/accounts", {"name": unique("trader"), "deposit": deposit})

    return make


@pytest.fixture
def new_client(server: LiveServer, new_account: AccountFactory) -> Iterator[ClientFactory]:
    """A ``BallastClient`` on a new funded account (``account_id`` set on it for tests)."""
    made: list[BallastClient] = []

    def make(deposit: float = 10_000, **options: Any) -> BallastClient:
        account = new_account(deposit)
        client = BallastClient(
            account["api_key"], account["api_secret"], base_url=server.api, **options
        )
        client.account_id = account["account_id"]  # type: ignore[attr-defined]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


TIGHT_LIMIT = 3


@pytest.fixture(scope="session")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Admin]]:
    """A server allowing 3 private requests a minute per key."""
    data_dir: Path = tmp_path_factory.mktemp("tight") / "var"
    with live_server(data_dir, private_rate_limit=TIGHT_LIMIT, public_rate_limit=10**6) as server:
        boss = Admin(server.api, server.admin_token)
        yield server, boss
        boss.http.close()


def fresh_window(margin: float = 5.0) -> None:
    """Wait for the next minute if fewer than ``margin`` seconds are left in this one: the
    windows are fixed minutes, and a test counting requests must not straddle two."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)
