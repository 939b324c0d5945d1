"""Helpers for the SDK's stream tests: waiting for messages, comparing books, order flow."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ballast import (
    AsyncBallastClient,
    BallastError,
    ChannelMessage,
    LocalOrderBook,
    OrderBook,
    OrderBookMessage,
    Stream,
    StreamMessage,
)

Levels = tuple[list[tuple[Decimal, int]], list[tuple[Decimal, int]]]


def levels(book: LocalOrderBook | OrderBook) -> Levels:
    return (
        [(level.price, level.size) for level in book.bids],
        [(level.price, level.size) for level in book.asks],
    )


async def read_until(
    stream: Stream, predicate: Callable[[StreamMessage], bool], timeout: float = 10
) -> list[StreamMessage]:
    """Every message read up to and including the first that matches."""
    seen: list[StreamMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            last = [type(m).__name__ for m in seen[-5:]]
            raise AssertionError(f"no match within {timeout} s; read {len(seen)}: ...{last}")
        try:
            message = await stream.receive(left)
        except TimeoutError:
            continue
        seen.append(message)
        if predicate(message):
            return seen


async def assert_book_matches_rest(
    stream: Stream, rest: AsyncBallastClient, market_id: str, depth: int
) -> LocalOrderBook:
    """Once caught up (a pong), the stream's book is REST's book, at REST's ``seq``."""
    pong = await stream.ping()
    book = stream.book(market_id)
    shown = await rest.get_orderbook(market_id, depth=depth)
    assert book.synced
    assert shown.seq == pong.exchange_seq == book.exchange_seq, (shown.seq, pong, book)
    assert levels(book) == levels(shown)
    return book


def rebuild(
    messages: list[StreamMessage], market_id: str, start: tuple[Levels, int] | None = None
) -> Levels:
    """A book rebuilt from the iterated snapshot and updates alone (or from ``start``, a book
    and its ``seq``), checking ``seq`` on the way; it starts over at every snapshot."""
    bids: dict[Decimal, int] = dict(start[0][0]) if start else {}
    asks: dict[Decimal, int] = dict(start[0][1]) if start else {}
    last: int | None = start[1] if start else None
    for message in messages:
        if not isinstance(message, OrderBookMessage) or message.market_id != market_id:
            continue
        if message.is_snapshot:
            bids, asks = {}, {}
        else:
            assert last is not None and message.seq == last + 1, (last, message.seq)
        last = message.seq
        for side, changed in ((bids, message.bids), (asks, message.asks)):
            for level in changed:
                if level.size:
                    side[level.price] = level.size
                else:
                    del side[level.price]
    return (
        sorted(bids.items(), reverse=True),
        sorted(asks.items()),
    )


def data_messages(messages: list[StreamMessage], channel: str) -> list[ChannelMessage]:
    return [m for m in messages if isinstance(m, ChannelMessage) and m.channel == channel]


async def random_flow(
    rng: random.Random, traders: list[AsyncBallastClient], market_id: str, orders: int
) -> None:
    """Limit orders around 0.50 from several accounts at once, crossing now and then, some
    market orders and cancels; each account sends its own orders one after another."""
    rngs = [random.Random(rng.random()) for _ in traders]

    async def trade(trader: AsyncBallastClient, own: random.Random) -> None:
        resting: list[str] = []
        for _ in range(orders // len(traders)):
            if resting and own.random() < 0.25:
                with contextlib.suppress(BallastError):
                    await trader.cancel_order(resting.pop(own.randrange(len(resting))))
                continue
            side: Any = own.choice(["buy", "sell"])
            size = own.randint(1, 40)
            try:
                if own.random() < 0.1:
                    order = await trader.place_order(market_id, side, "market", size=size)
                else:
                    price = Decimal(own.randint(35, 65)) / 100
                    order = await trader.place_order(market_id, side, price=price, size=size)
            except BallastError:
                continue
            if order.is_open:
                resting.append(order.id)

    await asyncio.gather(*(trade(t, r) for t, r in zip(traders, rngs, strict=True)))
