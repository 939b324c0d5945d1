"""A snapshot in format 1 (written before orders carried an order group) still serves recovery
on both databases: restored, its digest checked in its own form by the forked child, not skipped
for a full replay; and the state it gives takes grouped orders from then on."""

from __future__ import annotations

import json
from pathlib import Path

from ballast_exchange.domain import Engine, Side, digest
from ballast_exchange.domain import commands as c
from ballast_exchange.domain import snapshot_codec as codec
from ballast_exchange.service.exchange import RecoveryProgress, replay
from ballast_exchange.store.database import Database, begin_write
from ballast_exchange.store.journal import decode_command
from ballast_exchange.store.projection import JournalItem, write_batch

from .test_snapshots_api import _publish

DATA = Path(__file__).parents[1] / "domain" / "data"


def test_recovery_uses_a_format_1_snapshot(database_url: str) -> None:
    data = DATA.joinpath("snapshot_v1.bin").read_bytes()
    assert codec.read_header(data).version == 1
    lines = DATA.joinpath("snapshot_v1.commands.jsonl").read_text().splitlines()
    commands = [decode_command(*json.loads(line)) for line in lines]
    grouped = c.PlaceOrder(10**6, "desk0", "mkt0", Side.BUY, 3, 100, order_group_id="grp_a")
    commands.append(grouped)  # after the snapshot: replayed onto the restored state
    database = Database(database_url)
    database.upgrade()
    try:
        sql = database.engine
        engine = Engine()
        items = [
            JournalItem(number, command, engine.execute(command), command.time)
            for number, command in enumerate(commands, 1)
        ]
        with begin_write(sql) as conn:
            write_batch(conn, items)
        _publish(sql, data)
        progress = RecoveryProgress()
        found = replay(sql, progress=progress)
        assert progress.skipped == []
        assert found.snapshot == len(commands) - 1 == codec.read_header(data).command_no
        assert digest(found.engine) == digest(engine)
        placed = items[-1].events[0].order_id  # type: ignore[attr-defined]
        assert found.engine.orders[placed].order_group_id == "grp_a"
    finally:
        database.dispose()
