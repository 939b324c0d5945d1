"""The per-key connection limit across processes: slots in a real Redis (issue 18).

Two slot counters with their own process names stand for two gateway processes; a child
process killed with SIGKILL stands for a crashed one. Then through a real server: its
connections and another process's share one limit of five.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ballast_exchange.access.connection_slots import (
    MemoryConnectionSlots,
    RedisConnectionSlots,
    connection_slots_from_url,
)
from ballast_exchange.access.redis_breaker import RedisBreaker
from tests.live_server import NO_LIMITS, live_server
from tests.services import require_redis
from tests.signed_client import Admin
from tests.stream.stream_client import StreamClient

LIMIT = 5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def prefix() -> str:
    # Unique per test so parallel or repeated runs never share slots.
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
async def raw(redis_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client, to look at what the counters stored (and remove it afterwards)."""
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        async for key in client.scan_iter(f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


def process_slots(url: str, prefix: str, name: str) -> RedisConnectionSlots:
    # A loaded test machine's timeout rather than a server's quarter second.
    return RedisConnectionSlots(url, process=name, key_prefix=prefix, timeout_s=10)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> float:
    """Wait until ``check`` holds; the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("the condition never held")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


# --- two processes on one Redis --------------------------------------------------------------


@pytest.mark.anyio
async def test_two_processes_share_the_limit_and_give_returns_a_slot(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    a = process_slots(redis_url, prefix, "a")
    b = process_slots(redis_url, prefix, "b")
    try:
        assert [await a.take("k", LIMIT) for _ in range(3)] == [True] * 3
        assert [await b.take("k", LIMIT) for _ in range(2)] == [True] * 2
        assert not await a.take("k", LIMIT)
        assert not await b.take("k", LIMIT)
        assert await raw.hgetall(f"{prefix}:slots:k") == {"a": "3", "b": "2"}
        # Another key has its own five.
        assert await b.take("other", LIMIT)

        await a.give("k")
        assert await b.take("k", LIMIT)  # the slot a gave back, taken in the other process
        assert not await a.take("k", LIMIT)
        assert await raw.hgetall(f"{prefix}:slots:k") == {"a": "2", "b": "3"}

        for _ in range(2):
            await a.give("k")
        assert await raw.hgetall(f"{prefix}:slots:k") == {"b": "3"}
    finally:
        await a.close()
        await b.close()
    # Closing gives back everything at once, and the liveness keys go with it.
    assert await raw.keys(f"{prefix}:*") == []


@pytest.mark.anyio
async def test_concurrent_takes_in_two_processes_grant_exactly_the_limit(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    a = process_slots(redis_url, prefix, "a")
    b = process_slots(redis_url, prefix, "b")
    try:
        # A reconnect storm: many connections of one key authenticating at once, here and there.
        granted = await asyncio.gather(*(s.take("k", LIMIT) for s in [a, b] * 10))
        assert sum(granted) == LIMIT
        stored = await raw.hgetall(f"{prefix}:slots:k")
        assert sum(int(count) for count in stored.values()) == LIMIT
        assert stored == {name: str(s.held["k"]) for name, s in (("a", a), ("b", b)) if s.held}
        await asyncio.gather(*(a.give("k") for _ in range(a.held.get("k", 0))))
        left = {"b": str(b.held["k"])} if b.held else {}
        assert await raw.hgetall(f"{prefix}:slots:k") == left
    finally:
        await a.close()
        await b.close()


@pytest.mark.anyio
async def test_slots_of_a_process_whose_liveness_lapses_are_freed(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    a = process_slots(redis_url, prefix, "a")  # never started: nothing refreshes it
    b = process_slots(redis_url, prefix, "b")
    try:
        for _ in range(LIMIT):
            assert await a.take("k", LIMIT)
        assert not await b.take("k", LIMIT)
        await raw.delete(a.alive_key)  # its TTL ran out
        assert [await b.take("k", LIMIT) for _ in range(LIMIT)] == [True] * LIMIT
        # The dead process's field went with the count that found it dead.
        assert await raw.hgetall(f"{prefix}:slots:k") == {"b": str(LIMIT)}

        # It was only stalled: its next refresh finds its liveness lapsed and writes its
        # slots back (the key is over its limit now, until connections close; never under).
        await a.refresh()
        assert await raw.hgetall(f"{prefix}:slots:k") == {"a": str(LIMIT), "b": str(LIMIT)}
        assert not await b.take("k", LIMIT)
    finally:
        await a.close()
        await b.close()


CHILD = """
import asyncio, sys
from ballast_exchange.access.connection_slots import RedisConnectionSlots

async def main() -> None:
    url, prefix, name = sys.argv[1:4]
    slots = RedisConnectionSlots(url, process=name, key_prefix=prefix, liveness_ttl_s=1.0,
                                 timeout_s=10)
    slots.start()
    for _ in range(5):
        assert await slots.take("k", 5)
    print("holding", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.anyio
async def test_a_killed_process_leaks_its_slots_only_until_its_liveness_lapses(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis_url, prefix, "child", stdout=asyncio.subprocess.PIPE
    )
    survivor = process_slots(redis_url, prefix, "survivor")
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
        assert line.strip() == b"holding", line
        # Alive, it keeps its slots well past its one-second TTL: its refresh keeps it alive.
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            assert not await survivor.take("k", LIMIT)
            await asyncio.sleep(0.1)

        os.kill(child.pid, signal.SIGKILL)  # gives nothing back
        await child.wait()
        waited = await eventually(lambda: survivor.take("k", LIMIT))
        assert waited < 3, waited  # a TTL of 1 s, not forever
        assert await raw.hgetall(f"{prefix}:slots:k") == {"survivor": "1"}
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await survivor.close()


# --- Redis away ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_redis_the_limit_holds_per_process() -> None:
    # A closed port: connecting is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    breaker = RedisBreaker()
    slots = RedisConnectionSlots(f"redis://127.0.0.1:{port}/0", breaker)
    try:
        assert [await slots.take("k", LIMIT) for _ in range(LIMIT)] == [True] * LIMIT
        assert not await slots.take("k", LIMIT)
        await slots.give("k")
        assert await slots.take("k", LIMIT)
        assert not breaker.up
    finally:
        await slots.close()


@pytest.mark.anyio
async def test_slots_taken_while_redis_was_away_are_written_when_it_answers(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    now = [0.0]
    breaker = RedisBreaker(retry_interval_s=5, clock=lambda: now[0])
    slots = RedisConnectionSlots(redis_url, breaker, process="a", key_prefix=prefix, timeout_s=10)
    try:
        assert await slots.take("k", LIMIT)
        breaker.failed(ConnectionError("Redis went away"))  # as a failed call opens it
        assert await slots.take("k", LIMIT)  # counted in this process only
        assert await raw.hgetall(f"{prefix}:slots:k") == {"a": "1"}
        now[0] += 5  # the next probe is due, and Redis answers it
        await slots.refresh()
        assert breaker.up
        assert await raw.hgetall(f"{prefix}:slots:k") == {"a": "2"}
    finally:
        await slots.close()


@pytest.mark.anyio
async def test_memory_slots_and_the_choice_by_url() -> None:
    slots = MemoryConnectionSlots()
    assert [await slots.take("k", 2) for _ in range(3)] == [True, True, False]
    await slots.give("k")
    assert await slots.take("k", 2)
    assert isinstance(connection_slots_from_url(None), MemoryConnectionSlots)
    assert isinstance(connection_slots_from_url("memory://"), MemoryConnectionSlots)
    shared = connection_slots_from_url("redis://127.0.0.1:6379/0")
    assert isinstance(shared, RedisConnectionSlots)
    await shared.close()
    with pytest.raises(ValueError):
        connection_slots_from_url("http://127.0.0.1")


# --- through a real server -------------------------------------------------------------------


def test_a_server_and_another_process_share_five_connections_per_key(
    tmp_path: Path, redis_url: str
) -> None:
    with live_server(tmp_path / "var", redis_url=redis_url, **NO_LIMITS) as live:
        admin = Admin(live.api, live.admin_token)
        trader = admin.account("slots", 100)
        slots_key = f"ballast:stream:slots:{trader.api_key}"

        async def connect() -> tuple[StreamClient, dict[str, Any]]:
            client = await StreamClient.connect(live.url)
            return client, await client.auth(trader.api_key, trader.api_secret)

        async def server_field(raw: aioredis.Redis) -> int:
            fields = await raw.hgetall(slots_key)
            others = {name: count for name, count in fields.items() if name != "neighbour"}
            assert len(others) <= 1, fields  # one field: the server's
            return sum(int(count) for count in others.values())

        async def run() -> None:
            raw: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
            neighbour = RedisConnectionSlots(redis_url, process="neighbour", timeout_s=10)
            clients: list[StreamClient] = []
            try:
                # The server alone: five, then the spec's refusal for the sixth.
                for _ in range(LIMIT):
                    client, reply = await connect()
                    assert reply["type"] == "authenticated", reply
                    clients.append(client)
                sixth, reply = await connect()
                assert reply["type"] == "error", reply
                # As the per-process limit answered (test_connections.py), and docs/websocket.md.
                assert reply["status"] == 429, reply
                assert reply["error"]["code"] == "TOO_MANY_CONNECTIONS", reply
                assert await sixth.closed_with() == 4029
                assert await server_field(raw) == LIMIT

                # Another process cannot take one either, until the server gives one back.
                assert not await neighbour.take(trader.api_key, LIMIT)
                for client in clients[2:]:
                    await client.close()
                del clients[2:]
                await eventually(lambda: _equals(server_field(raw), 2))
                for _ in range(3):
                    assert await neighbour.take(trader.api_key, LIMIT)

                # Two here and three there make five: the server refuses the next one.
                third, reply = await connect()
                assert reply["type"] == "error", reply
                assert reply["error"]["code"] == "TOO_MANY_CONNECTIONS"
                assert await third.closed_with() == 4029
                await neighbour.give(trader.api_key)
                again, reply = await connect()
                assert reply["type"] == "authenticated", reply
                clients.append(again)
            finally:
                for client in clients:
                    await client.close()
                await neighbour.close()
                await eventually(lambda: _equals(server_field(raw), 0))
                await raw.aclose()

        asyncio.run(run())
        admin.http.close()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
