from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import fresh_database
from tests.live_server import LiveServer, live_server
from tests.signed_client import Admin


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    with live_server(tmp_path / "var", database_url=database_url) as live:
        yield live


@pytest.fixture
def admin(server: LiveServer) -> Admin:
    return Admin(server.api, server.admin_token)
