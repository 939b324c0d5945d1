"""An HTTP client that signs requests as the spec says, written from the spec (not the server)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any

import httpx


def signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    message = f"{timestamp}{method}{path}{body}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


_KEY_CLOCKS: dict[str, int] = {}  # the last timestamp signed with each key, in this process
_KEY_CLOCK_LOCK = threading.Lock()


class SignedClient:
    def __init__(self, api: str, api_key: str, api_secret: str) -> None:
        self.api = api.rstrip("/")
        self.base_path = httpx.URL(self.api).path  # "/v1"
        self.api_key = api_key
        self.api_secret = api_secret
        self.http = httpx.Client(timeout=30)
        self._last_ts = 0

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timestamp: int | None = None,
        sign_path: str | None = None,
        sign_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = "" if body is None else json.dumps(body)
        ts = str(timestamp if timestamp is not None else self.next_timestamp())
        signed_path = sign_path if sign_path is not None else self.base_path + path
        sig = signature(
            self.api_secret, ts, method, signed_path, raw if sign_body is None else sign_body
        )
        all_headers = {
            "Authorization": f"Bearer {self.api_key}",
            "X-BM-Timestamp": ts,
            "X-BM-Signature": sig,
        }
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        return self.http.request(method, self.api + path, content=raw or None, headers=all_headers)

    def next_timestamp(self) -> int:
        """Now, but later than the last timestamp any client of this process signed with the
        same key: the server refuses a signature it has seen, and two clients of one key (two
        traders canceling one order) can sign the same message in one millisecond."""
        with _KEY_CLOCK_LOCK:
            last = max(self._last_ts, _KEY_CLOCKS.get(self.api_key, 0))
            self._last_ts = max(int(time.time() * 1000), last + 1)
            _KEY_CLOCKS[self.api_key] = self._last_ts
        return self._last_ts

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, body if body is not None else {}, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, body, **kw)

    def close(self) -> None:
        self.http.close()


class Admin:
    def __init__(self, api: str, token: str) -> None:
        self.api = api
        self.http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"})

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.http.post(f"{self.api}/admin{path}", json=body or {})
        assert response.status_code < 300, response.text
        data: dict[str, Any] = response.json()
        return data

    def account(self, name: str, deposit: float = 10_000) -> SignedClient:
        data = self.post("/accounts", {"name": name, "deposit": deposit})
        client = SignedClient(self.api, data["api_key"], data["api_secret"])
        client.account_id = data["account_id"]  # type: ignore[attr-defined]
        return client

    def market(self, market_id: str, kind: str = "binary", **fields: Any) -> dict[str, Any]:
        body = {"id": market_id, "name": market_id, "type": kind, "close_time": 4_102_444_800_000}
        body.update(fields)
        created = self.post("/markets", body)
        self.post(f"/markets/{market_id}/open")
        return created
