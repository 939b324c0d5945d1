"""The sandbox faucet: a signed deposit of test USDC, capped per account per UTC day, counted
from the stored ledger (so a restart does not reset it), and absent in production."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.live_server import free_port, live_server
from tests.signed_client import Admin

USDC = 1_000_000
FAUCET = {"faucet_amount": 10_000 * USDC, "faucet_daily_cap": 25_000 * USDC}


def test_faucet_deposits_up_to_the_daily_cap_and_remembers_it(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    settings = {"database_url": database_url, "port": port, "env": "sandbox", **FAUCET}
    with live_server(tmp_path / "var", **settings) as server:
        admin = Admin(server.api, server.admin_token)
        trader = admin.account("faucet user", 0)
        first = trader.post("/account/faucet")
        assert first.status_code == 200, first.text
        assert first.json()["amount"] == 10_000
        assert first.json()["balance"]["total_balance"] == 10_000
        second = trader.post("/account/faucet", {"amount": "12000.5"})
        assert second.json()["granted_today"] == 22_000.5
        refused = trader.post("/account/faucet")
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "FAUCET_LIMIT_EXCEEDED"
        assert error["details"]["granted_today"] == 22_000.5
        assert error["details"]["daily_cap"] == 25_000
        assert error["details"]["resets_at"].endswith("T00:00:00.000Z")
        assert 0 < int(refused.headers["Retry-After"]) <= 86_400
        balance = trader.get("/account/balance").json()
        assert balance["total_balance"] == 22_000.5  # the refusal moved nothing
        for bad in ({"amount": -1}, {"amount": "lots"}, {"amount": "0.0000001"}, {"x": 1}):
            response = trader.post("/account/faucet", bad)
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["error"]["code"] == "INVALID_REQUEST"

    # The cap is counted from the stored ledger: a restart does not reset it.
    with live_server(tmp_path / "var", **settings) as server:
        trader.api = server.api
        assert trader.post("/account/faucet").status_code == 429
        last = trader.post("/account/faucet", {"amount": 2_999.5})
        assert last.status_code == 200, last.text
        assert last.json()["balance"]["total_balance"] == 25_000
        trader.close()


def test_concurrent_requests_cannot_pass_the_cap_together(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", env="sandbox", **FAUCET) as server:
        admin = Admin(server.api, server.admin_token)
        trader = admin.account("greedy", 0)
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(
                pool.map(lambda _: trader.post("/account/faucet").status_code, range(6))
            )
        assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
        assert trader.get("/account/balance").json()["total_balance"] == 20_000
        reader_keys = admin.post(
            "/keys",
            {"account_id": trader.account_id, "scopes": ["read"]},  # type: ignore[attr-defined]
        )
        reader = type(trader)(server.api, reader_keys["api_key"], reader_keys["api_secret"])
        assert reader.post("/account/faucet").json()["error"]["code"] == "FORBIDDEN"
        assert trader.http.post(f"{server.api}/account/faucet").status_code == 401
        reader.close()
        trader.close()


def test_production_has_no_faucet(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", env="production") as server:
        admin = Admin(server.api, server.admin_token)
        trader = admin.account("live desk", 100)
        response = trader.post("/account/faucet")
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert trader.get("/account/balance").json()["total_balance"] == 100
        assert "/v1/account/faucet" not in server_paths(server.api)
        trader.close()


def server_paths(api: str) -> set[str]:
    return set(httpx.get(f"{api}/openapi.json").json()["paths"])
