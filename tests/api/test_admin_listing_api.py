"""An operator's mistake is refused in the error envelope, not accepted: a market listed with a
close time already past would never trade (the settlement range is test_settlement_api.py's)."""

from __future__ import annotations

import time

import httpx

from tests.live_server import LiveServer


def create(server: LiveServer, close_time: object) -> httpx.Response:
    body = {"id": "late", "name": "late", "type": "binary", "close_time": close_time}
    return httpx.post(
        f"{server.api}/admin/markets",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )


def test_a_close_time_in_the_past_is_refused(server: LiveServer) -> None:
    for past in ("2020-01-01T00:00:00Z", int(time.time() * 1000) - 1_000):
        response = create(server, past)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "INVALID_REQUEST"
        assert error["details"]["field"] == "close_time"
        assert "is not in the future" in error["message"]
    assert httpx.get(f"{server.api}/markets/late").status_code == 404  # nothing was listed
    future = create(server, int(time.time() * 1000) + 3_600_000)
    assert future.status_code == 201, future.text
