"""The operator's command line, for real: ``ballast serve`` and ``ballast admin …`` as processes.

One ``ballast serve`` subprocess (SQLite, no demo data) serves the module; every admin command
runs as its own ``ballast admin --data-dir D …`` process, reading the credential ``serve`` left
in D, and what it changed is checked over the public and signed API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import free_port
from tests.signed_client import SignedClient

BALLAST = str(Path(sys.executable).with_name("ballast"))
CLOSE_TIME = "2099-12-31T00:00:00Z"


def clean_env() -> dict[str, str]:
    """The environment without BALLAST_* settings, so only the flags configure the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}


@dataclass
class Served:
    data_dir: Path
    url: str
    api: str
    process: subprocess.Popen[bytes]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("cli") / "var"
    port = free_port()
    log = (data_dir.parent / "serve.log").open("wb")
    process = subprocess.Popen(
        [BALLAST, "serve", "--data-dir", str(data_dir), "--port", str(port), "--no-demo"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (data_dir.parent / "serve.log").read_text()
            assert time.monotonic() < deadline, "ballast serve did not come up in 120 s"
            try:
                if (data_dir / "server.json").exists() and httpx.get(f"{url}/healthz").is_success:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield Served(data_dir, url, f"{url}/v1", process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def ballast(data_dir: Path, *args: str) -> Run:
    """``ballast admin --data-dir D --json ARGS…`` as a subprocess (the text for people is
    tests/e2e/test_admin_cli_text.py's)."""
    done = subprocess.run(
        [BALLAST, "admin", "--data-dir", str(data_dir), "--json", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    return Run(done.returncode, done.stdout, done.stderr)


def ok(run: Run) -> Any:
    """The JSON a successful command printed."""
    assert run.code == 0, run
    assert run.err == "", run
    return run.json()


def failed(run: Run, code: int, *phrases: str) -> None:
    """A clean failure: the exit code, one message on stderr, nothing on stdout, no traceback."""
    assert run.code == code, run
    assert run.out == "", run
    assert run.err.startswith("error: "), run
    assert "Traceback" not in run.err, run
    for phrase in phrases:
        assert phrase in run.err, run


def new_account(served: Served, name: str, deposit: str = "5000") -> dict[str, Any]:
    return ok(
        ballast(
            served.data_dir, "accounts", "create", "--name", name, "--deposit", deposit, "--json"
        )
    )


def balance(served: Served, key: str, secret: str) -> httpx.Response:
    client = SignedClient(served.api, key, secret)
    try:
        return client.get("/account/balance")
    finally:
        client.close()


def market_status(served: Served, market_id: str) -> str:
    response = httpx.get(f"{served.api}/markets/{market_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# ---------------------------------------------------------------- serve


def test_serve_help() -> None:
    done = subprocess.run([BALLAST, "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    for flag in ("--data-dir", "--port", "--database-url", "--env", "--no-demo"):
        assert flag in done.stdout


def test_serve_leaves_a_private_admin_token(served: Served) -> None:
    token = served.data_dir / "admin.token"
    assert token.stat().st_mode & 0o777 == 0o600
    assert token.read_text().strip()
    assert json.loads((served.data_dir / "server.json").read_text())["url"] == served.url


# ---------------------------------------------------------------- accounts and money


def test_accounts_create_prints_working_credentials(served: Served) -> None:
    created = new_account(served, "alice")
    assert {"account_id", "api_key", "api_secret"} <= created.keys()
    response = balance(served, created["api_key"], created["api_secret"])
    assert response.status_code == 200, response.text
    assert response.json()["total_balance"] == 5000
    assert response.json()["available"] == 5000
    shown = ok(ballast(served.data_dir, "accounts", "show", created["account_id"]))
    assert shown["account_id"] == created["account_id"]
    assert shown["total_balance"] == 5000


def test_deposit_and_withdraw(served: Served) -> None:
    created = new_account(served, "bob")
    account = created["account_id"]
    assert ok(ballast(served.data_dir, "deposit", account, "250"))["total_balance"] == 5250
    assert ok(ballast(served.data_dir, "withdraw", account, "1000.5"))["total_balance"] == 4249.5
    response = balance(served, created["api_key"], created["api_secret"])
    assert response.json()["total_balance"] == 4249.5
    # More than the account holds: refused by the exchange, nothing moves.
    failed(ballast(served.data_dir, "withdraw", account, "1000000"), 1)
    failed(ballast(served.data_dir, "deposit", "acc_nobody", "5"), 1, "ACCOUNT_NOT_FOUND")
    assert (
        balance(served, created["api_key"], created["api_secret"]).json()["total_balance"] == 4249.5
    )


# ---------------------------------------------------------------- keys


def test_keys_create_list_tier_revoke(served: Served) -> None:
    account = new_account(served, "carol")["account_id"]
    key = ok(
        ballast(served.data_dir, "keys", "create", account, "--label", "bot", "--scopes", "read")
    )
    assert key["account_id"] == account
    assert key["scopes"] == ["read"]
    assert key["label"] == "bot"
    assert balance(served, key["api_key"], key["api_secret"]).status_code == 200

    listing = ballast(served.data_dir, "keys", "list", "--account", account)
    listed = {row["api_key"]: row for row in ok(listing)["keys"]}
    assert listed[key["api_key"]]["label"] == "bot"
    assert listed[key["api_key"]]["revoked_at"] is None
    assert key["api_secret"] not in listing.out  # secrets are shown once, at creation

    tiered = ok(ballast(served.data_dir, "keys", "tier", key["api_key"], "market_maker"))
    assert tiered["tier"] == "market_maker"
    failed(ballast(served.data_dir, "keys", "tier", key["api_key"], "platinum"), 1, "tier")

    assert ok(ballast(served.data_dir, "keys", "revoke", key["api_key"]))["revoked"] is True
    response = balance(served, key["api_key"], key["api_secret"])
    assert response.status_code == 401, response.text
    listed = {row["api_key"]: row for row in ok(ballast(served.data_dir, "keys", "list"))["keys"]}
    assert listed[key["api_key"]]["revoked_at"] is not None
    assert listed[key["api_key"]]["tier"] == "market_maker"
    failed(ballast(served.data_dir, "keys", "revoke", "bmkt_no_such_key"), 1, "KEY_NOT_FOUND")


def test_keys_create_without_a_label(served: Served) -> None:
    """``--label`` is optional: a key made without one works like any other."""
    account = new_account(served, "dave")["account_id"]
    key = ok(ballast(served.data_dir, "keys", "create", account))
    assert key["scopes"] == ["read", "trade"]
    assert balance(served, key["api_key"], key["api_secret"]).status_code == 200


# ---------------------------------------------------------------- markets


def test_market_lifecycle(served: Served) -> None:
    created = ok(
        ballast(
            served.data_dir,
            "markets",
            "create",
            "--id",
            "cli-binary",
            "--name",
            "CLI market",
            "--type",
            "binary",
            "--close-time",
            CLOSE_TIME,
            "--tick",
            "0.01",
            "--json",
        )
    )
    assert created["id"] == "cli-binary"
    assert created["status"] == "pending"
    assert created["rules"]["tick_size"] == 0.01
    public = httpx.get(f"{served.api}/markets/cli-binary").json()
    assert public["name"] == "CLI market"
    assert public["close_time"].startswith("2099-12-31T00:00:00")
    assert market_status(served, "cli-binary") == "pending"
    for action, status in (("open", "open"), ("halt", "halted"), ("resume", "open")):
        assert ok(ballast(served.data_dir, "markets", action, "cli-binary"))["status"] == status
        assert market_status(served, "cli-binary") == status
    assert ok(ballast(served.data_dir, "markets", "close", "cli-binary"))["status"] == "closed"
    assert market_status(served, "cli-binary") == "closed"
    # Refusals come back as the error code and message, with exit code 1.
    failed(ballast(served.data_dir, "markets", "resume", "cli-binary"), 1, "INVALID_TRANSITION")
    failed(ballast(served.data_dir, "markets", "open", "cli-nowhere"), 1, "MARKET_NOT_FOUND")
    again = ballast(
        served.data_dir,
        "markets",
        "create",
        *("--id", "cli-binary", "--name", "dup", "--type", "binary", "--close-time", CLOSE_TIME),
    )
    failed(again, 1, "MARKET_EXISTS")


# ---------------------------------------------------------------- error paths


def test_no_server_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "admin.token").write_text("whatever\n")
    dead = f"http://127.0.0.1:{free_port()}"
    (data_dir / "server.json").write_text(json.dumps({"url": dead}))
    failed(ballast(data_dir, "keys", "list"), 2, "no Ballast server answers", dead)


def test_credential_file_missing(tmp_path: Path) -> None:
    (tmp_path / "server.json").write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}"}))
    failed(
        ballast(tmp_path, "keys", "list"), 2, "no admin credential", str(tmp_path / "admin.token")
    )


def test_wrong_credential(served: Served) -> None:
    token = served.data_dir / "admin.token"
    original = token.read_text()
    try:
        token.write_text("not-the-admin-token\n")
        failed(
            ballast(served.data_dir, "keys", "list"), 2, "refused the admin credential", str(token)
        )
    finally:
        token.write_text(original)
    ok(ballast(served.data_dir, "keys", "list"))


# ---------------------------------------------------------------- output


def test_admin_level_json_flag(served: Served) -> None:
    """``ballast admin --json …`` prints one line of raw JSON, whatever the subcommand."""
    run = ballast(
        served.data_dir,
        "--json",
        "markets",
        "create",
        *("--id", "cli-json", "--name", "j", "--type", "binary", "--close-time", CLOSE_TIME),
    )
    assert ok(run)["id"] == "cli-json"
    assert run.out.count("\n") == 1, run.out
