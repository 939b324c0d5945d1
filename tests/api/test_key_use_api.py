"""A key's last use is stored (in batches) and listed: REST and stream use both count."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.live_server import free_port, live_server
from tests.signed_client import Admin
from tests.stream.stream_client import StreamClient


def listed(api: str, token: str, api_key: str) -> dict[str, object]:
    keys = httpx.get(f"{api}/admin/keys", headers={"Authorization": f"Bearer {token}"}).json()[
        "keys"
    ]
    return next(key for key in keys if key["api_key"] == api_key)


def test_last_use_is_stored_and_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    with live_server(tmp_path / "var", port=port) as server:
        admin = Admin(server.api, server.admin_token)
        rest = admin.account("rest user")
        idle = admin.account("idle user")
        stream_keys = admin.post("/keys", {"account_id": idle.account_id})  # type: ignore[attr-defined]
        assert rest.get("/account/balance").status_code == 200

        async def authenticate() -> None:
            client = await StreamClient.connect(server.url)
            reply = await client.auth(stream_keys["api_key"], stream_keys["api_secret"])
            assert reply["type"] == "authenticated", reply
            await client.close()

        asyncio.run(authenticate())
        token = server.admin_token
        # Stored every few seconds by the timer, and at shutdown.
    with live_server(tmp_path / "var", port=port) as server:
        used = listed(server.api, token, rest.api_key)["last_used_at"]
        assert isinstance(used, str) and used.endswith("Z")
        assert listed(server.api, token, stream_keys["api_key"])["last_used_at"] is not None
        assert listed(server.api, token, idle.api_key)["last_used_at"] is None
    rest.close()
    idle.close()
