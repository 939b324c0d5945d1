"""A hot standby's engine: recovered while the leader runs, then kept level with its journal.

The engine is deterministic and the journal is its input (DESIGN §6), so a standby that
executes every journal row the leader commits holds the leader's state, a poll behind. When it
takes the lease over it reads the last rows and starts from there: no snapshot to restore and no
journal tail to replay, whatever the size of the books (docs/adr/0023).

The standby reads and never writes. Until the leader is gone the query tables belong to the
leader's projector, so the standby keeps the events of the commands the tables do not hold yet,
for its own projector to write at takeover.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic

from sqlalchemy import Engine as SqlEngine

from ..store.journal import load_commands
from ..store.projection import projected_through
from .exchange import JournalGap, Recovery, RecoveryProgress, replay, replay_command
from .forking import building_long_lived

log = logging.getLogger(__name__)

RETRY_S = 5.0  # after a failed recovery or catch-up (the schema is behind, a gap), wait this


class JournalFollower:
    """``step`` while waiting for the lease; ``take`` once it is held."""

    def __init__(
        self, sql: SqlEngine, schema_current: Callable[[], bool], progress: RecoveryProgress
    ) -> None:
        self._sql = sql
        self._schema_current = schema_current
        self.progress = progress
        self._found: Recovery | None = None
        self._retry_at = 0.0

    @property
    def command_no(self) -> int:
        """The last journal command the standby's engine has executed (0: not recovered)."""
        return self._found.command_no if self._found is not None else 0

    def step(self) -> None:
        """Recover (the first time) or execute the rows committed since; never raises."""
        now = monotonic()
        if now < self._retry_at:
            return
        try:
            if self._found is None:
                # The leader migrates; a standby of a newer version must not recover from
                # tables it does not know the shape of, nor migrate them under the leader.
                if not self._schema_current():
                    self._retry_at = now + RETRY_S
                    return
                with building_long_lived():
                    self._found = replay(self._sql, progress=self.progress)
                self.progress.phase = "standby"
                log.info("standby engine recovered through command %d", self._found.command_no)
            else:
                self._catch_up(self._found)
        except Exception:
            log.warning("the standby engine lost its place; it recovers again", exc_info=True)
            self._found = None
            self._retry_at = now + RETRY_S

    def take(self) -> Recovery | None:
        """The recovery to start from once the lease is held (None: recover from scratch)."""
        found, self._found = self._found, None
        if found is None:
            return None
        self.progress.phase = "catching up with the journal"
        try:
            self._catch_up(found)
        except Exception:
            log.warning("the standby engine could not catch up; recovering", exc_info=True)
            return None
        return found

    def _catch_up(self, found: Recovery) -> None:
        with self._sql.connect() as conn:
            # The watermark first: the rows read after it include all it does not cover.
            projected = projected_through(conn)
            engine, client_orders = found.engine, found.client_orders
            for command_no, command in load_commands(conn, after=found.command_no):
                if command_no != found.command_no + 1:
                    raise JournalGap(
                        f"the journal jumps from command {found.command_no} to {command_no}"
                    )
                replay_command(
                    engine, client_orders, command_no, command, projected, found.unprojected
                )
                found.command_no, found.time = command_no, command.time
        if projected > found.projected:
            found.projected = projected
            found.unprojected = [i for i in found.unprojected if i.command_no > projected]
