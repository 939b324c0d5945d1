"""The stream's read models, folded from committed events, hold what the engine holds.

The stream no longer runs a second engine (docs/adr/0014): it folds each stored command's events
into its own models. Here a random flow (limits, market orders, self-trades under every STP mode,
amends, cancels, expiries, a listing mid-way, a halt and a settlement) runs through the engine;
after every command the models agree with the engine on everything the channels render.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ballast_exchange.domain import (
    DomainError,
    Engine,
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
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


def agree(models: Models, engine: Engine) -> None:
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
    for account_id, account in engine.accounts.items():
        assert models.available(account_id) == engine.available(account_id)
        assert models.reserved(account_id) == engine.reserved(account_id)
        mine = models.accounts[account_id]
        for market_id, position in account.positions.items():
            held = mine.positions.get(market_id)
            got = (0, 0, 0) if held is None else (held.size, held.collateral, held.realized_pnl)
            assert got == (position.size, position.collateral, position.realized_pnl)
        live_orders = {
            order.order_id: OrderRecord.live(order)
            for position in account.positions.values()
            for order in (*position.buys.values(), *position.sells.values())
        }
        assert set(mine.orders) == set(live_orders)
        for order_id, record in mine.orders.items():
            expected = live_orders[order_id]
            assert replace(record, updated_at=0) == replace(expected, updated_at=0)


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
        account = rng.choice(accounts)
        market_id = rng.choice(markets)
        roll = rng.random()
        live = [o for o in engine.orders.values() if o.account_id == account]
        if roll < 0.55:
            run(
                c.PlaceOrder(
                    now,
                    account,
                    market_id,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.randrange(1, 40),
                    rng.randrange(440, 560),
                    time_in_force=rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTD)),
                    expire_at=now + rng.randrange(100, 5_000),
                    stp=rng.choice(list(SelfTradePrevention)),
                )
                if rng.random() < 0.2
                else c.PlaceOrder(
                    now,
                    account,
                    market_id,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.randrange(1, 40),
                    rng.randrange(440, 560),
                    stp=rng.choice(list(SelfTradePrevention)),
                )
            )
        elif roll < 0.65:
            run(
                c.PlaceOrder(
                    now,
                    account,
                    market_id,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.randrange(1, 80),
                    None,
                    OrderType.MARKET,
                    TimeInForce.IOC,
                )
            )
        elif roll < 0.8 and live:
            order = rng.choice(live)
            run(c.CancelOrder(now, account, order.order_id))
        elif roll < 0.92 and live:
            order = rng.choice(live)
            if rng.random() < 0.5:
                run(c.AmendOrder(now, account, order.order_id, size=order.filled + 1))
            else:
                run(c.AmendOrder(now, account, order.order_id, price=rng.randrange(440, 560)))
        elif roll < 0.95:
            run(c.ExpireOrders(now))
        elif roll < 0.96:
            run(c.CancelAll(now, account))
    for status in (MarketStatus.HALTED, MarketStatus.OPEN, MarketStatus.CLOSED):
        run(c.ChangeMarketStatus(now, "m1", status))
    run(c.ProposeSettlement(now, "m1", 1_000_000, "a" * 64, "test", 0))
    run(c.OverturnSettlement(now, "m1", "test"))
    run(c.ProposeSettlement(now, "m1", 0, "b" * 64, "test", 0))
    run(c.FinalizeSettlement(now + 1, "m1"))
    assert engine.markets["m1"].status is MarketStatus.SETTLED


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
