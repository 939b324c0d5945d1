"""The engine against an independent reference matcher (DESIGN §9), step by step.

Random command streams run through both; after every command the fills, the aggregated book and
every live order's remaining size must agree, and a command one rejects the other must reject
too (with the same code). Money never binds here: every account is rich and the limits are
huge, because the reference deliberately knows nothing about collateral.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ballast_exchange.domain import (
    DomainError,
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import Event, OrderAccepted, Trade

from .reference_matcher import (
    BUY,
    CANCEL_BOTH,
    CANCEL_NEWEST,
    CANCEL_OLDEST,
    DECREMENT,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY_WOULD_CROSS,
    SELL,
    STP_MODES,
    Fill,
    ReferenceMatcher,
    Rejected,
)
from .twins import new_engine

ACCOUNTS = ("a", "b", "c")
MARKET_ID = "m"
FAR_FUTURE = 10**13
RICH = 10**15  # micro-USDC: far more than any stream here could lock
# A narrow band of prices, so orders cross (and meet their own account's orders) often.
PRICE_LO, PRICE_HI = 495, 504
UNKNOWN_ORDER = 10**9  # an id neither side ever issues

FillTuple = tuple[int, int, int, int]


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Place:
    account: int
    side: str
    size: int
    price: int | None
    order_type: str
    tif: str
    post_only: bool
    stp: str


@dataclass(frozen=True)
class Cancel:
    ref: int  # index into the orders placed so far (modulo); -1 names an unknown order
    wrong_account: bool  # ask as another account than the owner


@dataclass(frozen=True)
class CancelAll:
    account: int


@dataclass(frozen=True)
class Amend:
    ref: int
    wrong_account: bool
    price: int | None
    size: int | None  # the new total size (filled + remaining)


Command = Place | Cancel | CancelAll | Amend

prices = st.integers(PRICE_LO, PRICE_HI)
accounts = st.integers(0, len(ACCOUNTS) - 1)
stps = st.sampled_from(STP_MODES)
sides = st.sampled_from((BUY, SELL))
sizes = st.integers(1, 10)


@st.composite
def limit_orders(draw: st.DrawFn) -> Place:
    tif = draw(st.sampled_from((GTC, GTC, GTC, IOC, FOK)))  # mostly resting orders
    post_only = tif == GTC and draw(st.integers(0, 4)) == 0
    return Place(
        draw(accounts), draw(sides), draw(sizes), draw(prices), LIMIT, tif, post_only, draw(stps)
    )


market_orders = st.builds(
    Place,
    account=accounts,
    side=sides,
    size=st.integers(1, 25),
    price=st.none() | prices,
    order_type=st.just(MARKET),
    tif=st.just(IOC),
    post_only=st.just(False),
    stp=stps,
)
refs = st.integers(-1, 40)
wrong = st.sampled_from((False, False, False, False, True))
cancels = st.builds(Cancel, ref=refs, wrong_account=wrong)
cancel_alls = st.builds(CancelAll, account=accounts)
amend_sizes = st.integers(1, 15)
# An amend changes the price, the size, or both (never neither: that is not a command).
amends = st.one_of(
    st.builds(Amend, ref=refs, wrong_account=wrong, price=prices, size=st.none()),
    st.builds(Amend, ref=refs, wrong_account=wrong, price=st.none(), size=amend_sizes),
    st.builds(Amend, ref=refs, wrong_account=wrong, price=prices, size=amend_sizes),
)
commands = st.one_of(
    limit_orders(),
    limit_orders(),
    limit_orders(),
    market_orders,
    market_orders,
    cancels,
    amends,
    cancel_alls,
)


# ---------------------------------------------------------------------- the pair under test

ENGINE_STP = {
    CANCEL_NEWEST: SelfTradePrevention.CANCEL_NEWEST,
    CANCEL_OLDEST: SelfTradePrevention.CANCEL_OLDEST,
    CANCEL_BOTH: SelfTradePrevention.CANCEL_BOTH,
    DECREMENT: SelfTradePrevention.DECREMENT,
}
ENGINE_TIF = {GTC: TimeInForce.GTC, IOC: TimeInForce.IOC, FOK: TimeInForce.FOK}


class Pair:
    """The engine and the reference side by side, with the order ids each one issued."""

    def __init__(self) -> None:
        self.time = 1
        self.engine = new_engine()
        for account in ACCOUNTS:
            self.engine.execute(c.CreateAccount(self._now(), account))
            self.engine.execute(c.Deposit(self._now(), account, RICH))
        self.engine.execute(
            c.CreateMarket(
                self._now(),
                MARKET_ID,
                MarketKind.BINARY,
                1000,
                0,
                1000,
                FAR_FUTURE,
                max_order_size=10**6,
                max_position=10**9,
            )
        )
        self.engine.execute(c.ChangeMarketStatus(self._now(), MARKET_ID, MarketStatus.OPEN))
        self.reference = ReferenceMatcher(floor=0, cap=1000)
        # (owner index, engine id, reference id) of every order accepted, live or not.
        self.placed: list[tuple[int, int, int]] = []
        self.ref_to_engine: dict[int, int] = {}

    def _now(self) -> int:
        self.time += 1
        return self.time

    def _resolve(self, ref: int, wrong_account: bool) -> tuple[str, int, int]:
        """The account to ask as, and the engine's and the reference's id of the order."""
        if ref < 0 or not self.placed:
            return ACCOUNTS[0], UNKNOWN_ORDER, UNKNOWN_ORDER
        owner, engine_id, ref_id = self.placed[ref % len(self.placed)]
        if wrong_account:
            owner = (owner + 1) % len(ACCOUNTS)
        return ACCOUNTS[owner], engine_id, ref_id

    def step(self, command: Command) -> None:
        """Run one command through both and assert they agree, then compare their state."""
        engine_error: str | None = None
        reference_error: str | None = None
        events: list[Event] = []
        ref_fills: list[Fill] = []
        ref_id: int | None = None
        time = self._now()
        try:
            events = self.engine.execute(self._to_engine(command, time))
        except DomainError as error:
            engine_error = error.code
        try:
            ref_id, ref_fills = self._run_reference(command)
        except Rejected as error:
            reference_error = error.code
        assert engine_error == reference_error, f"rejections differ on {command}"

        if ref_id is not None and engine_error is None:
            accepted = [e.order_id for e in events if isinstance(e, OrderAccepted)]
            assert len(accepted) == 1
            assert isinstance(command, Place)
            self.placed.append((command.account, accepted[0], ref_id))
            self.ref_to_engine[ref_id] = accepted[0]

        engine_fills: list[FillTuple] = [
            (e.maker_order_id, e.taker_order_id, e.price, e.size)
            for e in events
            if isinstance(e, Trade)
        ]
        expected_fills = [
            (
                self.ref_to_engine[f.maker_order_id],
                self.ref_to_engine[f.taker_order_id],
                f.price,
                f.size,
            )
            for f in ref_fills
        ]
        assert engine_fills == expected_fills, f"fills differ on {command}"
        self.check_state()

    def _to_engine(self, command: Command, time: int) -> c.Command:
        if isinstance(command, Place):
            return c.PlaceOrder(
                time,
                ACCOUNTS[command.account],
                MARKET_ID,
                Side.BUY if command.side == BUY else Side.SELL,
                command.size,
                price=command.price,
                order_type=OrderType.LIMIT if command.order_type == LIMIT else OrderType.MARKET,
                time_in_force=ENGINE_TIF[command.tif],
                post_only=command.post_only,
                stp=ENGINE_STP[command.stp],
            )
        if isinstance(command, Cancel):
            account, engine_id, _ = self._resolve(command.ref, command.wrong_account)
            return c.CancelOrder(time, account, engine_id)
        if isinstance(command, CancelAll):
            return c.CancelAll(time, ACCOUNTS[command.account], MARKET_ID)
        account, engine_id, _ = self._resolve(command.ref, command.wrong_account)
        return c.AmendOrder(time, account, engine_id, price=command.price, size=command.size)

    def _run_reference(self, command: Command) -> tuple[int | None, list[Fill]]:
        ref = self.reference
        if isinstance(command, Place):
            return ref.place(
                ACCOUNTS[command.account],
                command.side,
                command.size,
                price=command.price,
                order_type=command.order_type,
                time_in_force=command.tif,
                post_only=command.post_only,
                stp=command.stp,
            )
        if isinstance(command, Cancel):
            account, _, ref_id = self._resolve(command.ref, command.wrong_account)
            ref.cancel(account, ref_id)
            return None, []
        if isinstance(command, CancelAll):
            ref.cancel_all(ACCOUNTS[command.account])
            return None, []
        account, _, ref_id = self._resolve(command.ref, command.wrong_account)
        return None, ref.amend(account, ref_id, price=command.price, size=command.size)

    def check_state(self) -> None:
        book = self.engine.markets[MARKET_ID].book
        assert not book.is_crossed()
        for is_buy, side in ((True, BUY), (False, SELL)):
            engine_levels = dict(book.depth(is_buy, 10**6))
            assert engine_levels == self.reference.book(side), f"{side} book differs"
        engine_live = {order_id: o.remaining for order_id, o in self.engine.orders.items()}
        ref_live = {
            self.ref_to_engine[ref_id]: remaining
            for ref_id, remaining in self.reference.live_orders().items()
        }
        assert engine_live == ref_live, "live orders differ"


def run(stream: list[Command]) -> Pair:
    pair = Pair()
    for command in stream:
        pair.step(command)
    return pair


# ---------------------------------------------------------------------- engine vs reference


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=5, max_size=40))
def test_engine_agrees_with_reference_on_short_streams(stream: list[Command]) -> None:
    run(stream)


@settings(
    max_examples=100,
    deadline=None,
    # Hypothesis takes minutes to shrink lists this long; ``shrink_stream`` below takes seconds.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(commands, min_size=100, max_size=200))
def test_engine_agrees_with_reference_on_long_streams(stream: list[Command]) -> None:
    # Longer streams build deeper books with partly filled and amended orders.
    try:
        run(stream)
    except AssertionError:
        small = shrink_stream(stream)
        listing = "\n".join(f"    {command!r}," for command in small)
        try:
            run(small)
        except AssertionError as error:
            raise AssertionError(f"{error}\nin this stream (shrunk):\n[\n{listing}\n]") from None
        raise


def shrink_stream(stream: list[Command]) -> list[Command]:
    """Drop chunks, then single commands, for as long as the stream still fails."""

    def fails(candidate: list[Command]) -> bool:
        try:
            run(candidate)
        except AssertionError:
            return True
        return False

    chunk = max(len(stream) // 2, 1)
    while True:
        shrunk = False
        start = 0
        while start < len(stream):
            candidate = stream[:start] + stream[start + chunk :]
            if fails(candidate):
                stream, shrunk = candidate, True
            else:
                start += chunk
        if chunk > 1:
            chunk //= 2
        elif not shrunk:
            return stream


def test_market_order_with_cancel_oldest_walks_past_its_own_orders() -> None:
    """Found by the streams above: a's market sell cancels a's own best bid (cancel_oldest) and
    must go on to trade with b's lower bid, as no protection price bounds it."""
    run(
        [
            Place(0, BUY, 1, 500, LIMIT, GTC, False, CANCEL_NEWEST),
            Place(1, BUY, 1, 499, LIMIT, GTC, False, CANCEL_NEWEST),
            Place(0, SELL, 1, None, MARKET, IOC, False, CANCEL_OLDEST),
        ]
    )


# ---------------------------------------------------------------------- the reference itself


def test_reference_fifo_at_one_level() -> None:
    ref = ReferenceMatcher()
    first, _ = ref.place("a", SELL, 3, 500)
    second, _ = ref.place("b", SELL, 3, 500)
    taker, fills = ref.place("c", BUY, 4, 500)
    assert fills == [Fill(first, taker, 500, 3), Fill(second, taker, 500, 1)]
    assert ref.live_orders() == {second: 2}


def test_reference_walks_levels_at_maker_prices() -> None:
    ref = ReferenceMatcher()
    far, _ = ref.place("a", SELL, 2, 503)
    near, _ = ref.place("b", SELL, 2, 501)
    taker, fills = ref.place("c", BUY, 5, 503)
    assert fills == [Fill(near, taker, 501, 2), Fill(far, taker, 503, 2)]
    # The GTC remainder rests at its own limit.
    assert ref.book(BUY) == {503: 1}
    assert ref.book(SELL) == {}


def test_reference_market_order_stops_at_protection_price() -> None:
    ref = ReferenceMatcher()
    near, _ = ref.place("a", SELL, 2, 501)
    ref.place("a", SELL, 2, 503)
    taker, fills = ref.place("c", BUY, 5, 502, order_type=MARKET, time_in_force=IOC)
    assert fills == [Fill(near, taker, 501, 2)]
    assert ref.book(SELL) == {503: 2}
    assert ref.book(BUY) == {}  # a market order never rests


def test_reference_fok_is_all_or_nothing() -> None:
    ref = ReferenceMatcher()
    maker, _ = ref.place("a", SELL, 2, 500)
    _, fills = ref.place("c", BUY, 3, 500, time_in_force=FOK)
    assert fills == []
    assert ref.live_orders() == {maker: 2}
    taker, fills = ref.place("c", BUY, 2, 500, time_in_force=FOK)
    assert fills == [Fill(maker, taker, 500, 2)]


@pytest.mark.parametrize(
    ("stp", "resting_after", "fills_after_own"),
    [
        (CANCEL_NEWEST, {"own": 2, "other": 2}, 0),  # taker stops at its own order
        (CANCEL_OLDEST, {"other": 0}, 2),  # own order canceled, taker trades on
        (CANCEL_BOTH, {"other": 2}, 0),  # both go
        (DECREMENT, {"other": 1}, 1),  # 3 vs own 2: both shrink by 2, then 1 trades
    ],
)
def test_reference_self_trade_prevention(
    stp: str, resting_after: dict[str, int], fills_after_own: int
) -> None:
    ref = ReferenceMatcher()
    own, _ = ref.place("a", SELL, 2, 500)
    other, _ = ref.place("b", SELL, 2, 500)
    taker, fills = ref.place("a", BUY, 3, 500, time_in_force=IOC, stp=stp)
    ids = {"own": own, "other": other}
    expected = {ids[name]: size for name, size in resting_after.items() if size}
    assert ref.live_orders() == expected
    assert fills == ([Fill(other, taker, 500, fills_after_own)] if fills_after_own else [])


def test_reference_amend_priority() -> None:
    ref = ReferenceMatcher()
    first, _ = ref.place("a", SELL, 5, 500)
    second, _ = ref.place("b", SELL, 5, 500)
    assert ref.amend("a", first, size=4) == []  # smaller: keeps its place
    taker, fills = ref.place("c", BUY, 1, 500, time_in_force=IOC)
    assert fills == [Fill(first, taker, 500, 1)]
    assert ref.amend("a", first, size=6) == []  # total 6, filled 1: remaining 5, re-queued
    taker, fills = ref.place("c", BUY, 6, 500, time_in_force=IOC)
    assert fills == [Fill(second, taker, 500, 5), Fill(first, taker, 500, 1)]
    assert ref.live_orders() == {first: 4}


def test_reference_amend_to_crossing_price_trades() -> None:
    ref = ReferenceMatcher()
    bid, _ = ref.place("a", BUY, 3, 498)
    ask, _ = ref.place("b", SELL, 2, 500)
    assert ref.amend("a", bid, price=501) == [Fill(ask, bid, 500, 2)]
    assert ref.book(BUY) == {501: 1}


def test_reference_rejections_change_nothing() -> None:
    ref = ReferenceMatcher()
    ask, _ = ref.place("b", SELL, 2, 500)
    with pytest.raises(Rejected) as caught:
        ref.place("a", BUY, 1, 500, post_only=True)
    assert caught.value.code == POST_ONLY_WOULD_CROSS
    with pytest.raises(Rejected):
        ref.cancel("a", ask)  # not a's order
    ref.cancel("b", ask)
    with pytest.raises(Rejected):
        ref.cancel("b", ask)  # already gone
    assert ref.live_orders() == {}
