"""Recovery replays the journal in ``execute_batch`` runs, building events only for commands the
query tables lack: the same state, client order ids and unprojected items as executing the
commands one by one, on both engine twins, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import select, update

from ballast_exchange.domain import DomainError, Engine, MarketKind, MarketStatus, Side, digest
from ballast_exchange.domain import commands as c
from ballast_exchange.service import exchange
from ballast_exchange.service.exchange import ClientOrders, remember_client_order, replay
from ballast_exchange.store.database import Database
from ballast_exchange.store.projection import write_batch, write_journal
from ballast_exchange.store.schema import journal
from tests.domain import twins
from tests.store.helpers import FAR, USDC, Recorder

ACCOUNTS = ("ann", "ben", "cat")


def busy_journal(seed: int, steps: int) -> Recorder:
    """Placements (half with a client order id), crossing orders that trade, cancels,
    amends, cancel-alls, expiries and deposits, over two markets; what the engine rejects is
    not journaled."""
    rng = random.Random(seed)
    rec = Recorder()
    t = 1_000
    for name in ACCOUNTS:
        rec.run(c.CreateAccount(t, name))
        rec.run(c.Deposit(t, name, 100_000 * USDC))
    for market in ("m1", "m2"):
        rec.run(
            c.CreateMarket(
                t,
                market,
                MarketKind.BINARY,
                1_000,
                0,
                1_000,
                FAR,
                taker_fee_bps=10,
                maker_fee_bps=-2,
            )
        )
        rec.run(c.ChangeMarketStatus(t, market, MarketStatus.OPEN))
    for n in range(steps):
        t += rng.randint(0, 30)
        account = rng.choice(ACCOUNTS)
        market = rng.choice(("m1", "m2"))
        live = [o for o in rec.engine.orders.values() if o.account_id == account]
        roll = rng.random()
        if roll < 0.55:
            rec.run(
                c.PlaceOrder(
                    t,
                    account,
                    market,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.randint(1, 20),
                    rng.randint(480, 520),  # both sides overlap: many placements cross
                    client_order_id=f"c{n}" if rng.random() < 0.5 else None,
                )
            )
        elif roll < 0.75 and live:
            rec.run(c.CancelOrder(t, account, rng.choice(live).order_id))
        elif roll < 0.85 and live:
            order = rng.choice(live)
            rec.run(c.AmendOrder(t, account, order.order_id, price=rng.randint(480, 520)))
        elif roll < 0.9:
            rec.run(c.CancelAll(t, account, rng.choice((None, market))))
        elif roll < 0.95:
            rec.run(c.ExpireOrders(t))
        else:
            rec.run(c.Deposit(t, account, USDC, ref=f"d{n}"))
    return rec


def store(database_url: str, rec: Recorder, projected: int) -> Database:
    """The journal of ``rec``, projected through command ``projected`` only."""
    database = Database(database_url)
    database.upgrade()
    with database.engine.begin() as conn:
        write_batch(conn, rec.items[:projected])
        write_journal(conn, rec.items[projected:])
    return database


@pytest.mark.parametrize("twin", twins.TWINS)
@pytest.mark.parametrize("chunk", [7, exchange.REPLAY_CHUNK])
def test_a_batched_replay_equals_executing_each_command(
    database_url: str, twin: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    twins.require(twin)
    monkeypatch.setattr(exchange, "REPLAY_CHUNK", chunk)
    rec = busy_journal(seed=7, steps=700)
    expected: ClientOrders = {}
    for item in rec.items:
        remember_client_order(expected, item.command, item.events)
    projected = len(rec.items) - 40
    assert len(expected) > 100 and rec.engine.seq > len(rec.items)
    database = store(database_url, rec, projected)
    try:
        found = replay(database.engine, twins.engine_factory(twin)())
    finally:
        database.dispose()
    assert digest(found.engine) == digest(rec.engine)
    assert found.client_orders == expected
    assert found.command_no == len(rec.items) and found.projected == projected
    assert [(i.command_no, i.command, i.events) for i in found.unprojected] == [
        (i.command_no, i.command, i.events) for i in rec.items[projected:]
    ]


@pytest.mark.parametrize("twin", twins.TWINS)
def test_a_journaled_command_the_engine_now_rejects_still_fails_the_replay(
    database_url: str, twin: str
) -> None:
    """A run whose events the query tables hold is executed without building them, so the
    rejection shows in the engine's seq falling short of the journal's: it still raises."""
    twins.require(twin)
    rec = busy_journal(seed=8, steps=300)
    database = store(database_url, rec, len(rec.items))
    try:
        with database.engine.begin() as conn:
            row = conn.execute(
                select(journal.c.command_no, journal.c.payload)
                .where(journal.c.kind == "Deposit", journal.c.command_no > 20)
                .order_by(journal.c.command_no)
                .limit(1)
            ).one()
            payload = json.loads(row.payload) | {"account_id": "nobody"}
            conn.execute(
                update(journal)
                .where(journal.c.command_no == row.command_no)
                .values(payload=json.dumps(payload))
            )
        with pytest.raises(DomainError):
            replay(database.engine, twins.engine_factory(twin)())
        with pytest.raises(DomainError):
            replay(database.engine, Engine())
    finally:
        database.dispose()
