"""The sandbox's simulated data feed: when a catalogue market closes it "observes" the outcome,
proposes it with its evidence through ``Settlements`` (the operator's path), and finalizes it
once the dispute window has passed.

- A binary resolves YES with the probability the market last traded at (the bot's fair value
  when the bot runs); an index resolves to a reading near it, on its 0.1 grid.
- The draw is seeded by the market id, so proposing again after a crash tells the same story.
- Everything is decided from the engine's state on each timer run: CLOSED without a proposal ->
  propose; RESOLVING past the dispute window -> finalize. Restarts neither repeat nor skip.
- Only catalogue markets resolve themselves. A market an operator listed, or a catalogue market
  whose proposal an operator overturned, waits for the operator.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ..domain import DomainError, MarketKind, MarketStatus
from ..domain.market import Market
from ..service.exchange import ServiceUnavailable
from ..service.reads import Reads
from ..service.settlement import EvidenceError, Settlements
from ..store import queries
from .catalogue import Catalogue, Listing, iso, ms, utc

log = logging.getLogger(__name__)
PROPOSER = "sandbox-feed"
RETRY_MS = 30_000  # after a rejected proposal
NOTE = (
    "Simulated by the Ballast sandbox data feed: not real data. The outcome is drawn from the "
    "market's own last fair value; the venue settles from the resolution source named here."
)
CAUSES = (
    "vessel grounding blocking the channel",
    "security suspension of tanker transits",
    "official closure for navigation safety",
)


def decimal_text(micro: int) -> str:
    return format(Decimal(micro).scaleb(-6).normalize(), "f")


def observe(
    listing: Listing, market: Market, fair_ticks: float, now_ms: int
) -> tuple[int, dict[str, Any]]:
    """The settlement value (micro price units) and the evidence behind it."""
    series, period = listing.series, listing.period
    seed = hashlib.sha256(market.market_id.encode()).digest()
    rng = random.Random(int.from_bytes(seed[:8], "big"))
    floor, cap, tick_value = market.floor, market.cap, market.tick_value
    span = cap - floor
    evidence: dict[str, Any] = {
        "feed": "Ballast sandbox simulated feed",
        "simulated": True,
        "note": NOTE,
        "source": series.source,
        "market_id": market.market_id,
        "series": series.key,
        "period": period.code,
        "period_label": period.label,
        "window_start": iso(period.start_ms),
        "window_end": iso(market.close_time),
        "observed_at": iso(now_ms),
    }
    if market.kind is MarketKind.INDEX:
        drawn = round(fair_ticks + rng.gauss(0.0, span * 0.015))
        ticks = min(max(drawn, floor), cap)
        value = ticks * tick_value
        reading = float(decimal_text(value))
        evidence.update(reading=reading, unit="index points (0-100)")
        if ticks != drawn:
            # The index is bounded (the series says so), so the feed clamps its draw, and says
            # so: in the published evidence and the log (an operator's value is refused instead).
            evidence["clamped_from"] = decimal_text(drawn * tick_value)
            log.info(
                "sandbox feed: %s drew %s, clamped to %s (the index runs %s to %s)",
                market.market_id,
                evidence["clamped_from"],
                decimal_text(value),
                decimal_text(floor * tick_value),
                decimal_text(cap * tick_value),
            )
    else:
        chance = min(max((fair_ticks - floor) / span, 0.02), 0.98)
        yes = rng.random() < chance
        value = (cap if yes else floor) * tick_value
        evidence.update(outcome="yes" if yes else "no", probability_used=round(chance, 4))
        if series.family == "throughput":
            threshold = series.threshold_teu
            teu = threshold + rng.randint(1, 90_000) if yes else threshold - rng.randint(0, 150_000)
            evidence.update(reading=teu, unit="TEU", threshold_teu=threshold)
        else:
            suspensions = []
            if not yes:
                window = max(market.close_time - period.start_ms, 1)
                start = period.start_ms + int(rng.random() * window * 0.7)
                hours = rng.randint(24, 96)
                suspensions.append(
                    {
                        "start": iso(start),
                        "end": iso(ms(utc(start) + timedelta(hours=hours))),
                        "hours": hours,
                        "cause": rng.choice(CAUSES),
                    }
                )
            evidence.update(
                reading=1 if yes else 0,
                unit="available (1) or not (0)",
                suspensions_24h_or_longer=suspensions,
            )
    evidence["settlement_value"] = decimal_text(value)
    return value, evidence


class Feed:
    def __init__(
        self,
        catalogue: Catalogue,
        settlements: Settlements,
        reads: Reads,
        fair: Callable[[Market, Listing], float],
    ) -> None:
        """``fair`` gives a market's last fair value in ticks."""
        self.catalogue = catalogue
        self.settlements = settlements
        self.exchange = settlements.exchange
        self.reads = reads
        self.fair = fair
        self._operators: set[str] = set()  # closed markets left to the operator
        self._retry_at: dict[str, int] = {}
        self._failures: dict[str, int] = {}  # storage errors in a row, per market

    async def run_once(self, now_ms: int) -> None:
        for market in self.reads.markets():
            if market.status is not MarketStatus.CLOSED or market.settlement is not None:
                continue
            market_id = market.market_id
            if market_id in self._operators or self._retry_at.get(market_id, 0) > now_ms:
                continue
            listing = self.catalogue.lookup(market_id)
            if listing is None:
                self._operators.add(market_id)
                continue
            try:
                if await self._proposed_before(market_id):
                    self._operators.add(market_id)
                    continue
                value, evidence = observe(listing, market, self.fair(market, listing), now_ms)
                digest = await self.settlements.propose(market_id, value, evidence, PROPOSER)
            except (DomainError, EvidenceError) as error:
                log.warning("sandbox feed could not propose %s: %s", market_id, error)
                self._retry_at[market_id] = now_ms + RETRY_MS
                continue
            except ServiceUnavailable:
                raise
            except Exception as error:  # e.g. the store was busy: try again on the next run
                failures = self._failures[market_id] = self._failures.get(market_id, 0) + 1
                level = logging.WARNING if failures % 20 == 0 else logging.INFO
                log.log(level, "sandbox feed will retry proposing %s: %r", market_id, error)
                continue
            self._failures.pop(market_id, None)
            self._retry_at.pop(market_id, None)
            log.info(
                "sandbox feed proposed %s = %s (evidence %s)",
                market_id,
                evidence["settlement_value"],
                digest,
            )
        for market_id in self.settlements.due(now_ms):
            if self._retry_at.get(market_id, 0) > now_ms:
                continue
            if self.catalogue.lookup(market_id) is None:
                continue
            try:
                await self.settlements.finalize(market_id)
            except DomainError as error:
                log.warning("sandbox feed could not finalize %s: %s", market_id, error)
                self._retry_at[market_id] = now_ms + RETRY_MS
                continue
            self._retry_at.pop(market_id, None)
            log.info("sandbox feed finalized %s", market_id)

    async def _proposed_before(self, market_id: str) -> bool:
        """A closed market with an earlier proposal had it overturned: the operator decides."""
        rows = await self.reads.stored(queries.list_settlements, market_id)
        return bool(rows)
