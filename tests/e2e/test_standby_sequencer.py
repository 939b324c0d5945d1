"""A hot standby on one PostgreSQL database (docs/adr/0023): real ``ballast serve`` processes.

The leader is killed (SIGKILL) under signed order load and the standby takes over with every
acknowledged order and fill; a leader that is stopped (SIGSTOP) past its lease is taken over
and, resumed, writes nothing more and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from ballast_exchange.domain import digest
from tests.databases import fresh_database
from tests.e2e.test_crash_recovery import (
    BALLAST,
    KILL_AFTER_REQUESTS,
    MARKET,
    Record,
    Served,
    check_acknowledged,
    check_ledger,
    check_matches_journal,
    check_still_trades,
    kill,
    recovered,
    setup_exchange,
    start_load,
    tail,
    wait_ready,
)
from tests.e2e.test_snapshot_crash import admin_cli
from tests.live_server import free_port
from tests.signed_client import SignedClient

LEASE_TTL_S = "1.5"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as url:
        yield url


@contextmanager
def servers(tmp_path: Path, database_url: str) -> Iterator[list[Served]]:
    """A leader and a standby on one database, sharing the secret key that seals API secrets
    (as two hosts would); both killed on the way out."""
    env = dict(os.environ)
    env.update(BALLAST_PRIVATE_RATE_LIMIT="1000000", BALLAST_PUBLIC_RATE_LIMIT="1000000")
    env.update(BALLAST_SECRET_KEY=Fernet.generate_key().decode(), BALLAST_LEASE_TTL_S=LEASE_TTL_S)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode next to the sources (crash tests)
    started: list[Served] = []

    def start(name: str, *more: str) -> Served:
        port = free_port()
        command = [str(BALLAST), "serve", "--data-dir", str(tmp_path / name), "--no-demo"]
        command += ["--port", str(port), "--database-url", database_url, *more]
        log = tmp_path / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        served = Served(process, f"http://127.0.0.1:{port}/v1", log)
        started.append(served)
        return served

    try:
        leader = start("leader")
        wait_ready(leader)
        standby = start("standby", "--standby")
        wait_standing_by(standby, leader.process.pid)
        yield [leader, standby]
    finally:
        for served in started:
            if served.process.poll() is None:
                os.kill(served.process.pid, signal.SIGCONT)  # a stopped one must die too
            kill(served.process)


def wait_standing_by(served: Served, leader_pid: int, timeout: float = 120) -> None:
    """The standby answers /readyz 503 saying whose lease it waits for."""
    ready = served.api.removesuffix("/v1") + "/readyz"
    deadline = time.monotonic() + timeout
    while True:
        assert served.process.poll() is None, tail(served.log)
        try:
            response = httpx.get(ready, timeout=1)
            if f"held by pid {leader_pid}" in response.text:
                assert response.status_code == 503, response.text
                assert "standby" in response.json()["error"]["details"]["checks"]["engine"]
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"no standby within {timeout}s:\n{tail(served.log)}"
        time.sleep(0.05)


def following(served: Served) -> int:
    """The last journal command the standby's engine has executed, from its /readyz."""
    response = httpx.get(served.api.removesuffix("/v1") + "/readyz", timeout=5)
    assert response.status_code == 503, response.text
    return int(response.json()["error"]["details"]["recovery"]["following"])


def journal_epochs(database_url: str) -> list[int]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT epoch FROM journal ORDER BY command_no")).scalars()
            return [int(epoch) for epoch in rows]
    finally:
        engine.dispose()


def test_the_standby_takes_over_a_killed_leader_with_everything_acknowledged(
    tmp_path: Path, database_url: str
) -> None:
    record = Record()
    with servers(tmp_path, database_url) as (leader, standby):
        accounts = setup_exchange(leader, tmp_path / "leader")
        load = start_load(leader.api, accounts, record)
        load.under_way(record)
        # A hot standby: its engine executes the leader's journal as it is written.
        while following(standby) < KILL_AFTER_REQUESTS // 2:
            assert time.monotonic() < load.deadline, tail(standby.log)
            time.sleep(0.05)
        kill(leader.process)
        load.end()

        assert not record.errors, record.errors
        assert not record.conflicts, record.conflicts
        assert record.replies[201] >= 20, dict(record.replies)
        wait_ready(standby)
        assert "standby engine recovered through command" in standby.log.read_text()
        metrics = httpx.get(standby.api.removesuffix("/v1") + "/metrics", timeout=10).text
        assert "\nballast_sequencer_epoch 2.0\n" in metrics, metrics[-2000:]
        first = recovered(database_url)
        clients = [SignedClient(standby.api, a["api_key"], a["api_secret"]) for a in accounts]
        try:
            check_acknowledged(clients, record)
            check_ledger(first, clients, accounts)
            check_matches_journal(first, clients, accounts, standby)
            assert digest(recovered(database_url)) == digest(first)
            # The auditor's check: the standby's live state is a full replay's.
            code, verified = admin_cli(
                tmp_path / "standby", standby, "verify", "--database-url", database_url
            )
            assert code == 0 and verified["match"], verified
            check_still_trades(clients[0])
        finally:
            for client in clients:
                client.close()
    epochs = journal_epochs(database_url)
    # The leader wrote under the first epoch, the standby after it under the next.
    assert epochs[0] == 1 and epochs[-1] == 2, (epochs[:3], epochs[-3:])
    assert epochs == sorted(epochs)


def test_a_stopped_leader_is_taken_over_and_resumed_cannot_write(
    tmp_path: Path, database_url: str
) -> None:
    with servers(tmp_path, database_url) as (leader, standby):
        accounts = setup_exchange(leader, tmp_path / "leader")
        creds = accounts[0]
        old = SignedClient(leader.api, creds["api_key"], creds["api_secret"])
        order = {"market_id": MARKET, "side": "buy", "price": "0.40", "size": 2}
        before = old.post("/orders", {**order, "client_order_id": "before-the-stop"})
        assert before.status_code == 201, before.text

        os.kill(leader.process.pid, signal.SIGSTOP)  # alive, holding its sessions, silent
        wait_ready(standby)
        new = SignedClient(standby.api, creds["api_key"], creds["api_secret"])
        assert new.get(f"/orders/{before.json()['order_id']}").json()["status"] == "open"
        # A client that never saw its answer retries on the new leader: the same order.
        retried = new.post("/orders", {**order, "client_order_id": "before-the-stop"})
        assert retried.status_code == 200, retried.text
        assert retried.json()["order_id"] == before.json()["order_id"]
        after = new.post("/orders", {**order, "client_order_id": "on-the-standby"})
        assert after.status_code == 201, after.text

        os.kill(leader.process.pid, signal.SIGCONT)
        try:
            late = old.post("/orders", {**order, "client_order_id": "on-the-old-leader"})
            assert late.status_code >= 500, late.text  # refused, never acknowledged
        except httpx.TransportError:
            pass  # or it had already stopped
        try:
            returncode = leader.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the old leader kept running:\n{tail(leader.log)}")
        assert returncode == 1
        assert "another server took the database over" in leader.log.read_text()

        # Nothing of the old leader's after the takeover: the order it was sent is unknown.
        found = new.get("/orders?status=all&limit=1000").json()["orders"]
        ids = {o.get("client_order_id") for o in found}
        assert "on-the-standby" in ids and "on-the-old-leader" not in ids
        old.close()
        new.close()
    epochs = journal_epochs(database_url)
    assert epochs == sorted(epochs) and epochs[-1] == 2, epochs


def test_a_standby_needs_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BALLAST), "serve", "--standby", "--data-dir", str(tmp_path / "var")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert done.stderr.startswith("ballast serve: error: --standby needs a PostgreSQL"), done
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # nothing was created
