"""Watch a market's order book: the top levels, the spread and each change, by polling REST.

    make run                                   # in another terminal: the sandbox exchange
    export BALLAST_BASE_URL=http://127.0.0.1:8000/v1
    python sdk/python/examples/orderbook_watcher.py [MARKET_ID] [--depth 5] [--interval 1]

Market data needs no key; BALLAST_API_KEY / BALLAST_API_SECRET are used when set (the
requests then count against the key's rate limit rather than your IP's).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from decimal import Decimal

from ballast import BallastClient, OrderBook, RateLimitError


def render(book: OrderBook, depth: int) -> str:
    lines = [f"{book.market_id}  {book.timestamp:%H:%M:%S.%f}"[:-3] + f"  seq {book.seq}"]
    lines.append(f"{'bid size':>10} {'bid':>9} | {'ask':<9} {'ask size':<10}")
    for i in range(depth):
        bid = book.bids[i] if i < len(book.bids) else None
        ask = book.asks[i] if i < len(book.asks) else None
        left = f"{bid.size:>10} {bid.price:>9}" if bid else " " * 20
        right = f"{ask.price:<9} {ask.size:<10}" if ask else ""
        lines.append(f"{left} | {right}")
    spread = book.spread
    lines.append(f"spread {spread}  mid {book.mid}" if spread is not None else "one-sided book")
    return "\n".join(lines)


def first_open_market(client: BallastClient) -> str:
    markets = client.get_markets(status="open")
    if not markets:
        raise SystemExit("no open market; list one with `ballast admin markets create`")
    return markets[0].id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("market", nargs="?", help="market id (default: the first open one)")
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--count", type=int, default=0, help="stop after N polls (0: never)")
    args = parser.parse_args(argv)

    # BALLAST_BASE_URL (or BALLAST_ENVIRONMENT) and the key come from the environment.
    with BallastClient() as client:
        market = args.market or first_open_market(client)
        last: tuple[tuple[tuple[Decimal, int], ...], ...] | None = None
        polls = 0
        while args.count == 0 or polls < args.count:
            polls += 1
            try:
                book = client.get_orderbook(market, depth=args.depth)
            except RateLimitError as error:  # only when retries could not absorb it
                time.sleep(error.retry_after or args.interval)
                continue
            levels = (
                tuple((lvl.price, lvl.size) for lvl in book.bids),
                tuple((lvl.price, lvl.size) for lvl in book.asks),
            )
            if levels != last:  # print only what changed
                print(render(book, args.depth), end="\n\n", flush=True)
                last = levels
            time.sleep(args.interval)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
