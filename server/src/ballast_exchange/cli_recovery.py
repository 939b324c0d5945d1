"""``ballast admin snapshot``, ``verify`` and ``journal archive|restore`` (docs/operations.md
"Snapshots and the journal").

``snapshot`` asks the running server to snapshot its engine now. ``verify`` is the auditor's
check: the server reports the digest of its live state and the command it covers; this process
then replays the journal from the first command (archived segments first, with ``--archive``)
through that command on its own engine and compares the digests. ``journal archive`` moves the
journal before the oldest kept snapshot to compressed files; ``journal restore`` brings it back.
The last three read the database directly (``--database-url``, ``$BALLAST_DATABASE_URL``, else
the data dir's SQLite file): they may run while the server does.

``cli.py`` hooks these in with ``add_recovery``, handing over its own helpers (the server's
address, the leaf-command builder) so that this module never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

SNAPSHOT_TIMEOUT_S = 900.0  # a snapshot of millions of orders takes a while; the server says
DATABASE_URL_VAR = "BALLAST_DATABASE_URL"


class _Helpers:
    def __init__(
        self,
        admin_command: Callable[..., argparse.ArgumentParser],
        server_url: Callable[[argparse.Namespace], str],
    ) -> None:
        self.admin_command = admin_command
        self.server_url = server_url


def add_recovery(
    area: Any,
    admin_command: Callable[..., argparse.ArgumentParser],
    server_url: Callable[[argparse.Namespace], str],
) -> None:
    """Add ``snapshot``, ``verify`` and ``journal`` to ``ballast admin``."""
    helpers = _Helpers(admin_command, server_url)
    admin_command(
        area,
        "snapshot",
        "snapshot the engine now (recovery then replays only the journal after it)",
        lambda a: take_snapshot(a, helpers),
    )
    verify = admin_command(
        area,
        "verify",
        "replay the whole journal here and compare with the live state's digest",
        lambda a: verify_state(a, helpers),
    )
    database_option(verify)
    verify.add_argument(
        "--archive",
        type=Path,
        metavar="DIR",
        help="read journal segments archived there before the journal table (default: none)",
    )
    journal = area.add_parser(
        "journal",
        help="archive the journal before the oldest kept snapshot, or restore it",
        description="Move the journal before the oldest kept snapshot to compressed files, "
        "or put archived segments back (for a full replay audit).",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    archive = admin_command(
        journal,
        "archive",
        "move journal commands up to the oldest kept snapshot to gzip'd segment files",
        archive_journal,
    )
    database_option(archive)
    archive.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="where the segments go (default: DATA_DIR/journal-archive)",
    )
    restore = admin_command(
        journal, "restore", "put archived journal segments back into the database", restore_journal
    )
    database_option(restore)
    restore.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="DIR",
        help="where the segments are (default: DATA_DIR/journal-archive)",
    )


def database_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_VAR) or None,
        help=f"the server's database (default: ${DATABASE_URL_VAR}, else DATA_DIR/ballast.db)",
    )


def database_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    return f"sqlite:///{(Path(args.data_dir) / 'ballast.db').resolve()}"


def out(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, separators=(",", ":")))
    else:
        print("\n".join(lines))


def fail(message: str, status: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def admin_request(
    args: argparse.Namespace, helpers: _Helpers, method: str, path: str
) -> tuple[int, dict[str, Any]]:
    """``(status, JSON)`` from the admin API; ``(0, {"error": why})`` when there is no answer."""
    try:
        url = helpers.server_url(args)
    except Exception as error:  # cli.AdminError: its message says what to do
        return 0, {"error": str(error)}
    token_file = Path(args.data_dir) / "admin.token"
    if not token_file.exists():
        return 0, {"error": f"no admin credential at {token_file} (pass --data-dir)"}
    try:
        response = httpx.request(
            method,
            f"{url}/v1/admin{path}",
            headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
            timeout=SNAPSHOT_TIMEOUT_S,
        )
    except httpx.TransportError as error:
        return 0, {"error": f"no Ballast server answers at {url} ({type(error).__name__})"}
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        data = {"error": {"message": f"answered {response.status_code} without JSON"}}
    return response.status_code, data


def refused(status: int, data: dict[str, Any]) -> int:
    if status == 0:
        return fail(str(data["error"]), 2)
    problem = data.get("error", {})
    return fail(f"{problem.get('code')}: {problem.get('message')}", 2 if status == 401 else 1)


def take_snapshot(args: argparse.Namespace, helpers: _Helpers) -> int:
    status, data = admin_request(args, helpers, "POST", "/snapshots")
    if status != 201:
        return refused(status, data)
    s = data["snapshot"]
    out(
        args,
        data,
        [
            f"snapshot of command {s['command_no']}"
            + (" (already stored)" if s["already_stored"] else ""),
            f"  resting orders  {s['resting_orders']}",
            f"  size            {s['size_bytes']} bytes ({s['payload_bytes']} uncompressed)",
            f"  matching pause  {s['pause_ms']} ms",
            f"  took            {s['duration_ms']} ms",
        ],
    )
    return 0


def verify_state(args: argparse.Namespace, helpers: _Helpers) -> int:
    from .domain import select_engine
    from .domain import snapshot_codec as codec
    from .service.exchange import remember_client_order
    from .store.database import Database

    status, live = admin_request(args, helpers, "GET", "/state-digest")
    if status != 200:
        return refused(status, live)
    through = int(live["command_no"])
    started = time.monotonic()
    choice = select_engine()
    engine = choice.new()
    client_orders: dict[tuple[str, str], int] = {}
    expected = 1
    database = Database(database_url(args))
    try:
        for command_no, command in commands(database, args.archive):
            if command_no > through:
                break
            if command_no != expected:
                return fail(
                    f"the journal jumps from command {expected - 1} to {command_no}: restore "
                    "the archived journal (`ballast admin journal restore`) or pass --archive"
                )
            events = engine.execute(command)
            remember_client_order(client_orders, command, events)
            expected += 1
    finally:
        database.dispose()
    if expected - 1 != through:
        return fail(f"the journal ends at command {expected - 1}, the live state is at {through}")
    replayed = codec.state_digest(engine, client_orders)
    same = replayed == live["digest"]
    data = {
        "command_no": through,
        "live_digest": live["digest"],
        "replayed_digest": replayed,
        "match": same,
        "replay_seconds": round(time.monotonic() - started, 3),
        "engine": choice.name,
    }
    out(
        args,
        data,
        [
            ("OK: " if same else "MISMATCH: ")
            + f"a full replay of commands 1-{through} "
            + ("reproduces" if same else "does NOT reproduce")
            + " the live state",
            f"  live      {live['digest']}",
            f"  replayed  {replayed}  ({choice.name} engine, {data['replay_seconds']} s)",
        ],
    )
    return 0 if same else 1


def commands(database: Any, archive: Path | None) -> Iterator[tuple[int, Any]]:
    """Every journaled command in order: archived segments first, then the journal table."""
    from .store.journal import decode_command, load_commands
    from .store.journal_archive import read_segment, segments

    last = 0
    if archive is not None:
        for segment in segments(archive):
            for row in read_segment(segment.path):
                number = int(str(row["command_no"]))
                if number > last:
                    yield number, decode_command(str(row["kind"]), str(row["payload"]))
                    last = number
    with database.engine.connect() as conn:
        yield from load_commands(conn, after=last)


def archive_journal(args: argparse.Namespace) -> int:
    from .store import journal_archive
    from .store import snapshots as snapshot_store
    from .store.database import Database

    target = args.to or Path(args.data_dir) / "journal-archive"
    database = Database(database_url(args))
    try:
        with database.engine.connect() as conn:
            kept = snapshot_store.listed(conn)
        if not kept:
            return fail("no snapshot is stored: the whole journal is needed to recover")
        through = kept[-1].command_no
        written = journal_archive.archive(database.engine, target, through)
    finally:
        database.dispose()
    data = {
        "through": through,
        "segments": [
            {"path": str(s.path), "first": s.first, "last": s.last, "commands": s.commands}
            for s in written
        ],
    }
    lines = [f"journal archived through command {through} (the oldest kept snapshot)"]
    lines += [f"  {s.path}  {s.commands} commands" for s in written] or ["  nothing to archive"]
    out(args, data, lines)
    return 0


def restore_journal(args: argparse.Namespace) -> int:
    from .store import journal_archive
    from .store.database import Database

    source = args.source or Path(args.data_dir) / "journal-archive"
    if not journal_archive.segments(source):
        return fail(f"no journal segments in {source}")
    database = Database(database_url(args))
    try:
        restored = journal_archive.restore(database.engine, source)
    finally:
        database.dispose()
    data = {
        "segments": [
            {"path": str(s.path), "first": s.first, "last": s.last, "restored": s.commands}
            for s in restored
        ]
    }
    lines = ["journal restored:"]
    lines += [f"  {s.path}  {s.commands} commands put back" for s in restored]
    out(args, data, lines)
    return 0
