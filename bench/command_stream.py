"""Deterministic, engine-neutral command stream for matching-engine benchmarks.

One binary market, prices are integer ticks 1..999 on a 0..1000 grid (price = tick / 1000).
Commands are plain tuples so any engine (Ballast or a third-party one) can replay them:

    ("limit", order_id, account, side, price_tick, size)
    ("market", order_id, account, side, size)
    ("cancel", order_id)
    ("amend", order_id, new_size)     # size down: new_size is the new open quantity

The first 20,000 commands build a deep book (~100 levels a side around tick 500). After that
the mix is about 55% limits near the touch, 30% cancels, 10% market orders crossing a few
levels and 5% size-down amends, while a fair value drifts slowly.

A small price-level simulation runs alongside generation only to know which orders are still
live (so cancels/amends target resting orders) and how much size sits at the touch (so market
orders cross a few levels). It is approximate on purpose: it has no self-trade prevention and
amends keep priority, so an engine that differs may see a few cancels of already-filled orders.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from math import ceil, floor

Command = tuple
BUY = "buy"
SELL = "sell"

GRID = 1000  # ticks per 1.0 of price; also the "no asks" sentinel for the best ask
MIN_TICK = 1
MAX_TICK = 999
START_MID = 500
BUILD_COMMANDS = 20_000  # passive-only warm-up that builds the deep book
BUILD_LEVELS = 100  # levels per side in the warm-up book
MARKET_SIZE_CAP = 200  # keeps market orders to "a few levels", never a sweep of the book

# Steady-state mix (cumulative thresholds): 55% limit, 30% cancel, 10% market, 5% amend.
_P_LIMIT = 0.55
_P_CANCEL = 0.85
_P_MARKET = 0.95
_P_AGGRESSIVE_LIMIT = 0.05  # share of limit orders priced through the opposite touch
_P_DEEP_LIMIT = 0.11  # share of limit orders placed 5..100 ticks away to keep the book deep
_UNIFORM_CANCEL = 0.2  # share of cancels aimed at any live order (at warm-up book size)
_NEAR_RATE = 0.5  # distance from mid/touch of quotes and quote cancels ~ Exp(rate) ticks


class _Sim:
    """Approximate book: FIFO queue of order ids per tick; cancelled ids are removed lazily."""

    __slots__ = (
        "best",
        "level_n",
        "level_qty",
        "live",
        "live_pos",
        "price_of",
        "queues",
        "remaining",
    )

    def __init__(self) -> None:
        # Index 0 = buy side, 1 = sell side.
        self.queues: tuple[dict[int, deque[int]], dict[int, deque[int]]] = ({}, {})
        self.level_qty: tuple[list[int], list[int]] = ([0] * (GRID + 1), [0] * (GRID + 1))
        self.level_n: tuple[list[int], list[int]] = ([0] * (GRID + 1), [0] * (GRID + 1))
        self.remaining: dict[int, int] = {}
        self.price_of: dict[int, tuple[int, int]] = {}  # order_id -> (side index, tick)
        # Live ids in a list with swap-remove, so picking a random live order is O(1).
        self.live: list[int] = []
        self.live_pos: dict[int, int] = {}
        self.best = [0, GRID]  # best bid tick (0 = empty), best ask tick (GRID = empty)

    def rest(self, oid: int, s: int, tick: int, size: int) -> None:
        q = self.queues[s].get(tick)
        if q is None:
            q = self.queues[s][tick] = deque()
        q.append(oid)
        self.level_qty[s][tick] += size
        self.level_n[s][tick] += 1
        self.remaining[oid] = size
        self.price_of[oid] = (s, tick)
        self.live_pos[oid] = len(self.live)
        self.live.append(oid)
        if s == 0:
            self.best[0] = max(self.best[0], tick)
        else:
            self.best[1] = min(self.best[1], tick)

    def _drop(self, oid: int, s: int, tick: int) -> None:
        pos = self.live_pos.pop(oid)
        last = self.live.pop()
        if last != oid:
            self.live[pos] = last
            self.live_pos[last] = pos
        del self.remaining[oid]
        del self.price_of[oid]
        self.level_n[s][tick] -= 1

    def _refresh_best(self, s: int) -> None:
        qty = self.level_qty[s]
        t = self.best[s]
        if s == 0:
            while t > 0 and qty[t] == 0:
                t -= 1
        else:
            while t < GRID and qty[t] == 0:
                t += 1
        self.best[s] = t

    def remove(self, oid: int) -> None:
        s, tick = self.price_of[oid]
        self.level_qty[s][tick] -= self.remaining[oid]
        self._drop(oid, s, tick)
        n = self.level_n[s][tick]
        if n == 0:
            del self.queues[s][tick]
            if tick == self.best[s]:
                self._refresh_best(s)
            return
        q = self.queues[s][tick]
        if len(q) > 2 * n + 16:
            # Compact so dead ids don't pile up on levels that see many cancels.
            remaining = self.remaining
            self.queues[s][tick] = deque(x for x in q if x in remaining)

    def reduce(self, oid: int, new_size: int) -> None:
        s, tick = self.price_of[oid]
        self.level_qty[s][tick] -= self.remaining[oid] - new_size
        self.remaining[oid] = new_size

    def pick_near(self, s: int, distance: int, rand_index: random.Random) -> int:
        """A live order `distance` ticks behind side `s`'s touch, or 0 if none found."""
        tick = self.best[s] - distance if s == 0 else self.best[s] + distance
        q = self.queues[s].get(tick)
        if not q:
            return 0
        for _attempt in range(3):
            oid = q[rand_index.randint(0, len(q) - 1)]
            if oid in self.remaining:
                return oid
        return 0

    def take(self, taker_side: int, size: int, limit_tick: int | None) -> int:
        """Consume resting size from the opposite side; return the unfilled remainder."""
        s = 1 - taker_side
        qty = self.level_qty[s]
        queues = self.queues[s]
        remaining = self.remaining
        while size > 0:
            tick = self.best[s]
            if tick in (0, GRID):
                break
            if limit_tick is not None and (
                tick > limit_tick if taker_side == 0 else tick < limit_tick
            ):
                break
            q = queues[tick]
            while size > 0 and q:
                oid = q[0]
                left = remaining.get(oid)
                if left is None:
                    q.popleft()  # cancelled earlier
                    continue
                fill = left if left < size else size
                size -= fill
                qty[tick] -= fill
                if fill == left:
                    q.popleft()
                    self._drop(oid, s, tick)
                else:
                    remaining[oid] = left - fill
            if qty[tick] == 0:
                del queues[tick]
                self._refresh_best(s)
        return size

    def depth_for_levels(self, s: int, levels: int) -> int:
        """Size resting in the best `levels` non-empty ticks of side `s`."""
        qty = self.level_qty[s]
        tick = self.best[s]
        step = -1 if s == 0 else 1
        total = 0
        while levels > 0 and 0 < tick < GRID:
            if qty[tick]:
                total += qty[tick]
                levels -= 1
            tick += step
        return total


def generate(n: int, seed: int = 7, accounts: int = 100) -> list[Command]:
    """Return `n` commands; identical output for identical (n, seed, accounts)."""
    rng = random.Random(seed)
    rand = rng.random
    randint = rng.randint
    expovariate = rng.expovariate
    sim = _Sim()
    out: list[Command] = []
    append = out.append
    next_id = 1
    mid = float(START_MID)  # fair value, in ticks
    sides = (BUY, SELL)

    # Warm-up: passive limits spread over BUILD_LEVELS ticks either side of the start mid.
    for _ in range(min(n, BUILD_COMMANDS)):
        s = 0 if rand() < 0.5 else 1
        away = randint(1, BUILD_LEVELS)
        tick = START_MID - away if s == 0 else START_MID + away
        size = randint(1, 100)
        append(("limit", next_id, randint(1, accounts), sides[s], tick, size))
        sim.rest(next_id, s, tick, size)
        next_id += 1

    for _ in range(n - len(out)):
        # Fair value: slow random walk with a weak pull back to the centre of the grid.
        mid += (rand() - 0.5) * 0.2 + (START_MID - mid) * 0.0002
        mid = min(max(mid, 50.0), 950.0)
        best_bid, best_ask = sim.best
        two_sided = best_bid > 0 and best_ask < GRID
        book_mid = (best_bid + best_ask) / 2 if two_sided else mid
        live = sim.live
        # Nudge the limit/cancel split (30% +- 9 points) so the resting book hovers around
        # the warm-up size instead of drifting away from it; the long-run mix stays close.
        pressure = min(1.3, max(0.7, len(live) / BUILD_COMMANDS))
        p_limit = _P_CANCEL - (_P_CANCEL - _P_LIMIT) * pressure
        r = rand()

        if p_limit <= r < _P_CANCEL and live:
            # Most cancels pull a quote near the touch (where most orders are placed); the
            # rest hit any live order, which is what ages out the deep book.
            oid = 0
            if rand() >= _UNIFORM_CANCEL * pressure:
                s = 0 if rand() < 0.5 else 1
                oid = sim.pick_near(s, int(expovariate(_NEAR_RATE)), rng)
            if not oid:
                oid = live[randint(0, len(live) - 1)]
            append(("cancel", oid))
            sim.remove(oid)
            continue

        if _P_CANCEL <= r < _P_MARKET and live:
            # Lean towards the side that pulls the book back to fair value.
            p_buy = 0.5 + max(-0.3, min(0.3, (mid - book_mid) * 0.1))
            s = 0 if rand() < p_buy else 1
            levels = 1 + (rand() < 0.3) + (rand() < 0.1)
            # All but the last level fully, plus part of the last one: crosses `levels` ticks.
            before = sim.depth_for_levels(1 - s, levels - 1)
            last = sim.depth_for_levels(1 - s, levels) - before
            size = before + randint(1, last) if last else randint(1, 100)
            size = min(size, MARKET_SIZE_CAP)
            append(("market", next_id, randint(1, accounts), sides[s], size))
            sim.take(s, size, None)
            next_id += 1
            continue

        if r >= _P_MARKET and live:
            # Amend = size down; retry a few picks if we land on a 1-lot, else cancel it.
            for _attempt in range(4):
                oid = live[randint(0, len(live) - 1)]
                left = sim.remaining[oid]
                if left > 1:
                    new_size = randint(1, left - 1)
                    append(("amend", oid, new_size))
                    sim.reduce(oid, new_size)
                    break
            else:
                append(("cancel", oid))
                sim.remove(oid)
            continue

        # Limit order near the touch, mostly passive. Quote around the book's own mid, skewed
        # at most 2 ticks towards fair value: quoting around fair value alone piles orders
        # onto a single tick whenever the book lags behind it.
        s = 0 if rand() < 0.5 else 1
        offset = int(expovariate(_NEAR_RATE))  # 0, 1, 2, ... ticks behind the mid
        ref = book_mid + max(-2.0, min(2.0, mid - book_mid))
        size = randint(1, 100)
        u = rand()
        if u < _P_AGGRESSIVE_LIMIT and two_sided:
            tick = best_ask + randint(0, 2) if s == 0 else best_bid - randint(0, 2)
        elif u < _P_AGGRESSIVE_LIMIT + _P_DEEP_LIMIT:
            # Replenish depth away from the touch (balances the uniform cancels).
            away = randint(5, BUILD_LEVELS)
            tick = int(ref) - away if s == 0 else int(ref) + away
        elif s == 0:
            tick = min(ceil(ref) - 1 - offset, best_ask - 1)
        else:
            tick = max(floor(ref) + 1 + offset, best_bid + 1)
        tick = min(max(tick, MIN_TICK), MAX_TICK)
        append(("limit", next_id, randint(1, accounts), sides[s], tick, size))
        left = sim.take(s, size, tick)
        if left:
            sim.rest(next_id, s, tick, left)
        next_id += 1

    return out


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    stream = generate(100_000)
    elapsed = time.perf_counter() - t0
    counts = Counter(cmd[0] for cmd in stream)
    for kind in ("limit", "cancel", "market", "amend"):
        print(f"{kind:7s} {counts[kind]:8d}")
    print(f"total   {len(stream):8d}  ({elapsed:.2f}s)")
