"""The sequencer lease on the real PostgreSQL (docs/adr/0023): refusal, takeover, the fence."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ballast_exchange.store.database import Database, begin_write, fence_writes, write_epoch
from ballast_exchange.store.instance_lock import StoreInUse
from ballast_exchange.store.sequencer_lease import (
    LeaseLost,
    SequencerLease,
    current_holder,
    lease_for,
)
from tests.databases import fresh_database


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgres", tmp_path) as found:
        yield Database(found).url  # psycopg 3's URL form


def lease(url: str, name: str, *, standby: bool = False) -> SequencerLease:
    found = lease_for(url, name, standby=standby, ttl_s=1.0)
    assert found is not None
    return found


def test_sqlite_has_no_lease(tmp_path: Path) -> None:
    assert lease_for(f"sqlite:///{tmp_path / 'x.db'}", "ballast-x") is None


def test_a_second_server_is_refused_and_named(url: str) -> None:
    first = lease(url, "ballast-first")
    first.acquire({"pid": 4121, "url": "http://a:8000"})
    try:
        assert first.epoch == 1
        with pytest.raises(StoreInUse, match=r"pid 4121, http://a:8000\) is already using"):
            lease(url, "ballast-second").acquire({"pid": 5, "url": "http://b:8000"})
    finally:
        first.release()
    # Released: the next one takes it at once, under the next epoch.
    again = lease(url, "ballast-again")
    again.acquire({"pid": 6})
    assert again.epoch == 2
    again.release()


def test_a_standby_takes_over_a_silent_holder_whose_open_write_then_fails(url: str) -> None:
    database = Database(url, "ballast-old")
    old = lease(url, "ballast-old")
    old.acquire({"pid": 1})
    fence_writes(database.engine, old.check)
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE marks (epoch bigint)"))
    try:
        # The holder stops renewing (as if SIGSTOPped), mid-way through a write.
        old._stop.set()
        assert old._renewer is not None
        old._renewer.join()
        write = begin_write(database.engine)
        conn = write.__enter__()
        assert write_epoch(conn) == 1
        conn.execute(text("INSERT INTO marks VALUES (1)"))

        new = lease(url, "ballast-new", standby=True)
        taking = threading.Thread(target=new.acquire, args=({"pid": 2},))
        taking.start()
        taking.join(timeout=60)
        assert not taking.is_alive() and new.epoch == 2
        # The takeover ended the old holder's sessions: its open write is gone.
        with pytest.raises(Exception, match=r"terminat|closed"):
            write.__exit__(None, None, None)
        # And a new write of the old holder is fenced off before it writes anything.
        with pytest.raises(LeaseLost, match="epoch 2"), begin_write(database.engine) as again:
            again.execute(text("INSERT INTO marks VALUES (1)"))
        assert old.lost is not None
        with database.engine.connect() as check:
            assert check.execute(text("SELECT count(*) FROM marks")).scalar() == 0
        new.release()
    finally:
        old.release()
        database.dispose()


def test_renewals_do_not_wait_behind_a_long_write(url: str) -> None:
    """A write transaction holds the epoch FOR SHARE; the holder's renewals go on meanwhile,
    so a standby never takes a busy, healthy holder for a stopped one."""
    database = Database(url, "ballast-busy")
    holder = lease(url, "ballast-busy")
    holder.acquire({"pid": 1})
    fence_writes(database.engine, holder.check)
    observer = Database(url)
    try:
        with begin_write(database.engine):
            ends = time.monotonic() + 3 * holder.ttl_s
            while time.monotonic() < ends:
                with observer.engine.connect() as conn:
                    found = current_holder(conn)
                assert found is not None and found.live and found.epoch == 1
                time.sleep(0.1)
        assert holder.lost is None
    finally:
        holder.release()
        database.dispose()
        observer.dispose()
