"""Engine snapshots in the database: chunks first, then the row that publishes them.

A snapshot's bytes (``domain.snapshot_codec``) are written in chunks, each chunk its own short
transaction, so that on SQLite a large snapshot never holds the write lock for long against the
journal's group commits. The ``snapshots`` row is inserted last, in one transaction with nothing
else: a row present means every chunk is stored. Chunks without a row (a write cut short by a
crash) are swept before the next write and ignored by readers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, delete, func, select

from .database import begin_write
from .projection import projected_through
from .schema import journal, snapshot_chunks, snapshots

DEFAULT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A published snapshot's row (its bytes are read with ``read``)."""

    command_no: int
    version: int
    checksum: str
    digest: str
    size_bytes: int
    payload_bytes: int
    chunks: int
    engine: str
    created_at: int
    duration_ms: int


def listed(conn: Connection) -> list[StoredSnapshot]:
    """Every published snapshot, newest first."""
    rows = conn.execute(select(snapshots).order_by(snapshots.c.command_no.desc())).all()
    return [StoredSnapshot(**row._mapping) for row in rows]


def read(conn: Connection, found: StoredSnapshot) -> bytes:
    """A snapshot's bytes, whole; ``ValueError`` if they fail the row's checksum or length."""
    parts = conn.execute(
        select(snapshot_chunks.c.chunk_no, snapshot_chunks.c.data)
        .where(snapshot_chunks.c.command_no == found.command_no)
        .order_by(snapshot_chunks.c.chunk_no)
    ).all()
    if [no for no, _ in parts] != list(range(found.chunks)):
        raise ValueError(f"snapshot {found.command_no}: chunks missing")
    data = b"".join(bytes(chunk) for _, chunk in parts)
    if len(data) != found.size_bytes:
        raise ValueError(f"snapshot {found.command_no}: {len(data)} bytes, not {found.size_bytes}")
    if hashlib.sha256(data).hexdigest() != found.checksum:
        raise ValueError(f"snapshot {found.command_no}: checksum mismatch")
    return data


def sweep_unpublished(sql: Engine) -> int:
    """Delete chunks no published row claims (writes a crash cut short); how many."""
    published = select(snapshots.c.command_no)
    with begin_write(sql) as conn:
        gone = conn.execute(
            delete(snapshot_chunks).where(snapshot_chunks.c.command_no.not_in(published))
        )
    return int(gone.rowcount or 0)


def write_chunks(
    sql: Engine, command_no: int, data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> int:
    """Store ``data`` as chunks of ``command_no``'s snapshot, one transaction each; how many."""
    count = max(1, -(-len(data) // chunk_bytes))
    with begin_write(sql) as conn:  # leftovers of an earlier attempt at the same command
        conn.execute(delete(snapshot_chunks).where(snapshot_chunks.c.command_no == command_no))
    view = memoryview(data)
    for chunk_no in range(count):
        piece = bytes(view[chunk_no * chunk_bytes : (chunk_no + 1) * chunk_bytes])
        with begin_write(sql) as conn:
            conn.execute(
                snapshot_chunks.insert().values(
                    command_no=command_no, chunk_no=chunk_no, data=piece
                )
            )
    return count


def publish(sql: Engine, row: StoredSnapshot) -> None:
    """Make a snapshot whose chunks are stored visible to recovery."""
    values = {f: getattr(row, f) for f in StoredSnapshot.__dataclass_fields__}
    with begin_write(sql) as conn:
        conn.execute(snapshots.insert().values(**values))


def exists(conn: Connection, command_no: int) -> bool:
    found = conn.execute(
        select(snapshots.c.command_no).where(snapshots.c.command_no == command_no)
    ).first()
    return found is not None


def stored_through(conn: Connection) -> int:
    """How far both the journal and the query tables reach: a snapshot may cover no more."""
    head = conn.execute(select(func.max(journal.c.command_no))).scalar_one_or_none() or 0
    return min(int(head), projected_through(conn))


def prune(sql: Engine, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` snapshots (at least one stays); their command numbers."""
    keep = max(1, keep)
    with begin_write(sql) as conn:
        numbers = [
            int(n)
            for n in conn.execute(
                select(snapshots.c.command_no).order_by(snapshots.c.command_no.desc())
            ).scalars()
        ]
        doomed = numbers[keep:]
        if doomed:
            conn.execute(delete(snapshots).where(snapshots.c.command_no.in_(doomed)))
            conn.execute(delete(snapshot_chunks).where(snapshot_chunks.c.command_no.in_(doomed)))
    return doomed


def damage(conn: Connection, command_no: int) -> None:
    """Flip a byte of a snapshot's first chunk: the drill (and test) of recovery's fallback."""
    row = conn.execute(
        select(snapshot_chunks.c.data).where(
            and_(snapshot_chunks.c.command_no == command_no, snapshot_chunks.c.chunk_no == 0)
        )
    ).scalar_one()
    data = bytearray(row)
    data[len(data) // 2] ^= 0xFF
    conn.execute(
        snapshot_chunks.update()
        .where(and_(snapshot_chunks.c.command_no == command_no, snapshot_chunks.c.chunk_no == 0))
        .values(data=bytes(data))
    )


def total_bytes(conn: Connection) -> int:
    found = conn.execute(select(func.sum(snapshots.c.size_bytes))).scalar_one_or_none()
    return int(found or 0)


def newest(conn: Connection) -> StoredSnapshot | None:
    rows = listed(conn)
    return rows[0] if rows else None


def candidates(conn: Connection, through: int) -> Iterator[StoredSnapshot]:
    """Published snapshots covering no more than ``through``, newest first."""
    for found in listed(conn):
        if found.command_no <= through:
            yield found
