from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import databases
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


# Seconds each long module took in a whole run (2 workers, load about 10); any module not
# listed counts as _DEFAULT_SECONDS, or _E2E_SECONDS under tests/e2e (they start `ballast serve`).
# `make pytest` hands modules to pytest-xdist workers in collection order (loadscope with
# --no-loadscope-reorder), so the long ones are collected first: otherwise one starts late and
# runs alone at the end while the other worker waits (its default order is by test count).
MODULE_SECONDS = {
    "tests/e2e/test_snapshot_crash.py": 170,
    "tests/e2e/test_crash_recovery.py": 140,
    "tests/e2e/test_gateway_failures.py": 100,
    "tests/e2e/test_gateways.py": 80,
    "tests/api/test_write_contention_api.py": 70,
    "tests/api/test_dead_man_api.py": 70,
    "tests/domain/test_engine_properties.py": 65,
    "tests/e2e/test_one_server_per_store.py": 60,
    "tests/e2e/test_settlement_lifecycle.py": 55,
    "tests/sdk/test_cli.py": 42,
    "tests/api/test_snapshots_api.py": 42,
    "tests/api/test_settlement_api.py": 40,
    "tests/domain/test_twins.py": 37,
    "tests/e2e/test_sandbox.py": 37,
    "tests/sdk/test_cli_terminal.py": 34,
    "tests/api/test_restart_api.py": 34,
    "tests/dashboard/test_trader_views.py": 30,
    "tests/api/test_schemathesis_api.py": 30,
    "tests/api/test_trading_api.py": 30,
    "tests/api/test_concurrency_api.py": 29,
    "tests/dashboard/test_dashboard.py": 25,
    "tests/e2e/test_admin_cli_text.py": 23,
    "tests/api/test_connection_limits_api.py": 22,
    "tests/domain/test_reference_matcher.py": 20,
    "tests/api/test_portfolio_history_api.py": 18,
    "tests/api/test_market_data_api.py": 17,
    "tests/api/test_metrics_api.py": 17,
    "tests/dashboard/test_login_hardening.py": 16,
    "tests/api/test_market_discovery_api.py": 15,
    "tests/e2e/test_admin_cli.py": 15,
    "tests/stream/test_connections.py": 15,
    "tests/e2e/test_ci_services.py": 1,
    "tests/e2e/test_feed_clamp.py": 1,
}
_DEFAULT_SECONDS = 5
_E2E_SECONDS = 30


def _module_seconds(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    default = _E2E_SECONDS if module.startswith("tests/e2e/") else _DEFAULT_SECONDS
    return MODULE_SECONDS.get(module, default)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest modules first; a module's tests keep their order (the sort is stable)."""
    items.sort(key=lambda item: -_module_seconds(item))


def pytest_sessionfinish(session: pytest.Session) -> None:
    databases.finish()
