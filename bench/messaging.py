"""Messaging between gateways and the sequencer (issue 18): the latency each hop would add.

    .venv/bin/python bench/messaging.py                 # NATS and Redis on 127.0.0.1
    .venv/bin/python bench/messaging.py --requests 5000 --concurrency 32

A gateway forwards each command to the sequencer and waits for its answer; the sequencer
publishes each committed batch's events to every gateway. Measured here with a ~300-byte
command and answer (an order placement's size), the responder in another process (as the
sequencer would be), on the services this machine runs:

- **NATS request/reply** (core NATS: ``request`` to a subject one responder subscribes to).
- **Redis Streams request/reply**: the gateway ``XADD``s to the command stream, the responder
  reads it with ``XREAD BLOCK`` and ``XADD``s the answer to the gateway's own stream, which
  the gateway reads with ``XREAD BLOCK``.
- **Publishing committed events durably**: a JetStream publish (acknowledged once stored) and a
  Redis ``XADD``.

One at a time (latency, p50/p99) and ``--concurrency`` at once (throughput). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import redis.asyncio as aioredis

NATS_URL = os.environ.get("BALLAST_BENCH_NATS", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("BALLAST_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SUBJECT = "ballast.bench.commands"
COMMANDS = "ballast:bench:commands"
PAYLOAD = json.dumps(
    {
        "op": "place_order",
        "idempotency_key": "k" * 32,
        "account_id": "acc_0123456789abcdef",
        "params": {"market_id": "suez-open-apr", "side": "buy", "price": "0.355", "size": 10},
        "client_order_id": "desk-7-000001",
        "received_at": 1_800_000_000_000,
    }
).encode()


def nats_responder(ready: Any) -> None:
    async def run() -> None:
        nc = await nats.connect(NATS_URL)

        async def answer(msg: Any) -> None:
            await msg.respond(msg.data)

        await nc.subscribe(SUBJECT, cb=answer)
        await nc.flush()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(run())


def redis_responder(ready: Any) -> None:
    async def run() -> None:
        r = aioredis.from_url(REDIS_URL)
        last = "$"
        ready.set()
        while True:
            found = await r.xread({COMMANDS: last}, block=1000, count=100)
            answers = r.pipeline(transaction=False)  # one round trip for what one read brought
            for _, entries in found:
                for entry_id, fields in entries:
                    last = entry_id
                    answers.xadd(fields[b"reply_to"], {b"data": fields[b"data"]}, maxlen=10_000)
            await answers.execute()

    asyncio.run(run())


async def measure(
    call: Callable[[], Awaitable[None]], requests: int, concurrency: int
) -> dict[str, Any]:
    for _ in range(200):  # warm up
        await call()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - started)
    timings.sort()
    started = time.perf_counter()
    per_task = requests // concurrency

    async def worker() -> None:
        for _ in range(per_task):
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "p50_us": round(statistics.median(timings) * 1e6, 1),
        "p99_us": round(timings[int(len(timings) * 0.99)] * 1e6, 1),
        "per_s_at_concurrency": round(per_task * concurrency / elapsed),
    }


async def nats_request_reply(args: argparse.Namespace) -> dict[str, Any]:
    nc = await nats.connect(NATS_URL)
    try:

        async def call() -> None:
            await nc.request(SUBJECT, PAYLOAD, timeout=5)

        return await measure(call, args.requests, args.concurrency)
    finally:
        await nc.close()


async def redis_request_reply(args: argparse.Namespace) -> dict[str, Any]:
    r = aioredis.from_url(REDIS_URL)
    lock = asyncio.Lock()
    replies = f"ballast:bench:replies:{os.getpid()}"
    waiting: dict[bytes, asyncio.Future[None]] = {}
    counter = 0
    last = "$"

    async def reader() -> None:
        nonlocal last
        while True:
            found = await r.xread({replies: last}, block=1000, count=100)
            for _, entries in found:
                for entry_id, fields in entries:
                    last = entry_id
                    future = waiting.pop(fields[b"data"][:12], None)
                    if future is not None and not future.done():
                        future.set_result(None)

    async def call() -> None:
        nonlocal counter
        async with lock:
            counter += 1
            key = f"{counter:012d}".encode()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting[key] = future
        await r.xadd(COMMANDS, {b"data": key + PAYLOAD, b"reply_to": replies}, maxlen=10_000)
        await asyncio.wait_for(future, 5)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.1)
    try:
        return await measure(call, args.requests, args.concurrency)
    finally:
        task.cancel()
        await r.delete(replies)
        await r.aclose()


async def durable_publish(args: argparse.Namespace) -> dict[str, Any]:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    stream = f"BALLAST_BENCH_{os.getpid()}"
    await js.add_stream(name=stream, subjects=[f"ballast.bench.events.{os.getpid()}"])
    r = aioredis.from_url(REDIS_URL)
    key = f"ballast:bench:events:{os.getpid()}"
    try:

        async def jetstream() -> None:
            await js.publish(f"ballast.bench.events.{os.getpid()}", PAYLOAD)

        async def xadd() -> None:
            await r.xadd(key, {b"data": PAYLOAD}, maxlen=100_000)

        return {
            "jetstream_publish": await measure(jetstream, args.requests, args.concurrency),
            "redis_xadd": await measure(xadd, args.requests, args.concurrency),
        }
    finally:
        await js.delete_stream(stream)
        await nc.close()
        await r.delete(key)
        await r.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    result: dict[str, Any] = {"payload_bytes": len(PAYLOAD)}
    for name, target, bench in (
        ("nats_request_reply", nats_responder, nats_request_reply),
        ("redis_streams_request_reply", redis_responder, redis_request_reply),
    ):
        ready = ctx.Event()
        responder = ctx.Process(target=target, args=(ready,), daemon=True)
        responder.start()
        try:
            ready.wait(30)
            result[name] = asyncio.run(bench(args))
        finally:
            responder.terminate()
            responder.join()
    result.update(asyncio.run(durable_publish(args)))
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
