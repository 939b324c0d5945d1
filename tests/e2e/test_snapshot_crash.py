"""Snapshots and crashes (issue 17): `ballast serve` is killed with SIGKILL in the middle of
writing a snapshot; the restarted server recovers exactly the state a full replay of the journal
gives, on SQLite and PostgreSQL. A damaged newest snapshot is skipped for the one before, and
`ballast admin verify` (a full replay in its own process) agrees with the live state."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ballast_exchange.domain import Engine, MarketKind, MarketStatus, Side
from ballast_exchange.domain import commands as c
from ballast_exchange.domain import snapshot_codec as codec
from ballast_exchange.service.exchange import replay
from ballast_exchange.store import snapshots as snapshot_store
from ballast_exchange.store.database import Database, begin_write
from ballast_exchange.store.projection import JournalItem, write_batch
from ballast_exchange.store.schema import snapshot_chunks, snapshots
from tests.live_server import free_port
from tests.signed_client import Admin

from .test_crash_recovery import Served, database_url, kill, serve

__all__ = ["database_url"]  # the fixture, shared with the crash test

BALLAST = str(Path(sys.executable).with_name("ballast"))
SETTINGS = {
    # Only on demand, in the smallest chunks: one transaction each, so a write lasts long
    # enough to be caught in the middle.
    "BALLAST_SNAPSHOT_EVERY_COMMANDS": "0",
    "BALLAST_SNAPSHOT_EVERY_S": "0",
    "BALLAST_SNAPSHOT_CHUNK_BYTES": "1024",
    "BALLAST_JOURNAL_RETENTION": "keep",
}


def admin_cli(data_dir: Path, served: Served, *args: str) -> tuple[int, Any]:
    done = subprocess.run(
        [
            BALLAST,
            "admin",
            "--data-dir",
            str(data_dir),
            "--url",
            served.api.removesuffix("/v1"),
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not done.stderr or done.returncode != 0, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def rest_orders(served: Served, data_dir: Path, accounts: int, per_account: int) -> None:
    """Resting orders on two markets that do not cross, many with client order ids."""
    admin = Admin(served.api, (data_dir / "admin.token").read_text().strip())
    for market in ("snap-a", "snap-b"):
        admin.post(
            "/markets",
            {"id": market, "name": market, "type": "binary", "close_time": 4_102_444_800_000},
        )
        admin.post(f"/markets/{market}/open")
    for n in range(accounts):
        client = admin.account(f"desk{n}", deposit=100_000)
        try:
            orders = []
            for i in range(per_account):
                buy = i % 2 == 0
                orders.append(
                    {
                        "market_id": "snap-a" if i % 3 else "snap-b",
                        "side": "buy" if buy else "sell",
                        "price": round((0.30 if buy else 0.60) + 0.001 * (i % 90), 3),
                        "size": 1 + i % 7,
                        "client_order_id": f"d{n}-{i}",
                    }
                )
            for at in range(0, len(orders), 20):  # the batch route's most
                response = client.post("/orders/batch", {"orders": orders[at : at + 20]})
                placed = response.json()["results"]
                assert [r.get("status") for r in placed] == [201] * len(placed), response.text
        finally:
            client.close()


def request_snapshot(served: Served, data_dir: Path) -> None:
    """Ask for a snapshot; the server is killed before it answers."""
    token = (data_dir / "admin.token").read_text().strip()
    with contextlib.suppress(httpx.TransportError):
        httpx.post(
            f"{served.api}/admin/snapshots",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )


def unpublished_chunks(sql: Any) -> int:
    with sql.connect() as conn:
        published = select(snapshots.c.command_no)
        return len(
            conn.execute(
                select(snapshot_chunks.c.chunk_no).where(
                    snapshot_chunks.c.command_no.not_in(published)
                )
            ).all()
        )


def full_replay(url: str) -> tuple[int, str]:
    database = Database(url)
    try:
        found = replay(database.engine, Engine())
        return found.command_no, codec.state_digest(found.engine, found.client_orders)
    finally:
        database.dispose()


def live_digest(served: Served, data_dir: Path) -> dict[str, Any]:
    token = (data_dir / "admin.token").read_text().strip()
    response = httpx.get(
        f"{served.api}/admin/state-digest",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def readyz(served: Served) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(served.api.removesuffix("/v1") + "/readyz").json()
    return data


def test_kill_during_a_snapshot_write_recovers_the_full_replay_state(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "var"
    log = tmp_path / "serve.log"
    database = Database(database_url)
    sql = database.engine
    try:
        with serve(data_dir, database_url, log) as served:
            # Enough state for a snapshot of dozens of 1 KB chunks, each its own transaction:
            # the write lasts long enough to be seen half done even on a loaded machine.
            rest_orders(served, data_dir, accounts=8, per_account=240)
            code, first = admin_cli(data_dir, served, "snapshot")
            assert code == 0, first
            first_no = first["snapshot"]["command_no"]
            snapshotting = threading.Thread(target=request_snapshot, args=(served, data_dir))
            # More state after the first snapshot, then a second snapshot killed mid-write.
            admin = Admin(served.api, (data_dir / "admin.token").read_text().strip())
            late = admin.account("late", deposit=1_000)
            for i in range(30):
                body = {"market_id": "snap-b", "side": "buy", "price": 0.2, "size": 1 + i}
                assert late.post("/orders", {**body, "client_order_id": f"l{i}"}).status_code == 201
            late.close()
            snapshotting.start()
            deadline = time.monotonic() + 60
            while unpublished_chunks(sql) < 3:  # some chunks stored, the row not yet
                assert time.monotonic() < deadline, "the second snapshot's write was never seen"
            kill(served.process)
            snapshotting.join(timeout=30)
        with sql.connect() as conn:
            stored = [s.command_no for s in snapshot_store.listed(conn)]
        assert stored == [first_no], "the interrupted snapshot must not be published"
        head, expected = full_replay(database_url)
        assert head > first_no

        with serve(data_dir, database_url, log) as served:
            recovery = readyz(served)["recovery"]
            assert recovery["snapshot"] == first_no and recovery["replayed"] == head - first_no
            live = live_digest(served, data_dir)
            assert (live["command_no"], live["digest"]) == (head, expected)
            code, verified = admin_cli(data_dir, served, "verify", "--database-url", database_url)
            assert code == 0 and verified["match"], verified
            # The journal up to the oldest kept snapshot to files, with the server running; the
            # audit reads them; they go back.
            archive = str(tmp_path / "archive")
            db = ("--database-url", database_url)
            code, archived = admin_cli(data_dir, served, "journal", "archive", "--to", archive, *db)
            assert code == 0 and archived["through"] == first_no, archived
            code, gap = admin_cli(data_dir, served, "verify", *db)
            assert code == 1 and "journal jumps" in gap, gap
            code, verified = admin_cli(data_dir, served, "verify", "--archive", archive, *db)
            assert code == 0 and verified["match"], verified
            code, back = admin_cli(data_dir, served, "journal", "restore", "--from", archive, *db)
            assert code == 0 and sum(s["restored"] for s in back["segments"]) == first_no, back
            # A second snapshot now, then the newest damaged: the restart falls back.
            code, second = admin_cli(data_dir, served, "snapshot")
            assert code == 0 and second["snapshot"]["command_no"] == head
            kill(served.process)
        with sql.begin() as conn:
            snapshot_store.damage(conn, head)
        with serve(data_dir, database_url, log) as served:
            recovery = readyz(served)["recovery"]
            assert recovery["snapshot"] == first_no
            assert [s.split(":")[0] for s in recovery["skipped_snapshots"]] == [str(head)]
            live = live_digest(served, data_dir)
            assert live["digest"] == expected
            kill(served.process)
        assert f"snapshot of command {head} skipped" in log.read_text()
    finally:
        database.dispose()


def journal_of_resting_orders(url: str, orders: int) -> None:
    """A journal (and projection) of ``orders`` resting orders, written as the server would."""
    database = Database(url)
    database.upgrade()
    engine = Engine()
    items: list[JournalItem] = []
    commands: list[c.Command] = [
        c.CreateAccount(1, "maker"),
        c.Deposit(1, "maker", 10**12),
        c.CreateMarket(1, "deep", MarketKind.BINARY, 1_000, 0, 1_000, 4_102_444_800_000),
        c.ChangeMarketStatus(1, "deep", MarketStatus.OPEN),
    ]
    commands += [
        c.PlaceOrder(2, "maker", "deep", Side.BUY, 1 + n % 5, 100 + n % 300) for n in range(orders)
    ]
    try:
        for number, command in enumerate(commands, 1):
            items.append(JournalItem(number, command, engine.execute(command), command.time))
            if len(items) == 2_000:
                with begin_write(database.engine) as conn:
                    write_batch(conn, items)
                items = []
        with begin_write(database.engine) as conn:
            write_batch(conn, items)
    finally:
        database.dispose()


def test_readyz_reports_recovery_progress_while_recovering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the API serves, the port answers /readyz 503 with how far recovery is."""
    monkeypatch.setenv("BALLAST_SNAPSHOT_EVERY_COMMANDS", "0")
    url = f"sqlite:///{tmp_path / 'ballast.db'}"
    journal_of_resting_orders(url, 40_000)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [BALLAST, "serve", "--data-dir", str(tmp_path / "var"), "--port", str(port)]
    command += ["--no-demo", "--database-url", url, "--env", "production"]
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    seen: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "never ready"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.01)  # not listening yet: still importing
                continue
            if response.status_code == 200:
                ready = response.json()
                break
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            seen.append(response.json()["error"]["details"])
    finally:
        kill(process)
    recovering = [s for s in seen if s["checks"].get("engine", "").startswith("recovering")]
    assert recovering, f"no answer while recovering: {seen[:3]}"
    phases = {s["recovery"]["phase"] for s in recovering}
    assert phases <= {"starting", "restoring snapshot", "replaying journal", "projecting", "done"}
    assert ready["recovery"]["replayed"] == 40_004
