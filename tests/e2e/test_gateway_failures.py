"""Gateways and failures (docs/adr/0025): a gateway killed under load, the sequencer killed
with a hot standby behind the gateways, a gateway dying under cancel-on-disconnect, and
``serve --gateways 2`` run as one command. The venue and its helpers are test_gateways.py's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_crash_recovery import (
    BALLAST,
    MARKET,
    Record,
    Served,
    check_acknowledged,
    check_ledger,
    check_matches_journal,
    kill,
    recovered,
    setup_exchange,
    start_load,
    tail,
    wait_ready,
)
from tests.e2e.test_gateways import (
    clients_of,
    database_url,
    environment,
    keys,
    readyz,
    venue,
)
from tests.e2e.test_snapshot_crash import admin_cli
from tests.live_server import free_port
from tests.signed_client import SignedClient
from tests.stream.stream_client import StreamClient

__all__ = ["database_url"]  # the fixture, shared with test_gateways.py


def end_after(loads: list[Any], record: Record, requests: int) -> None:
    """Stop the loads once ``requests`` more were answered (or every trader is done)."""
    target = record.requests + requests
    while record.requests < target and any(t.is_alive() for load in loads for t in load.traders):
        time.sleep(0.02)
    for load in loads:
        load.end()


def check_venue(
    database_url: str, accounts: list[dict[str, str]], record: Record, served: Served
) -> None:
    """Everything acknowledged is there through ``served``, and its state is the journal's."""
    assert not record.errors, record.errors
    assert not record.conflicts, record.conflicts
    engine = recovered(database_url)
    clients = clients_of(served, accounts)
    try:
        check_acknowledged(clients, record)
        check_ledger(engine, clients, accounts)
        check_matches_journal(engine, clients, accounts, served)
    finally:
        for client in clients:
            client.close()


def test_a_killed_gateway_leaves_the_other_trading(tmp_path: Path, database_url: str) -> None:
    with venue(tmp_path, database_url) as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        record = Record()
        loads = [
            start_load(g.api, accounts, record, first=100 * n, reader=n == 1)
            for n, g in enumerate(v.gateways)
        ]
        loads[0].under_way(record)
        kill(v.gateways[0].process)
        before = record.replies[201]
        end_after(loads, record, 150)
        assert record.replies[201] > before + 50, dict(record.replies)  # the other traded on
        assert set(record.replies) <= {200, 201, 400, 409}, record.samples
        # Clients of the dead gateway reconnect to the other and find all they were told.
        check_venue(database_url, accounts, record, v.gateways[1])


def test_the_standby_takes_over_behind_the_gateways(tmp_path: Path, database_url: str) -> None:
    """kill -9 of the sequencer under load through both gateways: the standby takes over, the
    gateways follow it without a restart, and nothing acknowledged is lost."""
    with venue(tmp_path, database_url, standby=True) as v:
        assert v.standby is not None
        accounts = setup_exchange(v.sequencer, v.data_dir)
        record = Record()
        loads = [
            start_load(g.api, accounts, record, first=100 * n, reader=n == 0)
            for n, g in enumerate(v.gateways)
        ]
        loads[0].under_way(record)
        kill(v.sequencer.process)
        before = record.replies[201]
        wait_ready(v.standby)
        end_after(loads, record, 200)
        assert record.replies[201] > before + 50, dict(record.replies)  # through the new one
        # An order in flight at the death is answered 503 (retry-safe), nothing else.
        assert set(record.replies) <= {200, 201, 400, 409, 503}, record.samples
        assert all(readyz(g)["status"] == "ready" for g in v.gateways)
        for gateway in v.gateways:
            check_venue(database_url, accounts, record, gateway)
        # The auditor's check on the new sequencer: its live state is a full replay's.
        code, verified = admin_cli(
            tmp_path / "standby", v.standby, "verify", "--database-url", database_url
        )
        assert code == 0 and verified["match"], verified


def test_serve_with_gateways_runs_the_layout_on_one_port(tmp_path: Path) -> None:
    """``ballast serve --gateways 2`` on the embedded database: one port, two gateways."""
    env = environment()
    port = free_port()
    data_dir = tmp_path / "var"
    command = [str(BALLAST), "serve", "--gateways", "2", "--no-demo", "--port", str(port)]
    command += ["--data-dir", str(data_dir)]
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    served = Served(process, f"http://127.0.0.1:{port}/v1", log)
    try:
        wait_ready(served)
        assert readyz(served)["role"] == "gateway"
        accounts = setup_exchange(served, data_dir)
        record = Record()
        load = start_load(served.api, accounts, record)
        end_after([load], record, 150)
        assert set(record.replies) <= {200, 201, 400, 409}, record.samples
        check_venue(f"sqlite:///{data_dir / 'ballast.db'}", accounts, record, served)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, tail(log)
        text = log.read_text()
        assert text.count("Ballast exchange gateway") == 2, tail(log)
        assert "Traceback" not in text, tail(log, 80)
    finally:
        kill(process)


def wait_canceled(client: SignedClient, order_id: str, reason: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        order = client.get(f"/orders/{order_id}").json()
        if order["status"] == "canceled":
            assert order["cancel_reason"] == reason, order
            return
        assert time.monotonic() < deadline, order
        time.sleep(0.1)


def test_risk_controls_hold_behind_gateways(tmp_path: Path, database_url: str) -> None:
    """Cancel-on-disconnect when a gateway dies with the connection; dead-man switches and
    order groups armed through a gateway, kept and fired by the sequencer."""
    with venue(tmp_path, database_url) as v:
        accounts = setup_exchange(v.sequencer, v.data_dir)
        survivor = SignedClient(v.gateways[1].api, **keys(accounts[0]))
        order = {"market_id": MARKET, "side": "buy", "price": "0.20", "size": 1}
        try:
            guarded = asyncio.run(guarded_then_killed(v.gateways[0], accounts[0], order, survivor))
            wait_canceled(survivor, guarded, "disconnect")
            # By the sequencer, which stopped hearing the gateway: not by the connection.
            assert "cancel-on-disconnect orders" in v.sequencer.log.read_text()

            resting = survivor.post("/orders", order).json()["order_id"]
            armed = survivor.post("/heartbeat", {"timeout_s": 5})
            assert armed.status_code == 200 and armed.json()["armed"], armed.text
            seen = SignedClient(v.sequencer.api, **keys(accounts[0]))
            assert seen.get(f"/orders/{resting}").json()["status"] == "open"
            wait_canceled(survivor, resting, "heartbeat_expired")

            group = survivor.post("/order_groups", {"max_filled_size": 3, "window_s": 15})
            assert group.status_code == 201, group.text
            group_id = group.json()["order_group_id"]
            listed = seen.get("/order_groups").json()["order_groups"]
            assert [g["order_group_id"] for g in listed] == [group_id]
            assert survivor.get(f"/order_groups/{group_id}").json() == listed[0]
            seen.close()
        finally:
            survivor.close()


async def guarded_then_killed(
    gateway: Served, account: dict[str, str], order: dict[str, Any], survivor: SignedClient
) -> str:
    """Place under cancel-on-disconnect on ``gateway``, then kill it with the connection open."""
    stream = await StreamClient.connect(gateway.api.removesuffix("/v1"))
    try:
        reply = await stream.auth(
            account["api_key"], account["api_secret"], cancel_on_disconnect=True
        )
        assert reply["type"] == "authenticated", reply
        placed = await stream.request({"op": "place_order", "params": order})
        assert placed["type"] == "result" and placed["status"] == 201, placed
        order_id: str = placed["data"]["order_id"]
        seen = await asyncio.to_thread(survivor.get, f"/orders/{order_id}")
        assert seen.json()["status"] == "open"
        await asyncio.to_thread(kill, gateway.process)
    finally:
        await stream.close()
    return order_id


def test_serve_with_gateways_killed_leaves_no_process_behind(tmp_path: Path) -> None:
    port = free_port()
    command = [str(BALLAST), "serve", "--gateways", "2", "--no-demo", "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "var")]
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment())
    served = Served(process, f"http://127.0.0.1:{port}/v1", log)
    try:
        wait_ready(served)
        children = [int(p) for p in children_of(process.pid)]
        assert len(children) == 3, children  # the sequencer and two gateways
        kill(process)  # SIGKILL: it cannot stop them itself
        deadline = time.monotonic() + 60
        while any(Path(f"/proc/{pid}").exists() and not zombie(pid) for pid in children):
            assert time.monotonic() < deadline, f"left running: {children}\n{tail(log)}"
            time.sleep(0.1)
    finally:
        kill(process)


def children_of(pid: int) -> list[str]:
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += (task / "children").read_text().split()
    return found


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["sequencer"], "a sequencer takes its gateways' calls over NATS: give --nats-url."),
        (["gateway"], "a gateway needs the NATS server its sequencer uses (nats_url)"),
        (["serve", "--gateways", "2"], "--gateways needs the NATS server they share"),
        (
            ["gateway", "--nats-url", "nats://127.0.0.1:4222"],
            "a gateway needs the venue's secret key: copy the sequencer's secret.key",
        ),
        (["serve", "--gateways", "0", "--nats-url", "nats://127.0.0.1:4222"], "at least 1"),
    ],
)
def test_a_role_started_without_what_it_needs_says_so(
    tmp_path: Path, command: list[str], says: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    done = subprocess.run(
        [str(BALLAST), *command, "--data-dir", str(tmp_path / "var"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1, done
    assert done.stderr.startswith(f"ballast {command[0]}: error: "), done.stderr
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
