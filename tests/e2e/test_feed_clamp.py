"""The sandbox feed's index readings stay in their range, as the domain rule says, and a clamp
is reported: in the published evidence (``clamped_from``) and in the log. (An operator's value
outside the range is refused instead: tests/api/test_settlement_api.py.)"""

from __future__ import annotations

import logging

import pytest

from ballast_exchange.domain import Engine, MarketKind
from ballast_exchange.sandbox.catalogue import Listing, build_catalogue
from ballast_exchange.sandbox.feed import observe


def index_listing() -> Listing:
    catalogue = build_catalogue()
    return next(
        listing
        for listing in catalogue.listings(1_800_000_000_000)
        if listing.series.kind is MarketKind.INDEX
    )


@pytest.mark.parametrize(("fair", "end"), [(10_000.0, "100"), (-10_000.0, "0")])
def test_a_reading_outside_the_index_is_clamped_and_reported(
    fair: float, end: str, caplog: pytest.LogCaptureFixture
) -> None:
    listing = index_listing()
    engine = Engine()
    engine.execute(listing.create())
    market = engine.markets[listing.market_id]
    with caplog.at_level(logging.INFO, logger="ballast_exchange.sandbox.feed"):
        value, evidence = observe(listing, market, fair, 1_800_000_000_000)
    assert value == int(end) * 1_000_000 and evidence["settlement_value"] == end
    assert abs(float(evidence["clamped_from"])) > 100
    assert f"clamped to {end}" in caplog.text and listing.market_id in caplog.text


def test_a_reading_inside_the_index_says_nothing_of_clamping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listing = index_listing()
    engine = Engine()
    engine.execute(listing.create())
    market = engine.markets[listing.market_id]
    with caplog.at_level(logging.INFO, logger="ballast_exchange.sandbox.feed"):
        _, evidence = observe(listing, market, (market.floor + market.cap) / 2, 1_800_000_000_000)
    assert "clamped_from" not in evidence and "clamped" not in caplog.text
