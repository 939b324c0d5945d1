from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import fresh_database
from tests.live_server import NO_LIMITS, LiveServer, live_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A real server on each database, shared by a module's tests (each makes its own data).

    A module may set ``LIVE_SETTINGS`` for settings of its own (a fast stream heartbeat, say).
    """
    settings = {**NO_LIMITS, **getattr(request.module, "LIVE_SETTINGS", {})}
    tmp = tmp_path_factory.mktemp(f"live-{request.param}")
    with (
        fresh_database(request.param, tmp) as url,
        live_server(tmp / "var", database_url=url, **settings) as server,
    ):
        yield server
