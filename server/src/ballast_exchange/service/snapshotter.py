"""Engine snapshots taken off the path of orders: the process forks, the child encodes.

``os.fork()`` between two commands gives the child the engine exactly as it stands after the
last executed command, copy-on-write, and the parent carries on matching at once: its pause is
the fork itself, measured and exported as ``ballast_snapshot_pause_seconds``
(``service/forking.py``; docs/adr/0016-engine-snapshots.md).

The parent, in a worker thread, reads the bytes the child sends, waits until the journal *and*
the projection have passed the command they cover (a snapshot must never cover a command a
crash could lose, nor one whose events the query tables still lack), writes the chunks and
publishes the row; then prunes old snapshots and applies the journal retention. One snapshot at
a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

from ..domain import engine_name
from ..domain import snapshot_codec as codec
from ..store import journal_archive
from ..store import snapshots as snapshot_store
from .exchange import Exchange, ServiceUnavailable
from .forking import ChildFailed, fork_digest, fork_encoder, ready_to_fork, wait_child
from .metrics import Metrics

log = logging.getLogger(__name__)

RETENTIONS = ("keep", "archive", "discard")


class SnapshotFailed(ChildFailed):
    """A snapshot could not be taken (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """When to snapshot and what to keep (``Settings.snapshot_*``, ``journal_retention``)."""

    every_commands: int = 100_000  # 0: not by count
    every_s: float = 3600.0  # 0: not by time
    keep: int = 3
    chunk_bytes: int = snapshot_store.DEFAULT_CHUNK_BYTES
    timeout_s: float = 600.0  # a child still running after this is killed
    retention: str = "keep"  # the journal before the oldest kept snapshot: keep, archive, discard
    archive_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    command_no: int
    size_bytes: int
    payload_bytes: int
    digest: str
    pause_s: float  # the parent's: the fork
    duration_s: float  # the child's: encoding, waiting for storage, writing
    resting_orders: int
    skipped: bool = False  # a snapshot of this command was already stored

    def describe(self) -> dict[str, Any]:
        return {
            "command_no": self.command_no,
            "size_bytes": self.size_bytes,
            "payload_bytes": self.payload_bytes,
            "digest": self.digest,
            "pause_ms": round(self.pause_s * 1000, 3),
            "duration_ms": round(self.duration_s * 1000, 1),
            "resting_orders": self.resting_orders,
            "already_stored": self.skipped,
        }


class Snapshotter:
    def __init__(
        self,
        exchange: Exchange,
        policy: SnapshotPolicy,
        metrics: Metrics,
    ) -> None:
        self.exchange = exchange
        self.policy = policy
        self.last: Taken | None = None
        self.last_at: float | None = None  # time.time() of the last snapshot stored
        self.max_pause_s = 0.0
        self.failures = 0
        self._covered = exchange.recovered_from_snapshot
        self._running: asyncio.Future[Taken] | None = None
        self._task: asyncio.Task[None] | None = None
        self._register(metrics)

    def _register(self, metrics: Metrics) -> None:
        def one(value: float | None) -> list[tuple[tuple[()], float]]:
            return [] if value is None else [((), float(value))]

        metrics.gauge(
            "ballast_snapshot_age_seconds",
            "Seconds since the last engine snapshot this process stored",
            (),
            lambda: one(None if self.last_at is None else time.time() - self.last_at),
        )
        metrics.gauge(
            "ballast_snapshot_command_no",
            "The journal command the last snapshot covers (recovery replays only after it)",
            (),
            lambda: one(self._covered),
        )
        metrics.gauge(
            "ballast_snapshot_size_bytes",
            "Stored size of the last engine snapshot",
            (),
            lambda: one(None if self.last is None else self.last.size_bytes),
        )
        metrics.gauge(
            "ballast_snapshot_duration_seconds",
            "How long the last snapshot took in its child process (encode, wait, write)",
            (),
            lambda: one(None if self.last is None else self.last.duration_s),
        )
        metrics.gauge(
            "ballast_snapshot_pause_seconds",
            "How long matching paused for the last snapshot (the fork)",
            (),
            lambda: one(None if self.last is None else self.last.pause_s),
        )
        metrics.gauge(
            "ballast_snapshot_pause_max_seconds",
            "The longest matching pause any snapshot of this process caused",
            (),
            lambda: one(self.max_pause_s),
        )
        metrics.gauge(
            "ballast_gc_frozen_objects",
            "Objects out of the cycle collector's sight since recovery or a snapshot froze them",
            (),
            lambda: one(gc.get_freeze_count()),
        )
        metrics.gauge(
            "ballast_snapshot_failures",
            "Snapshots that failed (a running count; the log says why)",
            (),
            lambda: one(self.failures),
        )

    # ------------------------------------------------------------------------ schedule

    def start(self) -> None:
        policy = self.policy
        self.last_at = time.time() if self._covered else None
        if policy.every_commands > 0 or policy.every_s > 0:
            self._task = asyncio.get_running_loop().create_task(self._schedule())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _schedule(self) -> None:
        policy = self.policy
        since = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            behind = self.exchange.command_no - self._covered
            if behind <= 0:
                since = time.monotonic()
                continue
            due = (policy.every_commands > 0 and behind >= policy.every_commands) or (
                policy.every_s > 0 and time.monotonic() - since >= policy.every_s
            )
            if not due or not self.exchange.healthy:
                continue
            try:
                await self.take()
            except SnapshotFailed as error:
                log.warning("scheduled snapshot failed: %s", error)
            since = time.monotonic()

    # ------------------------------------------------------------------------ taking one

    async def take(self) -> Taken:
        """Snapshot the engine now (or join the snapshot being taken); ``SnapshotFailed``."""
        if self._running is not None and not self._running.done():
            return await asyncio.shield(self._running)
        future: asyncio.Future[Taken] = asyncio.get_running_loop().create_future()
        self._running = future
        try:
            taken = await self._take()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: a joiner may not exist
            raise
        future.set_result(taken)
        return taken

    async def _take(self) -> Taken:
        exchange = self.exchange
        loop = asyncio.get_running_loop()
        # The fork copies a page-table entry for every page the process holds: free pages go
        # back to the system and the rest into huge pages first, in a worker thread while the
        # loop runs on (forking.ready_to_fork).
        await loop.run_in_executor(None, ready_to_fork)
        # Nothing awaited from here to the fork: the child sees exactly command_no's state.
        command_no = exchange.command_no
        resting = len(exchange.engine.orders)
        started = perf_counter()
        pid, read_end = fork_encoder(exchange, command_no)
        pause = perf_counter() - started
        self.max_pause_s = max(self.max_pause_s, pause)
        try:
            result, data = await loop.run_in_executor(
                None, wait_child, pid, read_end, self.policy.timeout_s
            )
            # Stored means journaled and projected: the projector follows the journal.
            await exchange.projected()
            skipped = await loop.run_in_executor(None, self._store, command_no, result, data)
        except (ChildFailed, ServiceUnavailable) as error:
            self.failures += 1
            raise SnapshotFailed(str(error)) from error
        except Exception as error:
            self.failures += 1
            log.exception("storing the snapshot of command %d failed", command_no)
            raise SnapshotFailed(f"{type(error).__name__}: {error}") from error
        taken = Taken(
            command_no=command_no,
            size_bytes=len(data),
            payload_bytes=int(result["payload_bytes"]),
            digest=str(result["digest"]),
            pause_s=pause,
            duration_s=perf_counter() - started,
            resting_orders=resting,
            skipped=skipped,
        )
        self.last = taken
        self.last_at = time.time()
        self._covered = max(self._covered, command_no)
        log.info(
            "snapshot of command %d: %d resting orders, %d bytes, pause %.2f ms, %.2f s",
            command_no,
            resting,
            taken.size_bytes,
            pause * 1000,
            taken.duration_s,
        )
        try:
            await loop.run_in_executor(None, self._retain)
        except Exception:  # a failed prune or archive leaves more on disk, nothing worse
            log.exception("snapshot retention failed")
        return taken

    def _store(self, command_no: int, result: dict[str, Any], data: bytes) -> bool:
        """Write and publish the child's bytes; False if that command's snapshot was stored."""
        sql = self.exchange.sql
        with sql.connect() as conn:
            if snapshot_store.exists(conn, command_no):
                return True
            if snapshot_store.stored_through(conn) < command_no:  # the projector said so
                raise SnapshotFailed(f"command {command_no} is not stored")
        header = codec.read_header(data)
        if header.command_no != command_no or header.digest != result["digest"]:
            raise SnapshotFailed("the snapshot process sent bytes of another state")
        started = perf_counter()
        snapshot_store.sweep_unpublished(sql)
        chunks = snapshot_store.write_chunks(sql, command_no, data, self.policy.chunk_bytes)
        snapshot_store.publish(
            sql,
            snapshot_store.StoredSnapshot(
                command_no=command_no,
                version=header.version,
                checksum=hashlib.sha256(data).hexdigest(),
                digest=header.digest,
                size_bytes=len(data),
                payload_bytes=header.payload_bytes,
                chunks=chunks,
                engine=engine_name(self.exchange.engine),
                created_at=time.time_ns() // 1_000_000,
                duration_ms=int((float(result["duration_s"]) + perf_counter() - started) * 1000),
            ),
        )
        return False

    def _retain(self) -> None:
        policy = self.policy
        sql = self.exchange.sql
        pruned = snapshot_store.prune(sql, policy.keep)
        if pruned:
            log.info("pruned snapshots of commands %s", pruned)
        if policy.retention == "keep":
            return
        with sql.connect() as conn:
            kept = snapshot_store.listed(conn)
        if not kept:
            return
        oldest = kept[-1].command_no
        if policy.retention == "discard":
            gone = journal_archive.discard(sql, oldest)
            if gone:
                log.info("discarded %d journal commands up to %d", gone, oldest)
        elif policy.archive_dir is not None:
            for segment in journal_archive.archive(sql, policy.archive_dir, oldest):
                log.info("archived journal %d-%d to %s", segment.first, segment.last, segment.path)

    # ------------------------------------------------------------------------ the live digest

    async def live_digest(self) -> tuple[int, str]:
        """``(command_no, digest)`` of the live state, computed in a forked child."""
        command_no = self.exchange.command_no
        pid, fd = fork_digest(self.exchange)
        loop = asyncio.get_running_loop()
        try:
            result, _ = await loop.run_in_executor(None, wait_child, pid, fd, self.policy.timeout_s)
        except ChildFailed as error:
            raise SnapshotFailed(str(error)) from error
        return command_no, str(result["digest"])
