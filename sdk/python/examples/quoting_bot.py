"""A two-sided quoting bot: a bid and an ask around a fair value, re-quoted as the book and
the bot's own position move, all open quotes canceled on exit.

    make run                                   # in another terminal: the sandbox exchange
    export BALLAST_BASE_URL=http://127.0.0.1:8000/v1
    export BALLAST_API_KEY=bmkt_test_...  BALLAST_API_SECRET=bmkt_secret_...   # printed by it
    python sdk/python/examples/quoting_bot.py [MARKET_ID] [--spread 0.02] [--size 100]

Fair value is the book's mid when both sides quote (ignoring our own quotes is left as an
exercise), else the last trade, else the middle of the market's range. The quotes lean
against inventory: long makes both quotes cheaper, short makes them dearer.
"""

from __future__ import annotations

import argparse
import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ballast import (
    BallastClient,
    BallastError,
    MarketRules,
    Order,
    OrderNotCancelableError,
    Side,
)

SIDES: tuple[Side, Side] = ("buy", "sell")


def on_grid(price: Decimal, rules: MarketRules, rounding: str) -> Decimal:
    """Snap to the tick grid and keep strictly inside (floor, cap)."""
    ticks = (price / rules.tick_size).to_integral_value(rounding=rounding)
    lowest = rules.floor / rules.tick_size + 1
    highest = rules.cap / rules.tick_size - 1
    return max(lowest, min(highest, ticks)) * rules.tick_size


def fair_value(client: BallastClient, market_id: str, rules: MarketRules) -> Decimal:
    book = client.get_orderbook(market_id, depth=1)
    if book.mid is not None:
        return book.mid
    last = client.get_market(market_id).last_price
    return last if last is not None else (rules.floor + rules.cap) / 2


class Quoter:
    def __init__(self, client: BallastClient, market_id: str, spread: Decimal, size: int,
                 skew_per_contract: Decimal) -> None:  # fmt: skip
        self.client = client
        self.market_id = market_id
        self.spread = spread
        self.size = size
        self.skew = skew_per_contract
        market = client.get_market(market_id)
        if market.rules is None:
            raise SystemExit(f"{market_id} has no rules")
        self.rules = market.rules
        self.quotes: dict[Side, Order | None] = {"buy": None, "sell": None}

    def position(self) -> int:
        return next(
            (p.size for p in self.client.get_positions() if p.market_id == self.market_id), 0
        )

    def targets(self) -> dict[Side, Decimal]:
        fair = fair_value(self.client, self.market_id, self.rules)
        lean = self.skew * self.position()
        half = self.spread / 2
        return {
            "buy": on_grid(fair - half - lean, self.rules, ROUND_FLOOR),
            "sell": on_grid(fair + half - lean, self.rules, ROUND_CEILING),
        }

    def requote(self) -> None:
        targets = self.targets()
        if targets["buy"] >= targets["sell"]:  # the range is too narrow for this spread
            targets["buy"] = targets["sell"] - self.rules.tick_size
        for side in SIDES:
            price = targets[side]
            quote = self.quotes[side]
            if quote is not None:
                quote = self.client.get_order(quote.id)
                if not quote.is_open:
                    print(f"{side} quote {quote.id} {quote.status} ({quote.filled_size} filled)")
                    quote = None
            try:
                if quote is None:
                    quote = self.client.place_order(
                        self.market_id,
                        side,
                        price=price,
                        size=self.size,
                        post_only=True,
                    )
                    print(f"quoted {side} {self.size} @ {price}: {quote.id}")
                elif quote.price != price:
                    quote = self.client.amend_order(quote.id, price=price)
                    print(f"moved {side} to {price}")
            except OrderNotCancelableError:
                quote = None  # filled meanwhile: quote afresh next round
            except BallastError as error:  # e.g. POST_ONLY_WOULD_CROSS, INSUFFICIENT_BALANCE
                print(f"{side} @ {price} refused: {error}")
                quote = None
            self.quotes[side] = quote

    def stop(self) -> None:
        canceled = self.client.cancel_all(self.market_id)
        print(f"canceled {canceled.count} quote(s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("market", nargs="?", help="market id (default: the first open one)")
    parser.add_argument("--spread", type=Decimal, default=Decimal("0.02"))
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--skew", type=Decimal, default=Decimal("0.0001"),
                        help="price lean per contract of inventory")  # fmt: skip
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between re-quotes")
    parser.add_argument("--rounds", type=int, default=0, help="stop after N rounds (0: never)")
    args = parser.parse_args(argv)

    # BALLAST_API_KEY, BALLAST_API_SECRET and BALLAST_BASE_URL come from the environment.
    with BallastClient() as client:
        market = args.market or client.get_markets(status="open")[0].id
        bot = Quoter(client, market, args.spread, args.size, args.skew)
        print(f"quoting {market}: spread {args.spread}, size {args.size}")
        rounds = 0
        try:
            while args.rounds == 0 or rounds < args.rounds:
                rounds += 1
                bot.requote()
                time.sleep(args.interval)
        except KeyboardInterrupt:
            pass
        finally:
            bot.stop()


if __name__ == "__main__":
    main()
