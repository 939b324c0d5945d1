"""The settlement endpoints' refusals and rules over real HTTP: binary 0 or 1, index within its
range, evidence a JSON object with a canonical form, proposals only on closed markets, operator
only. The whole lifecycle with restarts is tests/e2e/test_settlement_lifecycle.py."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
import rfc8785

from tests.live_server import LiveServer
from tests.signed_client import Admin

EVIDENCE = {"source": "Suez Canal Authority", "notices": ["open"], "transits": 1_204}


def admin_call(server: LiveServer, path: str, body: Any = None) -> httpx.Response:
    return httpx.post(
        f"{server.api}/admin{path}",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )


def closed_market(admin: Admin, market_id: str, kind: str = "binary") -> None:
    admin.market(market_id, kind)
    admin.post(f"/markets/{market_id}/close")


def test_binary_settles_only_to_zero_or_one(server: LiveServer, admin: Admin) -> None:
    closed_market(admin, "suez")
    for value in (0.5, 2, -1, "0.999"):
        response = admin_call(
            server, "/markets/suez/settlement/propose", {"value": value, "evidence": EVIDENCE}
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "INVALID_SETTLEMENT"
    assert httpx.get(f"{server.api}/markets/suez/settlement").json()["proposals"] == []
    ok = admin_call(server, "/markets/suez/settlement/propose", {"value": 1, "evidence": EVIDENCE})
    assert ok.status_code == 200, ok.text
    current = ok.json()["current"]
    assert current["value"] == 1.0
    assert current["evidence"] == EVIDENCE
    assert current["evidence_hash"] == hashlib.sha256(rfc8785.dumps(EVIDENCE)).hexdigest()
    assert current["outcome"] == "proposed" and current["proposer"] == "operator"


def test_index_outside_its_range_is_refused(server: LiveServer, admin: Admin) -> None:
    """An operator's value outside the range is refused, not clamped (the engine's clamp is
    for the sandbox feed, which reports it)."""
    closed_market(admin, "sgp", "index")
    for value in ("123.45", "-0.1", 100.1):
        response = admin_call(
            server, "/markets/sgp/settlement/propose", {"value": value, "evidence": EVIDENCE}
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "INVALID_SETTLEMENT"
        assert "outside the market's range 0.0 to 100.0" in error["message"]
        assert error["details"]["floor"] == 0.0 and error["details"]["cap"] == 100.0
    assert httpx.get(f"{server.api}/markets/sgp/settlement").json()["proposals"] == []
    assert httpx.get(f"{server.api}/markets/sgp").json()["status"] == "closed"
    response = admin_call(
        server, "/markets/sgp/settlement/propose", {"value": "100", "evidence": EVIDENCE}
    )
    assert response.status_code == 200, response.text
    assert response.json()["current"]["value"] == 100.0
    market = httpx.get(f"{server.api}/markets/sgp").json()
    assert market["settlement"]["value"] == 100.0 and market["status"] == "resolving"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 1, "evidence": ["not", "an", "object"]}, "evidence"),
        ({"value": 1, "evidence": {"n": 2**60}}, "evidence"),  # no exact JSON number for it
        ({"value": 1}, "evidence"),
        ({"value": "yes", "evidence": EVIDENCE}, "value"),
        ({"value": "0.0000001", "evidence": EVIDENCE}, "value"),
        ({"value": 1, "evidence": EVIDENCE, "extra": 1}, "extra"),
    ],
)
def test_bad_proposals_are_refused_whole(
    server: LiveServer, admin: Admin, body: dict[str, Any], field: str
) -> None:
    market_id = f"bad-{abs(hash(str(body))) % 10**8}"
    closed_market(admin, market_id)
    response = admin_call(server, f"/markets/{market_id}/settlement/propose", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"]["field"] == field
    assert httpx.get(f"{server.api}/markets/{market_id}").json()["status"] == "closed"


def test_lifecycle_order_is_enforced(server: LiveServer, admin: Admin) -> None:
    admin.market("early")
    body = {"value": 1, "evidence": EVIDENCE}
    response = admin_call(server, "/markets/early/settlement/propose", body)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "INVALID_TRANSITION"
    for step in ("overturn", "finalize"):
        response = admin_call(server, f"/markets/early/settlement/{step}")
        assert response.status_code == 409, response.text
    missing = admin_call(server, "/markets/nope/settlement/propose", body)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "MARKET_NOT_FOUND"
    assert httpx.get(f"{server.api}/markets/nope/settlement").status_code == 404


def test_only_the_operator_settles(server: LiveServer, admin: Admin) -> None:
    closed_market(admin, "guarded")
    trader = admin.account("trader")
    body = {"value": 1, "evidence": EVIDENCE}
    for headers in ({}, {"Authorization": f"Bearer {trader.api_key}"}):
        response = httpx.post(
            f"{server.api}/admin/markets/guarded/settlement/propose", json=body, headers=headers
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    signed = trader.post("/admin/markets/guarded/settlement/propose", body)
    assert signed.status_code == 401
    assert httpx.get(f"{server.api}/markets/guarded").json()["status"] == "closed"
    trader.close()
