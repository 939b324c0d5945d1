"""What a running exchange counts, for ``/metrics`` (Prometheus text format).

One ``Metrics`` per runtime, with its own ``CollectorRegistry`` (never the global one: tests run
several servers in one process).

The hot path stays cheap. Everything counted on the event loop (commands, orders, matching
time, HTTP requests, rate limits, stream connections) is a plain integer in a dict or a list,
bumped without locks, since the loop runs one thing at a time; a collector turns them into
metric families when ``/metrics`` is scraped, which also runs on the loop. Only the commit
thread's numbers, a few per group commit rather than per command, use prometheus_client's
thread-safe instruments.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..domain.events import Event, OrderAccepted, OrderClosed, Trade

# Engine time per command: tens of microseconds for an order, more for a sweep.
MATCHING_BUCKETS = (
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    0.1,
)
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

INF = float("inf")
Gauge = Callable[[], Sequence[tuple[Sequence[str], float]]]


def snake(name: str) -> str:
    """``PlaceOrder`` -> ``place_order``: command types as label values."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class LoopHistogram:
    """A histogram bumped on the event loop only: a list of bucket counts and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, INF), self.counts, strict=True):
            total += count
            buckets.append(("+Inf" if bound == INF else repr(float(bound)), total))
        return buckets


class Metrics:
    """The instruments of one runtime and the registry ``/metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Bumped on the event loop.
        self.commands: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.refused = 0
        self.orders: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.trades: defaultdict[str, int] = defaultdict(int)
        self.traded: defaultdict[str, int] = defaultdict(int)
        self.matching: dict[str, LoopHistogram] = {}
        self.http: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.http_time: dict[tuple[str, str], LoopHistogram] = {}
        self.limited: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.stream_opened = 0
        self.stream_refused: defaultdict[str, int] = defaultdict(int)
        self.stream_cut: defaultdict[str, int] = defaultdict(int)
        self.gauges: list[tuple[str, str, Sequence[str], Gauge]] = []
        self._names: dict[type, str] = {}
        # Observed by the commit thread, once per group commit.
        self.commit_batch = Histogram(
            "ballast_commit_batch_size",
            "Journal items (one per command) stored per group-commit transaction",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_time = Histogram(
            "ballast_commit_seconds",
            "Time to write and commit one group-commit transaction",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.commit_failures = Counter(
            "ballast_commit_failures",
            "Group commits the database refused; the first stops the exchange, so 0 or 1",
            registry=self.registry,
        )
        self.registry.register(_LoopCollector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def render(self) -> bytes:
        """The Prometheus text exposition (call on the event loop)."""
        return generate_latest(self.registry)

    def gauge(self, name: str, help_text: str, labels: Sequence[str], read: Gauge) -> None:
        """A gauge read when scraped: ``read`` returns (label values, value) pairs."""
        self.gauges.append((name, help_text, tuple(labels), read))

    # ------------------------------------------------------------ the exchange (loop)

    def command_name(self, kind: type) -> str:
        name = self._names.get(kind)
        if name is None:
            name = self._names[kind] = snake(kind.__name__)
        return name

    def executed(self, kind: type, events: list[Event], seconds: float) -> None:
        """An accepted command: its engine time, and what its events say about orders."""
        name = self._names.get(kind) or self.command_name(kind)
        self.commands[(name, "accepted", "")] += 1
        histogram = self.matching.get(name)
        if histogram is None:
            histogram = self.matching[name] = LoopHistogram(MATCHING_BUCKETS)
        histogram.observe(seconds)
        orders = self.orders
        for event in events:
            event_type = type(event)
            if event_type is OrderAccepted:
                orders[("accepted", "")] += 1
            elif event_type is OrderClosed:
                orders[(event.status, event.reason or "")] += 1  # type: ignore[attr-defined]
            elif event_type is Trade:
                market_id = event.market_id  # type: ignore[attr-defined]
                self.trades[market_id] += 1
                self.traded[market_id] += event.size  # type: ignore[attr-defined]

    def rejected(self, kind: type, code: str, seconds: float | None = None) -> None:
        """A command the engine (or the exchange in front of it) refused with ``code``."""
        name = self._names.get(kind) or self.command_name(kind)
        self.commands[(name, "rejected", code)] += 1
        if seconds is not None:
            histogram = self.matching.get(name)
            if histogram is None:
                histogram = self.matching[name] = LoopHistogram(MATCHING_BUCKETS)
            histogram.observe(seconds)
        if name == "place_order":
            self.orders[("rejected", code)] += 1

    # ------------------------------------------------------------ the edges (loop)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http[(method, route, str(status))] += 1
        histogram = self.http_time.get((method, route))
        if histogram is None:
            histogram = self.http_time[(method, route)] = LoopHistogram(HTTP_BUCKETS)
        histogram.observe(seconds)

    def rate_limited(self, scope: str, via: str = "http") -> None:
        """A request refused for its rate limit: ``scope`` public (per IP) or private (per key)."""
        self.limited[(scope, via)] += 1

    # ------------------------------------------------------------ the commit thread

    def committed(self, items: int, seconds: float) -> None:
        self.commit_batch.observe(items)
        self.commit_time.observe(seconds)


def labelled(
    name: str,
    help_text: str,
    labels: Sequence[str],
    counts: Mapping[Any, int],
) -> CounterMetricFamily:
    """A counter family from a dict keyed by label values (a tuple, or one string)."""
    family = CounterMetricFamily(name, help_text, labels=labels)
    for key, value in sorted(counts.items()):
        family.add_metric([key] if isinstance(key, str) else list(key), value)
    return family


class _LoopCollector:
    """Turns the loop's plain counters into metric families when scraped (on the loop)."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield labelled(
            "ballast_commands",
            "Commands run by the exchange, by command type and outcome "
            "(code: the rejection's error code)",
            ["command", "outcome", "code"],
            m.commands,
        )
        yield CounterMetricFamily(
            "ballast_commands_refused",
            "Commands refused unexecuted because the exchange had stopped (503)",
            value=m.refused,
        )
        yield labelled(
            "ballast_orders",
            "Orders by outcome: accepted; rejected (reason: error code); filled, canceled, "
            "expired when they leave the book (reason: why)",
            ["outcome", "reason"],
            m.orders,
        )
        yield labelled("ballast_trades", "Trades by market", ["market"], m.trades)
        yield labelled(
            "ballast_traded_contracts", "Contracts traded by market", ["market"], m.traded
        )
        matching = HistogramMetricFamily(
            "ballast_matching_seconds",
            "Engine time to execute one command (validation, matching, booking)",
            labels=["command"],
        )
        for name, histogram in sorted(m.matching.items()):
            matching.add_metric([name], histogram.cumulative(), histogram.sum)
        yield matching
        yield labelled(
            "ballast_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            m.http,
        )
        latency = HistogramMetricFamily(
            "ballast_http_request_seconds",
            "HTTP request time, from the request's arrival to its last byte handed over",
            labels=["method", "route"],
        )
        for route_key, histogram in sorted(m.http_time.items()):
            latency.add_metric(list(route_key), histogram.cumulative(), histogram.sum)
        yield latency
        yield labelled(
            "ballast_rate_limited",
            "Requests refused with RATE_LIMIT_EXCEEDED, by scope (public: per IP, private: "
            "per API key) and where they came in (http, stream)",
            ["scope", "via"],
            m.limited,
        )
        yield CounterMetricFamily(
            "ballast_stream_connections_opened",
            "WebSocket connections admitted to the stream",
            value=m.stream_opened,
        )
        yield labelled(
            "ballast_stream_connections_refused",
            "WebSocket connections refused with TOO_MANY_CONNECTIONS, by the limit hit",
            ["limit"],
            m.stream_refused,
        )
        yield labelled(
            "ballast_stream_connections_cut",
            "WebSocket connections the server closed, by why (slow consumer, key revoked, error)",
            ["reason"],
            m.stream_cut,
        )
        for name, help_text, labels, read in m.gauges:
            gauge = GaugeMetricFamily(name, help_text, labels=labels)
            for label_values, reading in read():
                gauge.add_metric(label_values, reading)
            yield gauge
