"""The stream's read models, folded from committed events, hold what the engine holds.

The stream no longer runs a second engine (docs/adr/0014): it folds each stored command's events
into its own models. Here a random flow (limits, market orders, self-trades under every STP mode,
amends, cancels, expiries, a listing mid-way, a halt and a settlement) runs through the engine;
after every command the models agree with the engine on everything the channels render.

Models built from an engine that already holds orders keep them as the engine's columns until
an event or a read needs one (``Seed``); those run on both twins (the compiled one exports its
columns itself), with watched accounts coming and going, and are checked against the engine and
against models whose every account is watched.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from ballast_exchange.domain import (
    DomainError,
    Engine,
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    compiled_status,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.store.order_records import OrderRecord
from ballast_exchange.store.projection import JournalItem
from ballast_exchange.stream.models import Batch, Models

T0 = 1_800_000_000_000
DAY = 86_400_000


def market(market_id: str, now: int) -> list[c.Command]:
    return [
        c.CreateMarket(
            now, market_id, MarketKind.BINARY, 1_000, 0, 1_000, now + 10 * DAY,
            maker_fee_bps=-2, taker_fee_bps=10,
        ),
        c.ChangeMarketStatus(now, market_id, MarketStatus.OPEN),
    ]  # fmt: skip


def agree(models: Models, engine: Engine, read: Iterable[str] | None = None) -> None:
    """The models hold what the engine holds; each account's orders, positions and reserved
    funds compared for those in ``read`` (every account when None: reading them makes every
    seeded order and position a record)."""
    assert models.seq == engine.seq
    assert list(models.markets) == list(engine.markets)
    for market_id, live in engine.markets.items():
        model = models.markets[market_id]
        for is_buy, side in ((True, model.bids), (False, model.asks)):
            assert side.depth(1_000) == live.book.depth(is_buy, 1_000)
        assert model.bids.best() == live.book.best_bid()
        assert model.asks.best() == live.book.best_ask()
        assert (model.last_price, model.status) == (live.last_price, live.status.value)
        settlement = live.settlement
        if settlement is None:
            assert model.settlement is None
        else:
            assert model.settlement is not None
            assert (model.settlement.value, model.settlement.proposed_at) == (
                settlement.value,
                settlement.proposed_at,
            )
    assert set(models.accounts) == set(engine.accounts)
    for account_id in engine.accounts:
        assert models.available(account_id) == engine.available(account_id)
    for account_id in engine.accounts if read is None else read:
        assert models.reserved(account_id) == engine.reserved(account_id)
        positions = models.positions(account_id)
        for market_id, position in engine.accounts[account_id].positions.items():
            held = positions.get(market_id)
            got = (0, 0, 0) if held is None else (held.size, held.collateral, held.realized_pnl)
            assert got == (position.size, position.collateral, position.realized_pnl)
        live_orders = {
            order.order_id: OrderRecord.live(order)
            for order in engine.orders.values()
            if order.account_id == account_id
        }
        mine_orders = models.open_orders(account_id)
        assert set(mine_orders) == set(live_orders)
        for order_id, record in mine_orders.items():
            expected = live_orders[order_id]
            assert replace(record, updated_at=0) == replace(expected, updated_at=0)


def new_engine(twin: str) -> Any:
    if twin == "reference":
        return Engine()
    available, reason = compiled_status()
    if not available:
        pytest.skip(reason)
    from ballast_exchange.domain import compiled

    return compiled.Engine()


def random_command(
    rng: random.Random, engine: Any, now: int, accounts: list[str], markets: list[str]
) -> c.Command | None:
    """One command of the random flow (None: nothing to do this step)."""
    account = rng.choice(accounts)
    market_id = rng.choice(markets)
    roll = rng.random()
    live = [o for o in engine.orders.values() if o.account_id == account]
    side = rng.choice((Side.BUY, Side.SELL))
    if roll < 0.55:
        if rng.random() < 0.2:
            return c.PlaceOrder(
                now,
                account,
                market_id,
                side,
                rng.randrange(1, 40),
                rng.randrange(440, 560),
                time_in_force=rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTD)),
                expire_at=now + rng.randrange(100, 5_000),
                stp=rng.choice(list(SelfTradePrevention)),
                client_order_id=f"c{now}" if rng.random() < 0.5 else None,
            )
        return c.PlaceOrder(
            now,
            account,
            market_id,
            side,
            rng.randrange(1, 40),
            rng.randrange(440, 560),
            stp=rng.choice(list(SelfTradePrevention)),
            post_only=rng.random() < 0.1,
            order_group_id="g1" if rng.random() < 0.1 else None,
        )
    if roll < 0.65:
        size = rng.randrange(1, 80)
        return c.PlaceOrder(
            now, account, market_id, side, size, None, OrderType.MARKET, TimeInForce.IOC
        )
    if roll < 0.8 and live:
        return c.CancelOrder(now, account, rng.choice(live).order_id)
    if roll < 0.92 and live:
        order = rng.choice(live)
        if rng.random() < 0.5:
            return c.AmendOrder(now, account, order.order_id, size=order.filled + 1)
        return c.AmendOrder(now, account, order.order_id, price=rng.randrange(440, 560))
    if roll < 0.95:
        return c.ExpireOrders(now)
    if roll < 0.96:
        return c.CancelAll(now, account)
    return None


def test_models_follow_the_engine_event_for_event() -> None:
    rng = random.Random(15)
    engine = Engine()
    now = T0
    for command in market("m1", now):
        engine.execute(command)
    accounts = [f"acct{n}" for n in range(6)]
    for account in accounts:
        engine.execute(c.CreateAccount(now, account))
        engine.execute(c.Deposit(now, account, 10**10))
    models = Models(engine)  # as the hub builds them: before the first stored command
    agree(models, engine)

    def run(command: c.Command) -> None:
        try:
            events = engine.execute(command)
        except DomainError:
            return
        models.apply(JournalItem(0, command, events, command.time), set(accounts), Batch())
        agree(models, engine)

    markets = ["m1"]
    for step in range(3_000):
        now += rng.randrange(1, 50)
        if step == 1_000:
            for command in market("m2", now):
                run(command)
            markets.append("m2")
            run(c.CreateAccount(now, "late"))
            run(c.Deposit(now, "late", 10**9))
            accounts.append("late")
        command = random_command(rng, engine, now, accounts, markets)
        if command is not None:
            run(command)
    for status in (MarketStatus.HALTED, MarketStatus.OPEN, MarketStatus.CLOSED):
        run(c.ChangeMarketStatus(now, "m1", status))
    run(c.ProposeSettlement(now, "m1", 1_000_000, "a" * 64, "test", 0))
    run(c.OverturnSettlement(now, "m1", "test"))
    run(c.ProposeSettlement(now, "m1", 0, "b" * 64, "test", 0))
    run(c.FinalizeSettlement(now + 1, "m1"))
    assert engine.markets["m1"].status is MarketStatus.SETTLED


@pytest.mark.parametrize("twin", ["reference", "compiled"])
def test_seeded_orders_become_records_when_needed(twin: str) -> None:
    """Models built over resting orders (GTD, client order ids, post-only, order groups) and
    positions: an account's records are made when a read or an event of it while watched
    needs them, and events on the others' orders wait for them. After every command the models
    agree with the engine (one account read at a time, so most stay seeded for a while), and a
    watched account's changes are those models watching every account report."""
    rng = random.Random(17)
    engine = new_engine(twin)
    now = T0
    markets = ["m1", "m2"]
    for market_id in markets:
        for command in market(market_id, now):
            engine.execute(command)
    accounts = [f"acct{n}" for n in range(12)]
    for account in accounts:
        engine.execute(c.CreateAccount(now, account))
        engine.execute(c.Deposit(now, account, 10**10))

    def attempt(command: c.Command | None) -> list[Any] | None:
        if command is None:
            return None
        try:
            return list(engine.execute(command))
        except DomainError:
            return None

    for n in range(400):  # a book that does not cross, then a random flow eats into it
        buy = rng.random() < 0.5
        attempt(
            c.PlaceOrder(
                now,
                rng.choice(accounts),
                rng.choice(markets),
                Side.BUY if buy else Side.SELL,
                rng.randrange(1, 40),
                rng.randrange(440, 500) if buy else rng.randrange(501, 560),
                time_in_force=TimeInForce.GTD if n % 7 == 0 else TimeInForce.GTC,
                expire_at=now + 10**6 if n % 7 == 0 else None,
                post_only=n % 5 == 0,
                client_order_id=f"r{n}" if n % 2 else None,
                stp=rng.choice(list(SelfTradePrevention)),
                order_group_id="g1" if n % 9 == 0 else None,
            )
        )
    for _ in range(100):
        now += rng.randrange(1, 5)
        attempt(random_command(rng, engine, now, accounts, markets))
    assert len(engine.orders) > 200
    lazy = Models(engine)
    everyone = Models(engine)
    assert len(lazy.seed) == len(engine.orders)
    assert len(lazy.position_seed) == sum(len(a.positions) for a in engine.accounts.values())
    assert lazy.orders == {}
    assert not any(a.orders or a.positions for a in lazy.accounts.values())
    agree(lazy, engine, read=())
    watched: set[str] = set()
    for step in range(1_500):
        now += rng.randrange(1, 5)
        if step % 100 == 0:
            watched = set(rng.sample(accounts, 3))
        command = random_command(rng, engine, now, accounts, markets)
        events = attempt(command)
        if command is None or events is None:
            continue
        item = JournalItem(0, command, events, command.time)
        changes = lazy.apply(item, watched, Batch())
        expected = everyone.apply(item, set(accounts), Batch())
        for account_id in watched:
            assert changes.get(account_id) == expected.get(account_id)
        agree(lazy, engine, read=[rng.choice(accounts)])
    agree(lazy, engine)
    agree(everyone, engine)
    assert not lazy.seeded and not lazy.pending and not lazy.closed
    assert len(lazy.seed) == len(lazy.position_seed) == 0  # let go once nothing is left


def test_models_built_mid_flow_start_from_the_engine_as_it_stands() -> None:
    """A restart: the models come from a live engine that already holds orders, positions and
    balances, and go on from there."""
    engine = Engine()
    for command in market("m1", T0):
        engine.execute(command)
    for account in ("a", "b"):
        engine.execute(c.CreateAccount(T0, account))
        engine.execute(c.Deposit(T0, account, 10**9))
    engine.execute(c.PlaceOrder(T0, "a", "m1", Side.SELL, 10, 500))
    engine.execute(c.PlaceOrder(T0, "b", "m1", Side.BUY, 4, 500))
    engine.execute(c.PlaceOrder(T0, "b", "m1", Side.BUY, 3, 480))
    models = Models(engine)
    agree(models, engine)
    command = c.PlaceOrder(T0 + 1, "b", "m1", Side.BUY, 6, 500)
    events = engine.execute(command)
    changes = models.apply(JournalItem(0, command, events, command.time), {"a", "b"}, Batch())
    agree(models, engine)
    assert [event for event, _ in changes["a"].orders] == ["filled"]
    assert [event for event, _ in changes["b"].orders] == ["accepted", "filled"]
