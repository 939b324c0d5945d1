"""/healthz, /readyz and the logs over real HTTP.

Readiness is broken for real: the SQLite file is moved away, or the PostgreSQL database is
closed to connections and renamed under the running server. Logs are captured from the server
thread (it runs in this process) with the server's own formatters.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ballast_exchange.domain import select_engine
from ballast_exchange.logs import JsonFormatter, TextFormatter
from tests.databases import fresh_database
from tests.live_server import LiveServer, live_server
from tests.scraped_metrics import reading, scrape
from tests.services import POSTGRES_URL, require_postgres
from tests.signed_client import Admin, signature

GENERATED_ID = re.compile(r"[0-9a-f]{16}")


class Capture:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The access line is written once the response is sent: it may trail the reply."""
        deadline = time.monotonic() + 10
        while True:
            found = [r for r in self.records() if predicate(r)]
            if found:
                return found[0]
            assert time.monotonic() < deadline, self.lines()[-20:]
            time.sleep(0.02)


@contextmanager
def capture_logs(formatter: logging.Formatter) -> Iterator[Capture]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    ours = logging.getLogger("ballast_exchange")
    level = ours.level
    ours.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield Capture(stream)
    finally:
        root.removeHandler(handler)
        ours.setLevel(level)


def access_line(capture: Capture, request_id: str) -> dict[str, Any]:
    return capture.wait_for(
        lambda r: r["logger"] == "ballast_exchange.access" and r.get("request_id") == request_id
    )


# ---------------------------------------------------------------- health


def test_healthz_and_readyz_when_all_is_well(live: LiveServer) -> None:
    health = httpx.get(f"{live.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = httpx.get(f"{live.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    choice = select_engine()  # the twin this machine runs: compiled once built
    body = ready.json()
    assert body.pop("recovery")["phase"] == "done"  # how it recovered (test_snapshots_api)
    checks = {"engine": "ok", "exchange": "ok", "storage": "ok", "projection": "ok"}
    if live.runtime.lease is not None:  # PostgreSQL: it holds the sequencer lease (ADR 0023)
        checks["sequencer"] = "ok"
    assert body == {
        "status": "ready",
        "role": "server",  # one process: no gateways (docs/adr/0025)
        "checks": checks,
        "degraded": {},
        "matching": {"name": choice.name, "reason": choice.reason},
    }
    for response in (health, ready):
        assert "X-RateLimit-Limit" not in response.headers
        assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


@contextmanager
def storage_away(database_url: str) -> Iterator[None]:
    """Take the database away from under the server, for real; put it back after."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        away = path.with_name(path.name + ".away")
        path.rename(away)
        try:
            yield
        finally:
            away.rename(path)
        return
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        deadline = time.monotonic() + 10
        while True:  # the server's sessions take a moment to go once terminated
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            try:
                conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
                break
            except psycopg.errors.ObjectInUse:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def assert_not_ready(response: httpx.Response, failed: list[str]) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["message"]
    assert error["details"]["failed"] == failed, body
    assert response.headers["Retry-After"] == "5"
    checks: dict[str, Any] = error["details"]["checks"]
    return checks


def test_readyz_fails_while_storage_is_unreachable_and_recovers(
    database_url: str, tmp_path: Path
) -> None:
    with (
        live_server(tmp_path / "var", database_url=database_url) as server,
        capture_logs(JsonFormatter()) as logs,
    ):
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        with storage_away(database_url):
            response = httpx.get(f"{server.url}/readyz", timeout=10)
            checks = assert_not_ready(response, ["storage"])
            assert checks["engine"] == checks["exchange"] == "ok"
            assert checks["storage"].startswith("unreachable"), checks
            # Alive all the same: a restart would not bring the database back.
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
            # The failure is logged, on the line of the probe that found it.
            rid = response.headers["X-Request-ID"]
            warning = logs.wait_for(
                lambda r: r["level"] == "warning" and "storage check failed" in r["message"]
            )
            assert warning["request_id"] == rid
        deadline = time.monotonic() + 10
        while (ready := httpx.get(f"{server.url}/readyz", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        assert ready.json()["checks"]["storage"] == "ok"


def test_a_failed_commit_stops_the_exchange_and_readyz_keeps_saying_so(tmp_path: Path) -> None:
    """PostgreSQL only: as root (as tests run here), nothing short of moving the file makes a
    SQLite commit fail, and a moved file still takes writes through the open connection."""
    require_postgres()
    with (
        fresh_database("postgres", tmp_path) as url,
        live_server(tmp_path / "var", database_url=url) as server,
    ):
        admin = Admin(server.api, server.admin_token)
        admin.market("ready-m")
        trader = admin.account("trader", 100)
        order = {"market_id": "ready-m", "side": "buy", "price": 0.5, "size": 1}
        with storage_away(url):
            failed = trader.post("/orders", order)
            assert failed.status_code == 503, failed.text
            assert failed.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        # The database is back, but the exchange stays stopped until restarted (DESIGN §6).
        checks = assert_not_ready(httpx.get(f"{server.url}/readyz", timeout=10), ["exchange"])
        assert checks["storage"] == "ok"
        assert reading(scrape(server), "ballast_commit_failures_total") == 1
        assert reading(scrape(server), "ballast_exchange_healthy") == 0
        refused = reading(scrape(server), "ballast_commands_refused_total")
        assert trader.post("/orders", order).status_code == 503
        assert reading(scrape(server), "ballast_commands_refused_total") == refused + 1


# ---------------------------------------------------------------- logs


def test_json_access_lines_carry_the_request_id_and_no_secrets(live: LiveServer) -> None:
    token = live.admin_token
    with capture_logs(JsonFormatter()) as logs:
        created = httpx.post(
            f"{live.api}/admin/accounts",
            json={"name": "logged", "deposit": 100},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "ops-check-1"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Request-ID"] == "ops-check-1"
        key, secret = created.json()["api_key"], created.json()["api_secret"]
        line = access_line(logs, "ops-check-1")
        assert line["level"] == "info"
        assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/admin/accounts", 201)
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
        assert line["api_key_prefix"] is None  # the admin token is no API key: never shown

        # A signed request, with its signature, and the secret in the query string for spite.
        timestamp = str(int(time.time() * 1000))
        path = f"/v1/orders?status=open&leak={secret}"
        signed = signature(secret, timestamp, "GET", path, "")
        listed = httpx.get(
            f"{live.url}{path}",
            headers={
                "Authorization": f"Bearer {key}",
                "X-BM-Timestamp": timestamp,
                "X-BM-Signature": signed,
            },
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        rid = listed.headers["X-Request-ID"]
        assert GENERATED_ID.fullmatch(rid)
        line = access_line(logs, rid)
        assert (line["method"], line["path"], line["status"]) == ("GET", "/v1/orders", 200)
        prefix = line["api_key_prefix"]
        assert key.startswith(prefix) and len(prefix) == 16 and prefix != key

        # A client-chosen id must be sane; otherwise the server makes its own.
        for bad in ("has spaces in it", "x" * 129, 'quote"d'):
            response = httpx.get(f"{live.api}/time", headers={"X-Request-ID": bad}, timeout=10)
            assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"]), bad
        # A secret in a path is masked: the safety net under every line.
        missing = httpx.get(f"{live.api}/markets/{token}", timeout=10)
        assert missing.status_code == 404
        line = access_line(logs, missing.headers["X-Request-ID"])
        assert line["path"] == "/v1/markets/bmkt_admin_***"
        # A refused signature gets its id and its line like any other request.
        forged = httpx.get(
            f"{live.api}/account/balance",
            headers={
                "Authorization": f"Bearer {key}",
                "X-BM-Timestamp": timestamp,
                "X-BM-Signature": "0" * 64,
            },
            timeout=10,
        )
        assert forged.status_code == 401
        assert access_line(logs, forged.headers["X-Request-ID"])["status"] == 401

    fernet_key = (live.runtime.settings.data_dir / "secret.key").read_text().strip()
    lines = logs.lines()
    assert lines
    for text in lines:
        json.loads(text)  # every line is one JSON object
        for secret_text in (secret, token, signed, fernet_key):
            assert secret_text not in text, text


def test_text_lines_carry_the_request_id(live: LiveServer) -> None:
    with capture_logs(TextFormatter()) as logs:
        response = httpx.get(f"{live.api}/time", headers={"X-Request-ID": "text-1"}, timeout=10)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while not any("[text-1]" in line for line in logs.lines()):
            assert time.monotonic() < deadline, logs.lines()
            time.sleep(0.02)
    line = next(line for line in logs.lines() if "[text-1]" in line)
    assert "INFO ballast_exchange.access [text-1]: GET /v1/time 200" in line


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_log_at_debug_only(live: LiveServer, path: str) -> None:
    with capture_logs(JsonFormatter()) as logs:
        response = httpx.get(f"{live.url}{path}", timeout=10)
        line = access_line(logs, response.headers["X-Request-ID"])
    assert line["level"] == "debug"
    assert line["path"] == path
