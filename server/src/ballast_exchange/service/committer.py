"""Group commit: one writer thread stores the journal rows of many commands per transaction.

The event loop hands over items as commands execute and awaits their futures; the thread takes
everything pending, writes it in one transaction, then resolves the futures. A failed commit
fails every pending future and every later one: the exchange must not run ahead of its storage.
A lock wait (another SQLite writer held the lock past the busy timeout) is not a failure: the
same batch is tried again until it commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine as SqlEngine

from ..store.database import begin_write, is_lock_wait
from ..store.projection import JournalItem, write_journal
from .metrics import Metrics

log = logging.getLogger(__name__)


class StorageFailed(Exception):
    """The store refused a commit; nothing after it will be acknowledged."""


@dataclass(slots=True)
class CommitStats:
    batches: int = 0
    items: int = 0
    last_batch_size: int = 0
    last_commit_ms: float = 0.0
    lock_waits: int = 0  # transactions that found the write lock taken and were tried again


class Committer:
    def __init__(
        self,
        engine: SqlEngine,
        loop: asyncio.AbstractEventLoop,
        on_committed: Callable[[Sequence[JournalItem], int], None] | None = None,
        max_batch: int = 5_000,
        metrics: Metrics | None = None,
        handoff: Callable[[list[JournalItem]], None] | None = None,
    ) -> None:
        """``on_committed`` hears of each stored batch on the loop, before anyone is answered;
        ``handoff`` receives it on this thread, in order (the projector)."""
        self._sql = engine
        self._metrics = metrics
        self._loop = loop
        self._on_committed = on_committed
        self._handoff = handoff
        self._max_batch = max_batch
        self._pending: list[tuple[JournalItem, asyncio.Future[None]]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self.failure: BaseException | None = None
        self.stats = CommitStats()
        self._thread = threading.Thread(target=self._run, name="ballast-committer", daemon=True)
        self._thread.start()

    def submit(self, item: JournalItem) -> asyncio.Future[None]:
        """Queue an item (call on the event loop); the future resolves once it is stored."""
        future: asyncio.Future[None] = self._loop.create_future()
        if self.failure is not None:
            future.set_exception(StorageFailed(str(self.failure)))
            return future
        with self._cond:
            self._pending.append((item, future))
            self._cond.notify()
        return future

    @property
    def backlog(self) -> int:
        """Items handed over and not yet taken into a transaction."""
        return len(self._pending)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending and self._stopping:
                    return
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            items = [item for item, _ in batch]
            started = time.perf_counter()
            try:
                if self.failure is not None:
                    raise StorageFailed(str(self.failure))
                self._write(items)
            except BaseException as error:  # any failure stops acknowledgements for good
                if self.failure is None:
                    log.error("commit failed; the exchange stops taking commands: %r", error)
                    self.failure = error
                    if self._metrics is not None:
                        self._metrics.commit_failures.inc()
                self._resolve(batch, StorageFailed(str(error)))
                continue
            stats = self.stats
            stats.batches += 1
            stats.items += len(items)
            stats.last_batch_size = len(items)
            elapsed = time.perf_counter() - started
            stats.last_commit_ms = elapsed * 1000
            if self._metrics is not None:
                self._metrics.committed(len(items), elapsed)
            if self._handoff is not None:
                self._handoff(items)
            self._resolve(batch, None, items, time.time_ns() // 1_000_000)

    def _write(self, items: list[JournalItem]) -> None:
        """Store the items in one transaction, waiting out any other writer's lock."""
        pause = 0.01
        while True:
            try:
                with begin_write(self._sql) as conn:
                    write_journal(conn, items)
                return
            except Exception as error:
                if not is_lock_wait(error):
                    raise
                self.stats.lock_waits += 1
                if self.stats.lock_waits == 1 or self.stats.lock_waits % 100 == 0:
                    log.warning(
                        "the database's write lock is held elsewhere; commit retried "
                        "(%d waits so far)",
                        self.stats.lock_waits,
                    )
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def _resolve(
        self,
        batch: list[tuple[JournalItem, asyncio.Future[None]]],
        error: Exception | None,
        stored: list[JournalItem] | None = None,
        stored_at: int = 0,
    ) -> None:
        on_committed = self._on_committed

        def settle() -> None:
            # Listeners hear of a commit before anyone is answered, in the same callback: a
            # client that has its reply finds the stream already carrying what it did.
            if stored is not None and on_committed is not None:
                try:
                    on_committed(stored, stored_at)
                except Exception:
                    log.exception("a commit listener failed")
            for _, future in batch:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

        # RuntimeError: the loop has closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(settle)
