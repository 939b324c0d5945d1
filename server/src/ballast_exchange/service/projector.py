"""The projector: query tables follow the journal, off the path of acknowledgements.

The durable commit stores journal rows only; once a batch is stored the committer hands it
here, and one thread folds its events into the query tables, moving the stored watermark in the
same transaction. A read that must show everything executed so far waits until the watermark
passes it (``reached``), so no answer describes state that is not stored (DESIGN §6). A failed
projection is retried, never skipped: the journal is the truth and the tables can always be
rebuilt from it; after a crash the exchange projects from the stored watermark at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Sequence

from sqlalchemy import Engine as SqlEngine

from ..store.database import begin_write, is_lock_wait
from ..store.projection import JournalItem, project
from ..store.sequencer_lease import LeaseLost

log = logging.getLogger(__name__)

MAX_BATCH = 5_000  # items per projection transaction


def project_now(sql: SqlEngine, items: Sequence[JournalItem]) -> None:
    """Project ``items`` synchronously, in transactions of at most ``MAX_BATCH`` (at start)."""
    for start in range(0, len(items), MAX_BATCH):
        with begin_write(sql) as conn:
            project(conn, items[start : start + MAX_BATCH])


class Projector:
    def __init__(self, sql: SqlEngine, loop: asyncio.AbstractEventLoop, projected: int) -> None:
        self._sql = sql
        self._loop = loop
        #: The last command whose events the query tables hold (moved only by the thread).
        self.projected = projected
        self.failure: str | None = None  # the error being retried, while one is
        self.batches = 0
        self._pending: list[JournalItem] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name="ballast-projector", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[JournalItem]) -> None:
        """Queue stored items, in command order (called by the committer's thread)."""
        with self._cond:
            self._pending.extend(items)
            self._cond.notify()

    async def reached(self, command_no: int) -> None:
        """Wait until the query tables hold every command up to ``command_no``."""
        if self.projected >= command_no:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._waiters, (command_no, next(self._order), future))
        await future

    def stop(self) -> None:
        """Project what is queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
            try:
                self._project(batch)
            except LeaseLost as lost:  # the tables are the new leader's to project now
                self.failure = f"stopped: {lost}"
                return
            last = batch[-1].command_no
            self.projected = last
            self.batches += 1
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                self._loop.call_soon_threadsafe(self._release, last)

    def _project(self, batch: list[JournalItem]) -> None:
        """Project one batch, retrying until it is stored: a later batch may not overtake it."""
        pause = 0.01
        while True:
            try:
                with begin_write(self._sql) as conn:
                    project(conn, batch)
            except LeaseLost:
                raise
            except Exception as error:
                if not is_lock_wait(error):
                    if self.failure is None:
                        log.error("projection failed; reads wait while it is retried: %r", error)
                    self.failure = f"{type(error).__name__}: {error}"
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            if self.failure is not None:
                log.info("projection resumed")
                self.failure = None
            return

    def _release(self, projected: int) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= projected:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)
