"""Failover benchmark (issue 18): leader death to the first acknowledged order on the standby.

    .venv/bin/python bench/recovery.py --keep /tmp/rb --no-sqlite --no-pause   # build once
    .venv/bin/python bench/failover.py --reuse /tmp/rb                         # then this

On a copy of ``bench/recovery.py``'s kept PostgreSQL build (1,000,000 resting orders, a
snapshot, a 100,000-command tail): a leader ``ballast serve``, then a ``ballast serve
--standby`` on the same database, given the time to recover its engine and follow the journal.
A trader places orders on the leader (the standby follows them); the leader is killed
(SIGKILL) and the trader, at once, sends the same order to the standby again and again until
one is acknowledged (201). Reported: that time, what the standby's start after the takeover
took (its ``/readyz`` recovery phases), the CPU seconds it spent on it, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recovery import (
    BALLAST,
    KEPT_POSTGRES,
    PYCACHE,
    _cpu_s,
    free_port,
    fresh_database,
    log,
    warm_bytecode,
)

from ballast import BallastClient
from ballast.errors import BallastError

MARKET = "mkt00"
ORDER = {"market_id": MARKET, "side": "buy", "price": "0.05", "size": 1}


def start(url: str, directory: Path, name: str, env: dict[str, str], *more: str) -> Any:
    port = free_port()
    command = [str(BALLAST), "serve", "--data-dir", str(directory / name), "--port", str(port)]
    command += ["--no-demo", "--database-url", url, *more]
    out = (directory / f"{name}.log").open("ab")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return process, f"http://127.0.0.1:{port}"


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(f"{base}/readyz", timeout=5)
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json()


def wait(what: str, done: Any, process: subprocess.Popen[bytes], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            raise RuntimeError(f"{what}: the server exited ({process.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def following(base: str) -> int:
    status, body = readyz(base)
    if status != 503:
        return -1
    return int(body["error"]["details"]["recovery"].get("following", -1))


def failover(directory: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(PYCACHE), BALLAST_SECRET_KEY=Fernet.generate_key().decode())
    env.update(BALLAST_SNAPSHOT_EVERY_COMMANDS="0", BALLAST_SNAPSHOT_EVERY_S="0")
    env.update(BALLAST_JOURNAL_RETENTION="keep", BALLAST_PRIVATE_RATE_LIMIT="1000000")
    with fresh_database("postgresql", directory, template=KEPT_POSTGRES) as url:
        leader, leader_url = start(url, directory, "leader", env)
        standby = None
        try:
            log("the leader recovers")
            wait("leader", lambda: readyz(leader_url)[0] == 200, leader)
            standby, standby_url = start(url, directory, "standby", env, "--standby")
            log("the standby recovers and follows")
            wait("standby", lambda: following(standby_url) > 0, standby)
            before = following(standby_url)
            token = (directory / "leader" / "admin.token").read_text().strip()
            account = httpx.post(
                f"{leader_url}/v1/admin/accounts",
                json={"name": "failover", "deposit": 1_000},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ).json()
            on_leader = BallastClient(
                account["api_key"], account["api_secret"], base_url=f"{leader_url}/v1"
            )
            for _ in range(20):
                on_leader.place_order(**ORDER)
            # The account (2 commands) and the 20 orders, executed by the standby's engine.
            log("waiting for the standby to follow them")
            wait("follow", lambda: following(standby_url) >= before + 22, standby)
            on_standby = BallastClient(
                account["api_key"],
                account["api_secret"],
                base_url=f"{standby_url}/v1",
                max_retries=0,
                timeout=5,
            )
            cpu_before = _cpu_s(standby.pid)
            load = os.getloadavg()[0]
            leader.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            leader.wait()
            attempts = 0
            while True:
                attempts += 1
                try:
                    on_standby.place_order(**ORDER)
                    break
                except BallastError:
                    if standby.poll() is not None:
                        raise RuntimeError("the standby exited") from None
                    time.sleep(0.01)
            acknowledged_s = time.monotonic() - killed
            status, body = readyz(standby_url)
            return {
                "leader_death_to_first_acknowledged_order_s": round(acknowledged_s, 3),
                "attempts": attempts,
                "standby_cpu_s_for_takeover": round(_cpu_s(standby.pid) - cpu_before, 2),
                "load_average_1m": round(load, 2),
                "standby_recovery_after_takeover": body.get("recovery"),
                "ready": status == 200,
            }
        finally:
            for process in (leader, standby):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", required=True, help="bench/recovery.py's --keep directory")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    built = json.loads((Path(args.reuse) / "postgresql.json").read_text())
    warm_bytecode()
    runs = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ballast-failover-") as tmp:
            log(f"run {n + 1} of {args.runs}")
            runs.append(failover(Path(tmp)))
            log(json.dumps(runs[-1]))
    build = {k: built.get(k) for k in ("resting_orders", "tail_commands")}
    print(json.dumps({"build": build, "runs": runs}))


if __name__ == "__main__":
    main()
