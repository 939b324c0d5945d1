"""The sandbox's liquidity bot: a market maker quoting every open market, and a taker that
trades across the spread now and then, so books are two-sided and trades and candles never dry
up.

Both are ordinary accounts. They act only through the engine commands every account uses
(``PlaceOrder``, ``AmendOrder``, ``CancelOrder``, ``CancelAll``, and ``Deposit`` of test USDC
when they run low, as the faucet does), through ``Exchange.submit``, waiting for
``Exchange.room()`` like any trading request. They read the books and their own open orders,
as the API shows them to anyone; they change nothing directly.

Each cycle (``bot_interval_s``, 1 s by default), per open market:

- the fair value takes a step of a bounded random walk: a normal step with a weak pull back to
  the series' typical value, reflected inside 5-95 % of the market's range (a binary stays
  within 0.05-0.95, an index within 5-95 points);
- the maker's ladder follows it: ``LEVELS`` prices a side on a grid of ``step`` ticks (binaries
  0.005, indices 0.2 points), the inner quotes at least ``half_spread`` from the fair value,
  sizes growing with depth. The ladder is snapped to its grid, so a small move of the fair value
  changes nothing and a move across one grid line costs one amend a side. Orders are reused by
  amend; the side that moves away from the fair value goes first, so the maker never meets its
  own quotes;
- the taker sends a small IOC order at the best price of a random side with probability
  ``TRADE_CHANCE``, and always after ``MAX_QUIET`` cycles without one.

A rejection (a market closing under the bot, an order filled meanwhile) skips that step only;
nothing but cancellation stops the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..domain import DomainError, MarketKind, MarketStatus
from ..domain import commands as c
from ..domain.market import Market
from ..domain.types import Side, TimeInForce
from ..service.exchange import Exchange, ServiceUnavailable
from ..service.reads import Reads
from ..store.order_records import OrderRecord

log = logging.getLogger(__name__)
USDC = 1_000_000
LEVELS = 5
LEVEL_VALUE = 2_000 * USDC  # the inner level's size, valued at the cap: 2,000 binaries, 20 index
TRADE_CHANCE = 0.08  # per market per cycle
MAX_QUIET = 12  # cycles a market goes without a trade at most
MAKER_FUNDS = 5_000_000 * USDC
TAKER_FUNDS = 1_000_000 * USDC
TOP_UP_EVERY = 60  # cycles between balance checks
TOP_UP_REF = "sandbox-bot"


@dataclass(frozen=True, slots=True)
class Style:
    """Quoting parameters as fractions of the market's range (cap - floor)."""

    half_spread: float  # the inner quotes are at least this far from the fair value
    step: float  # between ladder levels
    sigma: float  # the fair value's random step per cycle (standard deviation)
    revert: float  # the share of the distance to the typical value it moves back each cycle
    band: float  # the fair value stays within [band, 1 - band] of the range


STYLES = {
    # A binary quotes e.g. 0.865 / 0.875 around 0.87, levels 0.005 apart.
    MarketKind.BINARY: Style(half_spread=0.003, step=0.005, sigma=0.0025, revert=0.001, band=0.05),
    # An index (0-100 by 0.1) quotes e.g. 42.2 / 42.6 around 42.4, levels 0.2 apart.
    MarketKind.INDEX: Style(half_spread=0.001, step=0.002, sigma=0.001, revert=0.001, band=0.05),
}


def level_size(market: Market) -> int:
    """The inner level's size: ``LEVEL_VALUE`` worth of contracts at the cap."""
    per_contract = (market.cap - market.floor) * market.tick_value
    return max(market.min_size, min(market.max_order_size, round(LEVEL_VALUE / per_contract)))


def ladder(market: Market, fair: float) -> tuple[dict[int, int], dict[int, int]]:
    """The maker's bids and asks, price (ticks) to size, around ``fair`` (ticks)."""
    style = STYLES[market.kind]
    span = market.cap - market.floor
    step = max(1, round(span * style.step))
    half = max(1, round(span * style.half_spread))
    bid = math.floor((fair - half) / step) * step
    ask = math.ceil((fair + half) / step) * step
    base = level_size(market)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for level in range(LEVELS):
        size = min(market.max_order_size, max(market.min_size, round(base * (1 + level / 2))))
        if market.floor < bid - level * step < market.cap:
            bids[bid - level * step] = size
        if market.floor < ask + level * step < market.cap:
            asks[ask + level * step] = size
    return bids, asks


@dataclass(frozen=True, slots=True)
class Op:
    """One change to the maker's quotes: amend ``order_id`` (to ``price`` and ``target``
    remaining), cancel it (``target`` 0), or place a new order (``order_id`` None)."""

    is_buy: bool
    order_id: int | None
    price: int
    target: int


def plan(orders: list[OrderRecord], desired: dict[int, int], is_buy: bool) -> list[Op]:
    """Turn the resting ``orders`` of one side into ``desired`` with few commands."""
    kept: dict[int, OrderRecord] = {}
    spare: list[OrderRecord] = []
    for order in orders:
        if order.price in desired and order.price not in kept:
            kept[order.price] = order
        else:
            spare.append(order)
    ops: list[Op] = []
    for price, target in desired.items():
        resting = kept.get(price)
        if resting is not None:
            # Refill what the taker took; leave small differences alone (no churn).
            if not target / 2 <= resting.remaining <= target * 2:
                ops.append(Op(is_buy, resting.order_id, price, target))
        elif spare:
            ops.append(Op(is_buy, spare.pop().order_id, price, target))
        else:
            ops.append(Op(is_buy, None, price, target))
    ops += [Op(is_buy, order.order_id, order.price, 0) for order in spare]
    return ops


class LiquidityBot:
    def __init__(
        self,
        exchange: Exchange,
        reads: Reads,
        maker: str,
        taker: str,
        anchor: Callable[[Market], float | None],
        interval_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        """``anchor`` gives a market's typical value in price units (None: none known)."""
        self.exchange = exchange
        self.reads = reads
        self.maker = maker
        self.taker = taker
        self.anchor = anchor
        self.interval_s = interval_s
        self.rng = rng or random.Random()
        self.fair: dict[str, float] = {}  # market id -> fair value in ticks
        self._typical: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self.cycles = 0
        self.rejections = 0
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sandbox-bot")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.cycle()
            except ServiceUnavailable:
                pass  # storage failed or the exchange is stopping: try again next cycle
            except Exception:  # the bot must outlive anything one cycle runs into
                log.exception("sandbox bot cycle failed")
            self.cycles += 1
            spent = loop.time() - started
            # Rest at least a tenth of the interval, however long the cycle took.
            await asyncio.sleep(max(self.interval_s - spent, self.interval_s / 10))

    # ---------------------------------------------------------------- one cycle

    async def cycle(self) -> None:
        exchange = self.exchange
        if not exchange.healthy:
            return
        if self.cycles % TOP_UP_EVERY == 0:
            await self.top_up()
        reads = self.reads
        now = exchange.clock()
        for market in reads.markets():
            if market.status is not MarketStatus.OPEN or market.close_time <= now:
                continue
            await exchange.room()
            await self.quote(market)
            await self.maybe_trade(market)
        for market_id in [m for m in self.fair if reads.find_market(m) is None or self._done(m)]:
            self.fair.pop(market_id, None)
            self._typical.pop(market_id, None)
            self._quiet.pop(market_id, None)

    def _done(self, market_id: str) -> bool:
        status = self.reads.market(market_id).status
        return status in (MarketStatus.RESOLVING, MarketStatus.SETTLED)

    async def top_up(self) -> None:
        """Keep both accounts funded with test USDC (the taker pays the spread and fees)."""
        reads = self.reads
        for account_id, funds in ((self.maker, MAKER_FUNDS), (self.taker, TAKER_FUNDS)):
            if reads.has_account(account_id) and reads.balance(account_id).available < funds // 5:
                await self._submit(
                    partial(c.Deposit, account_id=account_id, amount=funds, ref=TOP_UP_REF)
                )

    async def _submit(self, build: Callable[[int], c.Command]) -> bool:
        try:
            await self.exchange.submit(build)
        except DomainError as error:
            self.rejections += 1
            log.debug("sandbox bot: %s", error)
            return False
        return True

    # ---------------------------------------------------------------- fair value

    def fair_value(self, market: Market) -> float:
        """The market's fair value in ticks, starting it where the market is when it is new."""
        fair = self.fair.get(market.market_id)
        if fair is not None:
            return fair
        style = STYLES[market.kind]
        span = market.cap - market.floor
        low, high = market.floor + span * style.band, market.cap - span * style.band
        anchor = self.anchor(market)
        typical = (
            anchor / (market.tick_value / USDC)
            if anchor is not None
            else (market.floor + market.cap) / 2
        )
        typical = min(max(typical, low), high)
        if market.last_price is not None:
            fair = float(market.last_price)
        else:
            # A new market opens somewhere near its series' typical value.
            spread = span * style.sigma / math.sqrt(2 * style.revert)
            fair = self.rng.gauss(typical, spread / 2)
        self._typical[market.market_id] = typical
        fair = min(max(fair, low), high)
        self.fair[market.market_id] = fair
        return fair

    def walk(self, market: Market) -> float:
        fair = self.fair_value(market)
        style = STYLES[market.kind]
        span = market.cap - market.floor
        low, high = market.floor + span * style.band, market.cap - span * style.band
        typical = self._typical[market.market_id]
        fair += self.rng.gauss(0.0, span * style.sigma) + style.revert * (typical - fair)
        if fair < low:  # reflect at the band's edges
            fair = min(2 * low - fair, high)
        elif fair > high:
            fair = max(2 * high - fair, low)
        self.fair[market.market_id] = fair
        return fair

    # ---------------------------------------------------------------- quoting

    async def quote(self, market: Market) -> None:
        bids, asks = ladder(market, self.walk(market))
        resting_bids, resting_asks = self.reads.resting(self.maker, market.market_id)
        bid_ops = plan(sorted(resting_bids, key=lambda o: -o.price), bids, True)
        ask_ops = plan(sorted(resting_asks, key=lambda o: o.price), asks, False)
        # The side moving away from the fair value first: when the fair value fell below the
        # resting bids, new asks would meet them, so the bids move down before the asks do.
        best_bid = max((o.price for o in resting_bids), default=None)
        fell = best_bid is not None and bool(asks) and min(asks) <= best_bid
        for op in (bid_ops + ask_ops) if fell else (ask_ops + bid_ops):
            await self.apply(market, op)

    async def apply(self, market: Market, op: Op) -> None:
        maker = self.maker
        side = Side.BUY if op.is_buy else Side.SELL
        order = None if op.order_id is None else self.reads.open_order(maker, op.order_id)
        if op.target == 0:
            if order is not None:
                await self._submit(lambda t: c.CancelOrder(t, maker, order.order_id))
            return
        if order is not None:
            size = order.filled + op.target
            if size <= market.max_order_size:
                price = op.price if op.price != order.price else None
                await self._submit(lambda t: c.AmendOrder(t, maker, order.order_id, price, size))
                return
            # Filled so often that a refill would pass the size limit: start a fresh order.
            await self._submit(lambda t: c.CancelOrder(t, maker, order.order_id))
        await self._submit(
            lambda t: c.PlaceOrder(t, maker, market.market_id, side, op.target, op.price)
        )

    # ---------------------------------------------------------------- trading

    async def maybe_trade(self, market: Market) -> None:
        quiet = self._quiet.get(market.market_id)
        if quiet is None:  # stagger the markets' forced trades
            quiet = self.rng.randrange(MAX_QUIET)
        if quiet + 1 < MAX_QUIET and self.rng.random() >= TRADE_CHANCE:
            self._quiet[market.market_id] = quiet + 1
            return
        book = market.book
        is_buy = self.rng.random() < 0.5
        price = book.best_ask() if is_buy else book.best_bid()
        if price is None:
            self._quiet[market.market_id] = quiet + 1
            return
        base = level_size(market)
        size = self.rng.randint(max(market.min_size, base // 100), max(market.min_size, base // 10))
        taker, side = self.taker, Side.BUY if is_buy else Side.SELL
        placed = await self._submit(
            lambda t: c.PlaceOrder(
                t, taker, market.market_id, side, size, price, time_in_force=TimeInForce.IOC
            )
        )
        self._quiet[market.market_id] = 0 if placed else quiet + 1

    async def pull_quotes(self) -> None:
        """Cancel every order the bot's accounts rest (``--no-bot`` on a data dir it used)."""
        for account_id in (self.maker, self.taker):
            if self.reads.has_account(account_id):
                await self._submit(partial(c.CancelAll, account_id=account_id))
