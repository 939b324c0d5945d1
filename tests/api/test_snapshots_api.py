"""Engine snapshots through a real server (issue 17): taken on demand by the admin API while the
server runs, recovery restores the newest valid one and replays only the journal after it, and
reaches the digest of a full replay, on SQLite and PostgreSQL. A damaged newest snapshot is
skipped for the one before; the journal before the oldest kept snapshot can be archived to
files and restored for a full replay again."""

from __future__ import annotations

import array
import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from ballast_exchange.domain import Engine, MarketKind, MarketStatus, Side, digest
from ballast_exchange.domain import commands as c
from ballast_exchange.domain import snapshot_codec as codec
from ballast_exchange.service.exchange import JournalGap, RecoveryProgress, replay
from ballast_exchange.store import journal_archive
from ballast_exchange.store import snapshots as snapshot_store
from ballast_exchange.store.database import Database, begin_write
from ballast_exchange.store.projection import JournalItem, write_batch
from tests.live_server import LiveServer, live_server
from tests.signed_client import Admin

from .test_restart_api import LIMITS, _digest_on_loop, client_for, ok, place, trade

KEEP = {"snapshot_every_commands": 0, "snapshot_every_s": 0, "journal_retention": "keep"}


def admin_http(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.api}/admin",
        timeout=60,
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )


def take(server: LiveServer) -> dict[str, Any]:
    with admin_http(server) as http:
        taken: dict[str, Any] = ok(http.post("/snapshots"), 201)["snapshot"]
    return taken


def more_trading(server: LiveServer, accounts: tuple[dict[str, str], ...], n: int) -> None:
    alice = client_for(server, accounts[0]["key"], accounts[0]["secret"])
    try:
        for i in range(n):
            place(
                alice,
                "rst-bin",
                "buy",
                round(0.05 + 0.01 * (i % 20), 2),
                1 + i % 3,
                client_order_id=f"more-{n}-{i}",
            )
    finally:
        alice.close()


async def _live_state_digest(server: LiveServer) -> str:
    exchange = server.runtime.exchange
    await exchange.barrier()
    return codec.state_digest(exchange.engine, exchange.client_orders)


def full_replay_digest(sql: Any) -> tuple[str, str]:
    found = replay(sql, Engine())
    return digest(found.engine), codec.state_digest(found.engine, found.client_orders)


def test_recovery_from_a_snapshot_equals_a_full_replay(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "var"
    settings = {**LIMITS, **KEEP}
    with live_server(data_dir, database_url=database_url, **settings) as server:
        accounts = trade(server)
        first = take(server)
        assert first["command_no"] > 0 and first["pause_ms"] >= 0 and first["resting_orders"] > 0
        more_trading(server, accounts, 15)
        second = take(server)
        assert second["command_no"] > first["command_no"]
        again = take(server)  # nothing new: the stored one stands
        assert again["command_no"] == second["command_no"] and again["already_stored"]
        more_trading(server, accounts, 10)  # the journal tail after the last snapshot
        live = server.call(_digest_on_loop(server))
        live_state = server.call(_live_state_digest(server))
        with admin_http(server) as http:
            reported = ok(http.get("/state-digest"))
            listed = ok(http.get("/snapshots"))
            metrics = httpx.get(f"{server.api.removesuffix('/v1')}/metrics").text
        assert reported["digest"] == live_state
        assert [s["command_no"] for s in listed["snapshots"]] == [
            second["command_no"],
            first["command_no"],
        ]
        for name in ("age_seconds", "size_bytes", "duration_seconds", "pause_seconds"):
            assert f"ballast_snapshot_{name} " in metrics, name

    database = Database(database_url)
    try:
        sql = database.engine
        progress = RecoveryProgress()
        found = replay(sql, progress=progress)
        assert found.snapshot == second["command_no"] == progress.snapshot
        assert progress.replayed == found.command_no - second["command_no"] > 0
        assert digest(found.engine) == live
        assert codec.state_digest(found.engine, found.client_orders) == live_state
        assert full_replay_digest(sql) == (live, live_state)

        # The newest snapshot damaged: recovery says why and falls back to the one before.
        with sql.begin() as conn:
            snapshot_store.damage(conn, second["command_no"])
        progress = RecoveryProgress()
        found = replay(sql, progress=progress)
        assert found.snapshot == first["command_no"]
        assert len(progress.skipped) == 1 and "checksum" in progress.skipped[0]
        assert digest(found.engine) == live
    finally:
        database.dispose()

    # A restarted server recovers the same way, and still knows the client order ids bound
    # before the snapshot (a retry returns the first order).
    with live_server(data_dir, database_url=database_url, **settings) as server:
        assert server.call(_digest_on_loop(server)) == live
        ready = ok(httpx.get(f"{server.api.removesuffix('/v1')}/readyz"))
        assert ready["recovery"]["snapshot"] == first["command_no"]
        bob = client_for(server, accounts[1]["key"], accounts[1]["secret"])
        try:
            body = {"market_id": "rst-bin", "side": "sell", "price": 0.55, "size": 4}
            retry = bob.post("/orders", {**body, "client_order_id": "bob-ask-1"})
            assert retry.status_code == 200, retry.text
        finally:
            bob.close()


def test_archived_journal_restores_for_a_full_replay(tmp_path: Path, database_url: str) -> None:
    """Retention "archive": the journal before the oldest kept snapshot goes to files; recovery
    needs only what stays; restoring the files makes a full replay possible again."""
    data_dir = tmp_path / "var"
    archive_dir = tmp_path / "archive"
    settings = {
        **LIMITS,
        **KEEP,
        "journal_retention": "archive",
        "journal_archive_dir": archive_dir,
        "snapshot_keep": 1,
    }
    with live_server(data_dir, database_url=database_url, **settings) as server:
        accounts = trade(server)
        taken = take(server)
        more_trading(server, accounts, 5)
        live = server.call(_digest_on_loop(server))
    # Archived at the snapshot, when it covered the whole journal: all but the newest row.
    files = journal_archive.segments(archive_dir)
    assert files and files[-1].last == taken["command_no"] - 1
    database = Database(database_url)
    try:
        sql = database.engine
        with sql.connect() as conn:
            assert journal_archive.journal_bounds(conn)[1] == taken["command_no"]
        assert digest(replay(sql).engine) == live
        with pytest.raises(JournalGap):
            replay(sql, Engine())  # a full replay needs the archived journal back
        restored = journal_archive.restore(sql, archive_dir)
        assert sum(s.commands for s in restored) == taken["command_no"] - 1
        assert journal_archive.restore(sql, archive_dir)[0].commands == 0  # idempotent
        assert digest(replay(sql, Engine()).engine) == live
    finally:
        database.dispose()


def test_snapshot_routes_need_the_admin_token(server: LiveServer) -> None:
    with httpx.Client(base_url=f"{server.api}/admin", timeout=30) as http:
        for method, path in (
            ("POST", "/snapshots"),
            ("GET", "/snapshots"),
            ("GET", "/state-digest"),
        ):
            response = http.request(method, path)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
    Admin(server.api, server.admin_token)  # the fixture's server is otherwise untouched


def _twisted(data: bytes) -> bytes:
    """The same state, its ledger keys stored in reverse: it decodes and restores, but does not
    re-encode to its own digest (the writer sorts them), as a faulty writer's snapshot would."""
    payload = zlib.decompress(data[codec.HEADER_BYTES :])
    skeleton, columns = codec._split(payload)
    keys, index = skeleton["ledger"]
    skeleton["ledger"] = [keys[::-1], index]
    columns[index] = array.array("q", reversed(columns[index]))
    text = json.dumps(skeleton, separators=(",", ":")).encode()
    twisted = b"".join(
        [
            struct.pack("<QI", len(text), len(columns)),
            text,
            struct.pack(f"<{len(columns)}Q", *(len(c) for c in columns)),
            *(c.tobytes() for c in columns),
        ]
    )
    header = codec.read_header(data)
    head = struct.pack(
        "<8sHHQQ32s",
        codec.MAGIC,
        codec.VERSION,
        0,
        header.command_no,
        len(twisted),
        hashlib.sha256(twisted).digest(),
    )
    return head + zlib.compress(twisted)


def _publish(sql: Any, data: bytes) -> None:
    header = codec.read_header(data)
    chunks = snapshot_store.write_chunks(sql, header.command_no, data)
    snapshot_store.publish(
        sql,
        snapshot_store.StoredSnapshot(
            command_no=header.command_no,
            version=header.version,
            checksum=hashlib.sha256(data).hexdigest(),
            digest=header.digest,
            size_bytes=len(data),
            payload_bytes=header.payload_bytes,
            chunks=chunks,
            engine="test",
            created_at=0,
            duration_ms=0,
        ),
    )


def test_a_snapshot_that_does_not_re_encode_to_its_digest_is_skipped(database_url: str) -> None:
    """The digest check runs in a forked child while the tail is replayed; on a mismatch
    recovery starts again without that snapshot."""
    database = Database(database_url)
    database.upgrade()
    try:
        sql = database.engine
        engine = Engine()
        commands: list[c.Command] = [
            c.CreateAccount(1, "a"),
            c.Deposit(1, "a", 10**9),
            c.CreateAccount(1, "b"),
            c.Deposit(1, "b", 10**9),
            c.CreateMarket(1, "m", MarketKind.BINARY, 1_000, 0, 1_000, 4_102_444_800_000),
            c.ChangeMarketStatus(1, "m", MarketStatus.OPEN),
        ]
        commands += [
            c.PlaceOrder(
                2,
                "a" if n % 2 else "b",
                "m",
                Side.BUY if n % 2 else Side.SELL,
                1 + n % 4,
                400 + n % 50 if n % 2 else 600 - n % 50,
            )
            for n in range(60)
        ]
        snapshots_at = {30: b"", 50: b""}
        for number, command in enumerate(commands, 1):
            events = engine.execute(command)
            with begin_write(sql) as conn:
                write_batch(conn, [JournalItem(number, command, events, command.time)])
            if number in snapshots_at:
                snapshots_at[number] = codec.encode(engine, {}, number).data
        _publish(sql, snapshots_at[30])
        _publish(sql, _twisted(snapshots_at[50]))
        progress = RecoveryProgress()
        found = replay(sql, progress=progress)
        assert found.snapshot == 30
        assert len(progress.skipped) == 1 and progress.skipped[0].startswith("50: the restored")
        assert digest(found.engine) == digest(engine)
    finally:
        database.dispose()


def test_a_discarded_journal_keeps_its_newest_row(tmp_path: Path, database_url: str) -> None:
    """The sandbox's retention deletes the journal up to the oldest kept snapshot, but never
    its newest row: with no command after the snapshot, a restart must still know the journal
    reaches it (else it would start from nothing)."""
    data_dir = tmp_path / "var"
    settings = {**LIMITS, **KEEP, "journal_retention": "discard", "snapshot_keep": 1}
    with live_server(data_dir, database_url=database_url, **settings) as server:
        trade(server)
        live = server.call(_digest_on_loop(server))
        taken = take(server)
    database = Database(database_url)
    try:
        with database.engine.connect() as conn:
            last, first = journal_archive.journal_bounds(conn)
        assert last == first == taken["command_no"]
        found = replay(database.engine)
        assert (found.snapshot, found.command_no) == (taken["command_no"], taken["command_no"])
        assert digest(found.engine) == live
    finally:
        database.dispose()
    with live_server(data_dir, database_url=database_url, **settings) as server:
        assert server.call(_digest_on_loop(server)) == live
