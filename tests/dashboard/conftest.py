"""A real sandbox server and one headless Chromium (Debian's, never a downloaded one) for the
dashboard's browser tests, plus an HTTP client that talks to the dashboard like its page does.

Without Chromium the browser tests skip with the reason; with ``BALLAST_REQUIRE_SERVICES=1``
they fail instead (``make chromium`` installs it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin

CHROMIUM = os.environ.get("BALLAST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


def chromium_path() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if path and os.access(path, os.X_OK):
        return path
    reason = f"Chromium is not installed at {CHROMIUM} (run `make chromium`)"
    if os.environ.get("BALLAST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and BALLAST_REQUIRE_SERVICES=1 says it must be")
    pytest.skip(reason)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_email(prefix: str = "trader") -> str:
    return f"{unique(prefix)}@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("dashboard") / "var", env="sandbox", **NO_LIMITS) as s:
        yield s


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[Admin]:
    boss = Admin(server.api, server.admin_token)
    yield boss
    boss.http.close()


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A fresh browser profile (its own cookies) at a laptop's screen size."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=server.url)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


class Dashboard:
    """The dashboard's JSON API as its page calls it: same-origin, session cookie, CSRF token."""

    def __init__(self, server: LiveServer, **headers: str) -> None:
        self.url = server.url
        # Each client comes from an address of its own (forwarded by a trusted loopback
        # proxy), so per-IP limits on sign-ups and logins never mix up unrelated tests.
        forwarded = (
            f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
        )
        self.http = httpx.Client(
            base_url=server.url,
            timeout=30,
            headers={"Origin": server.url, "X-Forwarded-For": forwarded, **headers},
        )
        self.csrf: str | None = None
        self.user: dict[str, Any] | None = None

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if self.csrf and method != "GET":
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.http.request(method, f"/dashboard/api{path}", json=body, headers=headers, **kw)

    def enter(self, action: str, email: str, password: str = PASSWORD, **kw: Any) -> httpx.Response:
        body = {"email": email, "password": password}
        response = self.request("POST", f"/{action}", body, **kw)
        if response.status_code < 300:
            self.csrf = response.json()["csrf_token"]
            self.user = response.json()["user"]
        return response

    def signup(self, email: str | None = None, password: str = PASSWORD) -> Dashboard:
        response = self.enter("signup", email or unique_email(), password)
        assert response.status_code == 201, response.text
        return self

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def dashboard(server: LiveServer) -> Iterator[Any]:
    """Make signed-in (or not yet) dashboard clients; all closed afterwards."""
    made: list[Dashboard] = []

    def make(**headers: str) -> Dashboard:
        client = Dashboard(server, **headers)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
