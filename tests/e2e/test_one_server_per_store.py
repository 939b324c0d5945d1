"""One server per data directory and per database (docs/adr/0015-one-server-per-store.md), and
the operator told what to change, for real: ``ballast serve`` and ``ballast admin`` processes.

A second server on a store in use, or on a busy port, exits with one clear message before it
prints a banner or touches ``server.json``; ``ballast admin`` never guesses an address.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ballast_exchange.bootstrap import Runtime
from ballast_exchange.config import Settings
from ballast_exchange.store.instance_lock import StoreInUse
from tests.databases import fresh_database
from tests.live_server import free_port

BALLAST = str(Path(sys.executable).with_name("ballast"))
BANNER = "Ballast exchange ("


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}


@contextmanager
def serving(
    data_dir: Path, *more: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``ballast serve`` on ``data_dir`` (with ``env`` added to a clean environment) until the
    block ends; yields its URL and process."""
    port = free_port()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"serve-{port}.log"
    command = [BALLAST, "serve", "--data-dir", str(data_dir), "--port", str(port), "--no-demo"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, *more],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**clean_env(), **(env or {})},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not (data_dir / "server.json").exists() or not answers(url):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "ballast serve did not come up in 60 s"
                time.sleep(0.05)
            yield url, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).is_success
    except httpx.TransportError:
        return False


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BALLAST, *args], capture_output=True, text=True, timeout=60, env=env or clean_env()
    )


def refused(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit 1 with one message on stderr: no banner, no traceback."""
    assert done.returncode == 1, done
    assert BANNER not in done.stdout and BANNER not in done.stderr, done
    assert "Traceback" not in done.stderr, done
    assert done.stderr.startswith("ballast serve: error: "), done
    for phrase in phrases:
        assert phrase in done.stderr, done


def test_a_second_server_on_the_same_data_dir_refuses_before_its_banner(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with serving(data_dir) as (url, first):
        recorded = (data_dir / "server.json").read_bytes()
        stamp = (data_dir / "server.json").stat().st_mtime_ns
        second = run("serve", "--data-dir", str(data_dir), "--port", str(free_port()), "--no-demo")
        refused(
            second,
            f"pid {first.pid}",
            url,
            f"already using the data directory {data_dir.resolve()}",
            "--data-dir",
            "--port",
            "BALLAST_PORT",
        )
        # The first server's address and service are untouched.
        assert (data_dir / "server.json").read_bytes() == recorded
        assert (data_dir / "server.json").stat().st_mtime_ns == stamp
        assert answers(url)
        # The same data dir and the same port (a second `make run`): the data dir is named.
        port = url.rsplit(":", 1)[1]
        again = run("serve", "--data-dir", str(data_dir), "--port", port, "--no-demo")
        refused(again, "already using the data directory", "BALLAST_DATA_DIR", "BALLAST_PORT")
    # Stopped: its address goes with it, and the data dir is free for the next server.
    assert not (data_dir / "server.json").exists()
    with serving(data_dir) as (url, _):
        assert answers(url)


def test_two_servers_on_one_postgres_database(tmp_path: Path) -> None:
    with (
        fresh_database("postgres", tmp_path) as database_url,
        serving(tmp_path / "one" / "var", "--database-url", database_url) as (url, first),
    ):
        other = tmp_path / "two" / "var"
        second = run(
            "serve",
            *("--data-dir", str(other), "--port", str(free_port()), "--no-demo"),
            *("--database-url", database_url),
        )
        refused(second, "already using the database", f"pid {first.pid}", url)
        assert not (other / "server.json").exists()
        assert answers(url)


def test_a_busy_port_says_which_flag_and_variable_move_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data_dir = tmp_path / "var"
        done = run("serve", "--data-dir", str(data_dir), "--port", str(port), "--no-demo")
    refused(done, f"port {port}", "already in use", "--port N", "BALLAST_PORT")
    assert not data_dir.exists()  # nothing was created, migrated or recorded


def test_one_process_cannot_open_a_data_dir_twice(tmp_path: Path) -> None:
    """The lock belongs to the open file, not the process: a second Runtime in this process
    is refused too, and once the first lets go the data dir opens again."""
    first = Runtime(Settings(data_dir=tmp_path / "var", demo=False, port=free_port()))
    try:
        with pytest.raises(StoreInUse, match="already using the data directory"):
            Runtime(Settings(data_dir=tmp_path / "var", demo=False, port=free_port()))
    finally:
        first.instance_lock.release()
        first.database.dispose()
    again = Runtime(Settings(data_dir=tmp_path / "var", demo=False, port=free_port()))
    again.instance_lock.release()
    again.database.dispose()


def test_admin_without_a_running_server_says_so_and_how_to_point_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "admin.token").write_text("bmkt_admin_x\n")
    done = run("admin", "--data-dir", str(data_dir), "keys", "list")
    assert done.returncode == 2, done
    assert done.stdout == "" and "Traceback" not in done.stderr, done
    for phrase in (
        f"no running Ballast server found in the data directory {data_dir}",
        "--url",
        "BALLAST_ADMIN_URL",
        "--data-dir",
    ):
        assert phrase in done.stderr, done
    assert "127.0.0.1:8000" not in done.stderr  # no guessed address


def test_admin_finds_the_server_through_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with serving(data_dir) as (url, _):
        (data_dir / "server.json").unlink()  # as if it were run elsewhere
        env = {**clean_env(), "BALLAST_ADMIN_URL": url, "BALLAST_DATA_DIR": str(data_dir)}
        done = run("admin", "--json", "keys", "list", env=env)
        assert done.returncode == 0, done
        assert json.loads(done.stdout) == {"keys": []}
