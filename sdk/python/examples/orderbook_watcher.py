"""Watch a market's order book over the WebSocket stream: the top levels, the spread and each
change, kept in sync by the SDK's LocalOrderBook.

    make run                                   # in another terminal: the sandbox exchange
    export BALLAST_BASE_URL=http://127.0.0.1:8000/v1
    python sdk/python/examples/orderbook_watcher.py [MARKET_ID] [--depth 5] [--interval 1]

Market data needs no key; BALLAST_API_KEY / BALLAST_API_SECRET are used when set. The stream
reconnects by itself; connection events are printed as they come, so a dead feed never looks
like a quiet market.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from ballast import (
    BallastClient,
    Connected,
    Disconnected,
    OrderBook,
    OrderBookMessage,
    Resynced,
)


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
    parser.add_argument(
        "--interval", type=float, default=1.0, help="at most one print per this many seconds"
    )
    parser.add_argument("--count", type=int, default=0, help="stop after N prints (0: never)")
    args = parser.parse_args(argv)

    # BALLAST_BASE_URL (or BALLAST_ENVIRONMENT) and the key come from the environment.
    with BallastClient() as client:
        market = args.market or first_open_market(client)
        with client.stream() as stream:
            stream.order_book(market, depth=args.depth)
            prints = 0
            last_print = 0.0
            changed = True  # the snapshot is in: print it first
            while args.count == 0 or prints < args.count:
                if changed and time.monotonic() - last_print >= args.interval:
                    book = stream.book(market).to_orderbook()
                    print(render(book, args.depth), end="\n\n", flush=True)
                    prints += 1
                    last_print = time.monotonic()
                    changed = False
                    continue
                # Wait for a change, or until the next print is due.
                due = args.interval - (time.monotonic() - last_print) if changed else None
                message = stream.receive(timeout=due)
                if isinstance(message, OrderBookMessage):
                    changed = True
                elif isinstance(message, (Connected, Disconnected, Resynced)):
                    print(f"-- {message.type}: {message}", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
