"""Dashboard logins under attack and in bursts, against the real server (issue 13, items 3, 9).

- Wrong passwords back off per (client IP, email): someone guessing from elsewhere never locks
  the owner out, and the guesser waits longer after each further failure.
- Passwords are hashed with OWASP's argon2id profile (19 MiB, t=2, p=1) on a bounded pool;
  a hash with the old parameters still verifies and is replaced at login; twenty logins at
  once do not take the server's memory up by a gigabyte.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type

from ballast_exchange.dashboard import login_guard
from ballast_exchange.dashboard.users import HASHER
from ballast_exchange.store import users as store
from tests.live_server import LiveServer

from .conftest import PASSWORD, unique_email

WRONG = "not the password at all"


def stored_hash(server: LiveServer, email: str) -> str:
    state = server.runtime.state
    row = server.call(state.read(store.get_user_by_email, email))
    assert row is not None
    password_hash: str = row["password_hash"]
    return password_hash


def test_wrong_passwords_from_elsewhere_never_lock_the_owner_out(dashboard: Any) -> None:
    email = unique_email("owner")
    owner = dashboard().signup(email)
    attacker = dashboard()  # another address (the fixture gives each client its own)

    answers = [attacker.enter("login", email, WRONG) for _ in range(login_guard.FREE_FAILURES)]
    assert [a.status_code for a in answers] == [401] * login_guard.FREE_FAILURES
    blocked = attacker.enter("login", email, PASSWORD)  # even the right password, from there
    assert blocked.status_code == 429, blocked.text
    assert blocked.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "set-cookie" not in blocked.headers

    # The owner, from their own address, logs straight in: twice, the second after more
    # guesses from the attacker.
    assert owner.enter("login", email, PASSWORD).status_code == 200
    assert attacker.enter("login", email, WRONG).status_code == 429
    assert dashboard().enter("login", email, PASSWORD).status_code == 200


def test_each_further_failure_doubles_the_wait(dashboard: Any) -> None:
    email = unique_email("victim")
    dashboard().signup(email)
    attacker = dashboard()
    for _ in range(login_guard.FREE_FAILURES):
        assert attacker.enter("login", email, WRONG).status_code == 401

    waits = []
    for _ in range(2):
        locked = attacker.enter("login", email, WRONG)
        assert locked.status_code == 429
        waits.append(locked.json()["error"]["details"]["retry_after"])
        # Wait out the lock for as long as the server says (polling would spend the per-IP
        # attempt limit), then fail once more.
        deadline = time.monotonic() + 30
        while locked.status_code == 429:
            assert time.monotonic() < deadline, "the lock never lifted"
            time.sleep(int(locked.headers["Retry-After"]))
            locked = attacker.enter("login", email, WRONG)
        assert locked.status_code == 401
    final = attacker.enter("login", email, WRONG)
    assert final.status_code == 429
    waits.append(final.json()["error"]["details"]["retry_after"])
    assert waits[0] <= waits[1] < waits[2], waits  # 1 s, 2 s, 4 s (rounded up)
    assert waits[2] >= 3


def test_a_good_login_forgives_the_failures_before_it(dashboard: Any) -> None:
    email = unique_email("typo")
    dashboard().signup(email)
    clumsy = dashboard()
    for _ in range(login_guard.FREE_FAILURES - 1):
        assert clumsy.enter("login", email, WRONG).status_code == 401
    assert clumsy.enter("login", email, PASSWORD).status_code == 200
    for _ in range(login_guard.FREE_FAILURES - 1):  # a fresh allowance, not a lock
        assert clumsy.enter("login", email, WRONG).status_code == 401


def test_passwords_use_owasp_argon2id_and_old_hashes_are_rehashed(
    server: LiveServer, dashboard: Any
) -> None:
    email = unique_email("params")
    user = dashboard().signup(email).user
    assert user is not None
    fresh = stored_hash(server, email)
    assert fresh.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), fresh

    # A hash from before (RFC 9106's low-memory profile, argon2-cffi's old default).
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, type=Type.ID)
    old_hash = old.hash(PASSWORD)
    state = server.runtime.state
    server.call(state.write(store.set_password_hash, user["user_id"], old_hash))
    assert HASHER.check_needs_rehash(old_hash)

    assert dashboard().enter("login", email, PASSWORD).status_code == 200
    rehashed = stored_hash(server, email)
    assert rehashed != old_hash
    assert rehashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), rehashed
    assert dashboard().enter("login", email, PASSWORD).status_code == 200
    assert stored_hash(server, email) == rehashed  # no rehash once current


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def test_twenty_concurrent_logins_keep_memory_and_health_bounded(
    server: LiveServer, dashboard: Any
) -> None:
    """The server runs in this process: its peak RSS is this process's (VmHWM, reset first)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    except OSError as error:
        pytest.skip(f"cannot reset the peak RSS here: {error}")
    email = unique_email("burst")
    dashboard().signup(email)
    clients = [dashboard() for _ in range(20)]  # each from its own address, inside its limits
    Path("/proc/self/clear_refs").write_text("5")
    before = memory_kib("VmRSS")

    start = threading.Barrier(len(clients) + 1)
    codes: list[int] = []
    health: list[float] = []

    def login(client: Any) -> None:
        start.wait()
        codes.append(client.enter("login", email, PASSWORD).status_code)

    threads = [threading.Thread(target=login, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    start.wait()
    with httpx.Client(base_url=server.url, timeout=30) as probe:
        while any(t.is_alive() for t in threads):
            began = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            health.append(time.monotonic() - began)
    for thread in threads:
        thread.join()

    grown_mib = (memory_kib("VmHWM") - before) / 1024
    assert codes == [200] * 20, codes
    slowest = max(health, default=0.0)
    print(f"20 concurrent logins: peak RSS +{grown_mib:.0f} MiB, slowest /healthz {slowest:.3f} s")
    # One or two 19 MiB hashes at a time, plus threads and sockets: far from 20 x 64 MiB.
    assert grown_mib < 150, f"peak RSS grew by {grown_mib:.0f} MiB"
