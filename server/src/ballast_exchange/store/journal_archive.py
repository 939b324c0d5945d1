"""Journal retention: old journal rows out to compressed segment files, and back.

Recovery needs the journal only after the snapshot it restores, so rows up to the oldest kept
snapshot can leave the database. ``archive`` writes them as gzip'd JSON lines, one file per
segment of ``SEGMENT_COMMANDS`` commands, each file fsynced and renamed into place before its
rows are deleted (a crash between the two leaves the rows and an identical file, and archiving
again rewrites it). ``restore`` puts rows back (skipping those present) for a full replay audit.
``discard`` deletes without files: the sandbox's bounded window.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, delete, func, select

from .database import begin_write
from .schema import journal

SEGMENT_COMMANDS = 100_000
_PREFIX = "journal-"
_SUFFIX = ".jsonl.gz"


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    first: int
    last: int
    commands: int


def journal_bounds(conn: Connection) -> tuple[int, int]:
    """``(last, first)`` command numbers in the journal table; ``(0, 1)`` when it is empty."""
    last, first = conn.execute(
        select(func.max(journal.c.command_no), func.min(journal.c.command_no))
    ).one()
    return (0, 1) if last is None else (int(last), int(first))


def journal_time(conn: Connection, command_no: int) -> int:
    """The time of journaled command ``command_no`` (0 if it is not in the table)."""
    found = conn.execute(
        select(journal.c.time).where(journal.c.command_no == command_no)
    ).scalar_one_or_none()
    return int(found or 0)


def segment_name(first: int, last: int) -> str:
    return f"{_PREFIX}{first:012d}-{last:012d}{_SUFFIX}"


def archive(sql: Engine, directory: Path, through: int) -> list[Segment]:
    """Move journal rows up to ``through`` into segment files in ``directory``.

    The newest row always stays: it is how a restart knows how far the journal reaches (and so
    that the snapshot covering it may be used), even when no command came after it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Segment] = []
    while True:
        with sql.connect() as conn:
            last, first = journal_bounds(conn)
        through = min(through, last - 1)
        if last == 0 or first > through:
            return written
        end = min(through, (first - 1) // SEGMENT_COMMANDS * SEGMENT_COMMANDS + SEGMENT_COMMANDS)
        with sql.connect() as conn:
            rows = conn.execute(
                select(*(journal.c[name] for name in _COLUMNS))
                .where(and_(journal.c.command_no >= first, journal.c.command_no <= end))
                .order_by(journal.c.command_no)
            ).all()
        path = directory / segment_name(first, end)
        _write_segment(path, [list(row) for row in rows])
        with begin_write(sql) as conn:
            conn.execute(
                delete(journal).where(
                    and_(journal.c.command_no >= first, journal.c.command_no <= end)
                )
            )
        written.append(Segment(path, first, end, len(rows)))


def discard(sql: Engine, through: int) -> int:
    """Delete journal rows up to ``through`` without keeping them (the newest row always
    stays, as with ``archive``); how many."""
    with begin_write(sql) as conn:
        last, _ = journal_bounds(conn)
        gone = conn.execute(delete(journal).where(journal.c.command_no <= min(through, last - 1)))
    return int(gone.rowcount or 0)


def segments(directory: Path) -> list[Segment]:
    """The segment files in ``directory``, oldest first."""
    found = []
    for path in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}")):
        first, last = path.name[len(_PREFIX) : -len(_SUFFIX)].split("-")
        found.append(Segment(path, int(first), int(last), 0))
    return found


def restore(sql: Engine, directory: Path) -> list[Segment]:
    """Put archived rows back into the journal (rows already there are left as they are)."""
    restored = []
    for segment in segments(directory):
        rows = list(read_segment(segment.path))
        with begin_write(sql) as conn:
            present = set(
                conn.execute(
                    select(journal.c.command_no).where(
                        and_(
                            journal.c.command_no >= segment.first,
                            journal.c.command_no <= segment.last,
                        )
                    )
                ).scalars()
            )
            missing = [row for row in rows if row["command_no"] not in present]
            if missing:
                conn.execute(journal.insert(), missing)
        restored.append(Segment(segment.path, segment.first, segment.last, len(missing)))
    return restored


_COLUMNS = ("command_no", "kind", "payload", "time", "last_seq", "epoch")


def _write_segment(path: Path, rows: list[list[object]]) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode())
                out.write(b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself, before the rows go
    finally:
        os.close(fd)


def read_segment(path: Path) -> Iterator[dict[str, object]]:
    with gzip.open(path, "rb") as lines:
        for line in lines:
            values = json.loads(line)
            if len(values) == len(_COLUMNS) - 1:
                values.append(None)  # a segment archived before rows had an epoch
            if len(values) != len(_COLUMNS):
                raise ValueError(f"{path.name}: a row of {len(values)} fields")
            yield dict(zip(_COLUMNS, values, strict=True))
