"""The sandbox's market catalogue: the venue's kind of markets, on a rolling calendar.

Series (each listed for its current and its next period, always open):

- Chokepoint availability binaries, weekly and monthly: Suez Canal, Panama Canal, Strait of
  Hormuz, Strait of Malacca, Bab-el-Mandeb.
- Port congestion indices (0-100, tick 0.1), monthly: Shanghai, Singapore, Los Angeles.
- A port throughput threshold binary, monthly: Rotterdam above 1.2M TEU.

Calendar (all UTC, deterministic cut-offs):

- Weekly: the ISO week. The observation window runs from Monday 00:00 to the close, Friday
  16:00. Id ``{series}-w{ISO year}-{ISO week}``, e.g. ``suez-w2026-49``.
- Monthly: the calendar month. The window runs from the 1st, 00:00, to the close, the last day
  of the month at 23:59. Id ``{series}-{year}-{month}``, e.g. ``suez-2026-12``,
  ``shanghai-congestion-2026-12``.
- The settlement date published on a market is its close time; the sandbox's simulated feed
  proposes the outcome as soon as the market closes (the venue settles T+1 from official data).

A period is *current* from the previous period's close until its own close; the catalogue keeps
the current and the next period of every series listed. Everything here is a pure function of
the time it is given, so the calendar can be tested at any date, and ``Compressed`` periods
(``sandbox_period_s``) let a demo or a test watch markets roll within seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from ..domain import MarketKind
from ..domain import commands as c

# (tick_value, floor, cap) in micro-USDC per tick and ticks: binaries 0-1 by 0.001 like the
# venue's, indices 0-100 by 0.1 ($1 per point).
BINARY_GRID = (1_000, 0, 1_000)
INDEX_GRID = (100_000, 0, 1_000)
MAKER_FEE_BPS = -5  # a rebate, as the venue pays makers
TAKER_FEE_BPS = 20
WEEKLY_CLOSE = time(16, 0)  # Friday
MONTHLY_CLOSE = time(23, 59)  # the last day of the month
COMPRESSED_MONTH = 4  # compressed monthly periods are this many compressed weeks


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def utc(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def iso(at_ms: int) -> str:
    moment = utc(at_ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if at_ms % 1000:
        text += f".{at_ms % 1000:03d}"
    return text + "Z"


def day_text(moment: datetime) -> str:
    return f"{moment.day} {moment:%b} {moment.year}"


@dataclass(frozen=True, slots=True)
class Period:
    code: str  # the id suffix: "w2026-49", "2026-12"
    label: str  # "week 49 of 2026 (30 Nov - 4 Dec)", "December 2026"
    title: str  # for the market name: "Week 49 2026", "December 2026"
    start_ms: int  # the observation window opens
    close_ms: int  # trading stops; the window closes


class Schedule(Protocol):
    cadence: str

    def period_at(self, now_ms: int) -> Period:
        """The current period: the first one whose close is after ``now_ms``."""
        ...

    def following(self, period: Period) -> Period: ...

    def parse(self, code: str) -> Period | None: ...


class Weekly:
    """ISO weeks closing Friday 16:00 UTC."""

    cadence = "weekly"
    _code = re.compile(r"w(\d{4})-(\d{2})")

    def week(self, year: int, week: int) -> Period:
        monday = date.fromisocalendar(year, week, 1)
        friday = monday + timedelta(days=4)
        start = datetime.combine(monday, time(0, 0), UTC)
        close = datetime.combine(friday, WEEKLY_CLOSE, UTC)
        return Period(
            f"w{year}-{week:02d}",
            f"ISO week {week} of {year} (Mon {day_text(start)} - Fri {day_text(close)})",
            f"Week {week} {year}",
            ms(start),
            ms(close),
        )

    def period_at(self, now_ms: int) -> Period:
        year, week, _ = utc(now_ms).isocalendar()
        period = self.week(year, week)
        return period if period.close_ms > now_ms else self.following(period)

    def following(self, period: Period) -> Period:
        year, week, _ = (utc(period.close_ms) + timedelta(days=7)).isocalendar()
        return self.week(year, week)

    def parse(self, code: str) -> Period | None:
        match = self._code.fullmatch(code)
        if match is None:
            return None
        try:
            return self.week(int(match[1]), int(match[2]))
        except ValueError:
            return None


class Monthly:
    """Calendar months closing on their last day at 23:59 UTC."""

    cadence = "monthly"
    _code = re.compile(r"(\d{4})-(\d{2})")

    def month(self, year: int, month: int) -> Period:
        start = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        last_day = following - timedelta(days=1)
        close = datetime.combine(last_day.date(), MONTHLY_CLOSE, UTC)
        name = f"{start:%B} {year}"
        return Period(f"{year}-{month:02d}", name, name, ms(start), ms(close))

    def period_at(self, now_ms: int) -> Period:
        moment = utc(now_ms)
        period = self.month(moment.year, moment.month)
        return period if period.close_ms > now_ms else self.following(period)

    def following(self, period: Period) -> Period:
        start = utc(period.start_ms)
        return self.month(start.year + start.month // 12, start.month % 12 + 1)

    def parse(self, code: str) -> Period | None:
        match = self._code.fullmatch(code)
        if match is None or not 1 <= int(match[2]) <= 12:
            return None
        return self.month(int(match[1]), int(match[2]))


class Compressed:
    """Periods of ``length_s`` whole seconds aligned to the Unix epoch, named by their close
    (``w20261204t161503``): a week squeezed into seconds, for demos and tests."""

    def __init__(self, cadence: str, length_s: int) -> None:
        if length_s < 1:
            raise ValueError("a compressed period lasts at least one second")
        self.cadence = cadence
        self.length_ms = length_s * 1000
        self.tag = cadence[0]  # "w" or "m"
        self._code = re.compile(rf"{self.tag}(\d{{8}}t\d{{6}})")

    def ending(self, close_ms: int) -> Period:
        close = utc(close_ms)
        return Period(
            f"{self.tag}{close:%Y%m%dt%H%M%S}",
            f"the {self.cadence} period to {close:%H:%M:%S} UTC on {day_text(close)}",
            f"{self.cadence.title()} to {close:%H:%M:%S}",
            close_ms - self.length_ms,
            close_ms,
        )

    def period_at(self, now_ms: int) -> Period:
        return self.ending((now_ms // self.length_ms + 1) * self.length_ms)

    def following(self, period: Period) -> Period:
        return self.ending(period.close_ms + self.length_ms)

    def parse(self, code: str) -> Period | None:
        match = self._code.fullmatch(code)
        if match is None:
            return None
        try:
            close = datetime.strptime(match[1], "%Y%m%dt%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            return None
        close_ms = ms(close)
        return self.ending(close_ms) if close_ms % self.length_ms == 0 else None


# ---------------------------------------------------------------- series


@dataclass(frozen=True, slots=True)
class Family:
    """What a kind of series is about, for discovery: its category, tags and titles."""

    category: str
    tags: tuple[str, ...]
    measure: str  # in the series title: "Suez Canal weekly availability"
    event: str  # the event title before the period: "Chokepoint availability - Week 49 2026"


FAMILIES = {
    "chokepoint": Family(
        "Chokepoints",
        ("shipping", "chokepoint", "tankers"),
        "availability",
        "Chokepoint availability",
    ),
    "congestion": Family(
        "Port congestion",
        ("shipping", "ports", "congestion", "containers"),
        "congestion index",
        "Port congestion",
    ),
    "throughput": Family(
        "Port throughput",
        ("shipping", "ports", "throughput", "containers"),
        "throughput",
        "Port throughput",
    ),
}


@dataclass(frozen=True, slots=True)
class Series:
    prefix: str  # the id before the period code
    cadence: str  # "weekly" or "monthly"
    family: str  # "chokepoint", "congestion" or "throughput"
    subject: str  # "Suez Canal", "Port of Shanghai"
    source: str  # the official data the venue settles from
    anchor: float  # a typical fair value, in price units (probability or index points)
    threshold_teu: int = 0  # throughput markets: the line the question asks about

    @property
    def key(self) -> str:
        return f"{self.prefix}-{self.cadence}"

    @property
    def place(self) -> str:
        """The subject as a tag: ``suez``, ``shanghai``, ``rotterdam``."""
        return self.prefix.removesuffix("-congestion").removesuffix("-teu")

    @property
    def kind(self) -> MarketKind:
        return MarketKind.INDEX if self.family == "congestion" else MarketKind.BINARY


CHOKEPOINTS = (
    (
        "suez",
        "Suez Canal",
        "Suez Canal Authority (SCA) navigation circulars and daily transit reports",
        0.86,
    ),
    (
        "panama",
        "Panama Canal",
        "Panama Canal Authority (ACP) advisories to shipping and daily transit statistics",
        0.92,
    ),
    (
        "hormuz",
        "Strait of Hormuz",
        "UKMTO advisories and Joint Maritime Information Center (JMIC) notes",
        0.9,
    ),
    (
        "malacca",
        "Strait of Malacca",
        "Maritime and Port Authority of Singapore port marine notices and Straits VTS reports",
        0.95,
    ),
    (
        "bab-el-mandeb",
        "Bab-el-Mandeb strait",
        "UKMTO advisories and Joint Maritime Information Center (JMIC) notes",
        0.45,
    ),
)
CONGESTION = (
    ("shanghai", "Port of Shanghai", 55.0),
    ("singapore", "Port of Singapore", 40.0),
    ("los-angeles", "Port of Los Angeles", 25.0),
)
CONGESTION_SOURCE = (
    "Ballast port congestion index: AIS count of container ships waiting at anchorage, "
    "published daily"
)


def default_series() -> list[Series]:
    series = [
        Series(prefix, cadence, "chokepoint", subject, source, anchor)
        for prefix, subject, source, anchor in CHOKEPOINTS
        for cadence in ("weekly", "monthly")
    ]
    series += [
        Series(f"{prefix}-congestion", "monthly", "congestion", subject, CONGESTION_SOURCE, anchor)
        for prefix, subject, anchor in CONGESTION
    ]
    series.append(
        Series(
            "rotterdam-teu",
            "monthly",
            "throughput",
            "Port of Rotterdam",
            "Port of Rotterdam Authority monthly container throughput figures",
            0.35,
            threshold_teu=1_200_000,
        )
    )
    return series


SETTLEMENT_NOTE = (
    "Settlement: the value is proposed with its evidence, published with the SHA-256 hash of "
    "the evidence in RFC 8785 canonical JSON, and can be disputed during the dispute window "
    "before payouts are final. In the sandbox a simulated data feed proposes the outcome as "
    "soon as the market closes."
)


def describe(series: Series, period: Period) -> tuple[str, str, str]:
    """The market's name, question and description."""
    window = f"from {iso(period.start_ms)} to {iso(period.close_ms)}"
    if series.family == "chokepoint":
        name = f"{series.subject} Availability - {period.title}"
        question = (
            f"Will the {series.subject} be available for tanker transits throughout {period.label}?"
        )
        description = (
            f"Resolves YES (1) if the {series.subject} stays open to laden tanker transits in "
            f"both directions {window}. Resolves NO (0) if, inside that window, tanker transits "
            "are suspended for 24 hours or more in a row: an official closure, a blockage or a "
            "security suspension reported by the resolution source. Delays, convoy "
            "rescheduling, draft or weather restrictions shorter than 24 hours, and "
            "restrictions on single vessels, do not count. " + SETTLEMENT_NOTE
        )
    elif series.family == "congestion":
        name = f"{series.subject.removeprefix('Port of ')} Port Congestion Index - {period.title}"
        question = (
            f"Where will the {series.subject} congestion index (0-100) stand at the close of "
            f"{period.label}?"
        )
        description = (
            f"Settles to the {series.subject} congestion index reading published for the close "
            f"({iso(period.close_ms)}): the share, scaled 0-100, of arriving container ships "
            "waiting at anchorage for a berth, from AIS positions. 0 is no waiting, 100 is "
            "anchorage capacity saturated. The value is rounded to 0.1 and clamped to 0-100; "
            "a contract pays $1 per index point. " + SETTLEMENT_NOTE
        )
    else:
        millions = series.threshold_teu / 1_000_000
        port = series.subject.removeprefix("Port of ")
        name = f"{port} Throughput above {millions:g}M TEU - {period.title}"
        question = (
            f"Will the {series.subject} handle more than {millions:g}M TEU of containers in "
            f"{period.label}?"
        )
        description = (
            f"Resolves YES (1) if the total container throughput (loaded and empty, in TEU) "
            f"the {series.subject} reports for {period.label} is more than "
            f"{series.threshold_teu:,} TEU, NO (0) otherwise. Throughput counts containers "
            f"discharged and loaded {window}. " + SETTLEMENT_NOTE
        )
    return name, question, description


@dataclass(frozen=True, slots=True)
class Listing:
    """One market of the catalogue: a series in a period."""

    series: Series
    period: Period

    @property
    def market_id(self) -> str:
        return f"{self.series.prefix}-{self.period.code}"

    def create(self, time: int = 0) -> c.CreateMarket:
        kind = self.series.kind
        tick_value, floor, cap = INDEX_GRID if kind is MarketKind.INDEX else BINARY_GRID
        return c.CreateMarket(
            time,
            self.market_id,
            kind,
            tick_value,
            floor,
            cap,
            self.period.close_ms,
            maker_fee_bps=MAKER_FEE_BPS,
            taker_fee_bps=TAKER_FEE_BPS,
        )

    def details(self) -> dict[str, object]:
        """The descriptive columns (``upsert_market_details``)."""
        name, question, description = describe(self.series, self.period)
        series, family = self.series, FAMILIES[self.series.family]
        return {
            "name": name,
            "question": question,
            "description": description,
            "resolution_source": series.source,
            "settlement_date": self.period.close_ms,
            "category": family.category,
            "tags": json.dumps(list(dict.fromkeys([*family.tags, series.place, series.cadence]))),
            # One subject on every period: "Suez Canal weekly availability".
            "series_id": series.key,
            "series_title": f"{series.subject} {series.cadence} {family.measure}",
            # Every subject of a family on one period, resolved together.
            "event_id": f"{series.family}-{self.period.code}",
            "event_title": f"{family.event} - {self.period.title}",
        }


class Catalogue:
    def __init__(
        self,
        series: Sequence[Series],
        schedules: Sequence[Schedule],
        extra: Sequence[Schedule] = (),
    ) -> None:
        """``schedules``: one per cadence, used to list; ``extra``: more that ids may use."""
        self.series = list(series)
        self.schedules = {s.cadence: s for s in schedules}
        self._parsers: dict[str, list[Schedule]] = {}
        for schedule in [*schedules, *extra]:
            self._parsers.setdefault(schedule.cadence, []).append(schedule)

    def listings(self, now_ms: int) -> list[Listing]:
        """The current and the next period of every series at ``now_ms``."""
        out = []
        for series in self.series:
            schedule = self.schedules[series.cadence]
            current = schedule.period_at(now_ms)
            out += [Listing(series, current), Listing(series, schedule.following(current))]
        return out

    def lookup(self, market_id: str) -> Listing | None:
        """The listing a market id stands for, or None for a market not from this catalogue."""
        for series in self.series:
            head = series.prefix + "-"
            if not market_id.startswith(head):
                continue
            code = market_id[len(head) :]
            for schedule in self._parsers.get(series.cadence, ()):
                period = schedule.parse(code)
                if period is not None:
                    return Listing(series, period)
        return None


def build_catalogue(period_s: float | None = None) -> Catalogue:
    """The sandbox catalogue on the real calendar, or with compressed periods for demos and
    tests (weekly series every ``period_s`` seconds, monthly ones every four times that)."""
    real: list[Schedule] = [Weekly(), Monthly()]
    if period_s is None:
        return Catalogue(default_series(), real)
    length = max(1, round(period_s))
    compressed: list[Schedule] = [
        Compressed("weekly", length),
        Compressed("monthly", length * COMPRESSED_MONTH),
    ]
    return Catalogue(default_series(), compressed, real)
