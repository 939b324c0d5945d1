"""The sandbox: a rolling catalogue of demo markets, a liquidity bot, and a simulated data feed
that settles catalogue markets when they close (``ballast serve`` with no arguments)."""

from .bot import LiquidityBot
from .catalogue import Catalogue, Listing, build_catalogue
from .feed import Feed
from .runner import Sandbox

__all__ = ["Catalogue", "Feed", "LiquidityBot", "Listing", "Sandbox", "build_catalogue"]
