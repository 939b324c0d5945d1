"""A gateway's read index (service/gateway.FreshRead): every caller's read begins after the
call, and callers that came while one read was pending share the next."""

from __future__ import annotations

import asyncio
import threading
import time

from ballast_exchange.service.gateway import FreshRead


def test_concurrent_callers_share_one_read_begun_after_them() -> None:
    reads: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def query() -> int:
        with lock:
            reads.append(len(reads) + 1)
            number = reads[-1]
        if number == 1:
            release.wait(10)  # the first read stays pending while the others come
        else:
            time.sleep(0.01)
        return number

    async def run() -> list[int]:
        fresh = FreshRead(query)
        first = asyncio.ensure_future(fresh())
        while not reads:  # the first read has begun
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(fresh()) for _ in range(9)]
        await asyncio.sleep(0.01)
        release.set()
        return [await first, *[await task for task in later]]

    answers = asyncio.run(run())
    # The first caller got the first read; the nine that came while it was pending did not
    # (it began before them) and shared the second: two queries for ten callers.
    assert answers == [1] + [2] * 9
    assert reads == [1, 2]


def test_a_failed_read_fails_its_callers_and_the_next_one_is_tried_again() -> None:
    outcomes = iter([RuntimeError("database away"), 7])

    def query() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def run() -> tuple[str, int]:
        fresh = FreshRead(query)
        try:
            await fresh()
        except RuntimeError as error:
            failed = str(error)
        return failed, await fresh()

    assert asyncio.run(run()) == ("database away", 7)
