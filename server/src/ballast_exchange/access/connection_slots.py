"""Connection slots per API key, counted across every gateway process (the stream's 5 per key).

A key's slots live in one Redis hash, ``ballast:stream:slots:<api_key>``, with one field per
process: how many of the key's connections that process holds. Each process also keeps a
liveness key, ``ballast:stream:alive:<process>``, with a short TTL that it refreshes. Taking a
slot is one script: it sums the fields of live processes only, deletes the fields of dead ones
(a process killed with SIGKILL gives nothing back; its slots free once its liveness lapses), and
grants the slot if the sum is under the limit.

Each process writes its own field as an absolute number, the count it holds by its own
reckoning, under a per-key lock, so a write that failed or was lost (Redis away, liveness
lapsed while the process was stalled) is repaired by the next one; the refresh task re-writes
what may disagree. While Redis is away (``RedisBreaker``), the limit holds per process, as the
rate limits do; the slots taken meanwhile are written to Redis once it answers again.

The script reads other processes' liveness keys, which it cannot declare: standalone Redis (or
one primary), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .redis_breaker import REDIS_TIMEOUT_S, RedisBreaker, redis_client

__all__ = [
    "ConnectionSlots",
    "MemoryConnectionSlots",
    "RedisConnectionSlots",
    "connection_slots_from_url",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "ballast:stream"
LIVENESS_TTL_S = 10.0
# A key's hash outlives a dead process's fields at most this long; live processes re-assert
# theirs (and this expiry) every RESYNC_EVERY refreshes.
HASH_TTL_S = 24 * 3600
RESYNC_EVERY = 60
RESYNC_BATCH = 500


class ConnectionSlots(Protocol):
    """Counts the connections each API key holds, against a limit."""

    async def take(self, api_key: str, limit: int) -> bool:
        """Take a slot for ``api_key`` if it holds fewer than ``limit``; False if not."""
        ...

    async def give(self, api_key: str) -> None:
        """Give back a slot ``take`` granted. Never raises for a backend failure."""
        ...

    def start(self) -> None:
        """Start any background work (on the running loop)."""
        ...

    async def close(self) -> None:
        """Give back every slot still held and stop; the object is not used afterwards."""
        ...


class MemoryConnectionSlots:
    """Per-process counts: right when one process serves the stream (no Redis configured)."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}

    async def take(self, api_key: str, limit: int) -> bool:
        count = self.held.get(api_key, 0)
        if count >= limit:
            return False
        self.held[api_key] = count + 1
        return True

    async def give(self, api_key: str) -> None:
        _give_back(self.held, api_key)

    def start(self) -> None:
        pass

    async def close(self) -> None:
        self.held.clear()


def _give_back(held: dict[str, int], api_key: str) -> int:
    """One fewer slot held for ``api_key``; how many are left."""
    left = held.get(api_key, 0) - 1
    if left > 0:
        held[api_key] = left
        return left
    held.pop(api_key, None)
    return 0


# KEYS[1]: the key's slot hash; KEYS[2]: this process's liveness key.
# ARGV: process, slots it holds for the key now, limit, liveness TTL (ms), hash TTL (s),
# liveness key prefix. Returns {granted, lapsed}: lapsed when this process's liveness had
# expired, so others may have deleted its fields in other hashes too.
_TAKE_SCRIPT = """
local lapsed = redis.call('EXISTS', KEYS[2]) == 0 and 1 or 0
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
local others = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
    local owner = fields[i]
    if owner ~= ARGV[1] then
        if redis.call('EXISTS', ARGV[6] .. owner) == 1 then
            others = others + tonumber(fields[i + 1])
        else
            redis.call('HDEL', KEYS[1], owner)
        end
    end
end
local held = tonumber(ARGV[2])
local granted = 0
if others + held < tonumber(ARGV[3]) then
    held = held + 1
    granted = 1
end
if held > 0 then
    redis.call('HSET', KEYS[1], ARGV[1], held)
    redis.call('EXPIRE', KEYS[1], ARGV[5])
else
    redis.call('HDEL', KEYS[1], ARGV[1])
end
return {granted, lapsed}
"""

# KEYS[1]: this process's liveness key; ARGV[1]: its TTL (ms). Returns 1 if it had lapsed.
_ALIVE_SCRIPT = """
local lapsed = redis.call('EXISTS', KEYS[1]) == 0 and 1 or 0
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return lapsed
"""


def process_name() -> str:
    """Unique per process: host and pid for whoever reads Redis, and a random part because
    containers reuse pids."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RedisConnectionSlots:
    """Slots shared by every process on one Redis, per process while Redis is away."""

    def __init__(
        self,
        url: str,
        breaker: RedisBreaker | None = None,
        *,
        process: str | None = None,
        liveness_ttl_s: float = LIVENESS_TTL_S,
        key_prefix: str = KEY_PREFIX,
        timeout_s: float = REDIS_TIMEOUT_S,
    ) -> None:
        self.redis: aioredis.Redis = redis_client(url, timeout_s)
        self.breaker = breaker if breaker is not None else RedisBreaker()
        self.process = process if process is not None else process_name()
        self.liveness_ttl_s = liveness_ttl_s
        # Three refreshes per TTL: one late or failed refresh does not let the liveness lapse.
        self.refresh_interval_s = liveness_ttl_s / 3
        self.key_prefix = key_prefix
        self.alive_prefix = f"{key_prefix}:alive:"
        self.alive_key = self.alive_prefix + self.process
        self.held: dict[str, int] = {}  # this process's slots per key, however they were taken
        self.dirty: set[str] = set()  # keys whose field in Redis may not match ``held``
        self._resync_all = False
        self._locks: dict[str, _KeyLock] = {}
        self._take = self.redis.register_script(_TAKE_SCRIPT)
        self._alive = self.redis.register_script(_ALIVE_SCRIPT)
        self._refresher: asyncio.Task[None] | None = None

    def slots_key(self, api_key: str) -> str:
        """The hash holding ``api_key``'s slots, one field per process."""
        return f"{self.key_prefix}:slots:{api_key}"

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.liveness_ttl_s * 1000))

    @contextlib.asynccontextmanager
    async def _exclusive(self, api_key: str) -> AsyncIterator[None]:
        """One operation at a time per key in this process, so absolute writes land in order."""
        entry = self._locks.get(api_key)
        if entry is None:
            entry = self._locks[api_key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:  # no lock kept per key ever seen
                del self._locks[api_key]

    async def take(self, api_key: str, limit: int) -> bool:
        async with self._exclusive(api_key):
            held = self.held.get(api_key, 0)
            if self.breaker.allows():
                try:
                    granted, lapsed = await self._take(
                        keys=[self.slots_key(api_key), self.alive_key],
                        args=[
                            self.process,
                            held,
                            limit,
                            self._ttl_ms,
                            HASH_TTL_S,
                            self.alive_prefix,
                        ],
                    )
                except RedisError as error:
                    self.breaker.failed(error)
                    # Whether the script ran is unknown: the field is repaired later.
                else:
                    self.breaker.succeeded()
                    self.dirty.discard(api_key)
                    if lapsed:
                        # Others may have dropped this process's fields as a dead one's.
                        self._resync_all = True
                    if granted:
                        self.held[api_key] = held + 1
                    return bool(granted)
            # Redis away: this process alone keeps the limit until it is back.
            self.dirty.add(api_key)
            if held >= limit:
                return False
            self.held[api_key] = held + 1
            return True

    async def give(self, api_key: str) -> None:
        async with self._exclusive(api_key):
            left = _give_back(self.held, api_key)
            if self.breaker.allows():
                try:
                    await self._write(self.redis.pipeline(transaction=False), api_key, left)
                except RedisError as error:
                    self.breaker.failed(error)
                else:
                    self.breaker.succeeded()
                    self.dirty.discard(api_key)
                    return
            self.dirty.add(api_key)

    async def _write(self, pipe: aioredis.client.Pipeline, api_key: str, held: int) -> None:
        self._queue(pipe, api_key, held)
        await pipe.execute()

    def _queue(self, pipe: aioredis.client.Pipeline, api_key: str, held: int) -> None:
        key = self.slots_key(api_key)
        if held > 0:
            pipe.hset(key, self.process, held)
            pipe.expire(key, HASH_TTL_S)
        else:
            pipe.hdel(key, self.process)

    # ------------------------------------------------------------ liveness

    def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        beats = 0
        while True:
            try:
                await self.refresh(resync=beats % RESYNC_EVERY == RESYNC_EVERY - 1)
            except Exception:  # a failed refresh must not stop the next one
                log.exception("refreshing the stream's connection slots failed")
            beats += 1
            await asyncio.sleep(self.refresh_interval_s)

    async def refresh(self, resync: bool = False) -> None:
        """Keep this process alive in Redis and write the fields that may disagree (every
        held key's when ``resync``, or when the liveness had lapsed)."""
        if not self.breaker.allows():
            return
        try:
            lapsed = await self._alive(keys=[self.alive_key], args=[self._ttl_ms])
        except RedisError as error:
            self.breaker.failed(error)
            return
        self.breaker.succeeded()
        if lapsed:
            self._resync_all = True
        if self._resync_all or resync:
            self._resync_all = False
            keys = set(self.held) | self.dirty
        else:
            keys = set(self.dirty)
        await self._resync(keys)

    async def _resync(self, api_keys: Iterable[str]) -> None:
        pending = [key for key in api_keys if key not in self._locks]
        # A key in use is left dirty: its own operation, or the next refresh, writes it.
        for start in range(0, len(pending), RESYNC_BATCH):
            batch = [key for key in pending[start : start + RESYNC_BATCH] if key not in self._locks]
            async with contextlib.AsyncExitStack() as stack:
                for key in batch:
                    await stack.enter_async_context(self._exclusive(key))
                pipe = self.redis.pipeline(transaction=False)
                for key in batch:
                    self._queue(pipe, key, self.held.get(key, 0))
                try:
                    await pipe.execute()
                except RedisError as error:
                    self.breaker.failed(error)
                    self.dirty.update(batch)
                    return
                self.dirty.difference_update(batch)

    async def close(self) -> None:
        """Stop refreshing and give back whatever this process still holds, at once."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self.breaker.allows():
            pipe = self.redis.pipeline(transaction=False)
            for api_key in set(self.held) | self.dirty:
                pipe.hdel(self.slots_key(api_key), self.process)
            pipe.delete(self.alive_key)
            try:
                await pipe.execute()
            except RedisError as error:
                # Its liveness lapses within the TTL; the fields go with it.
                log.warning("could not give back the stream's connection slots: %s", error)
        self.held.clear()
        self.dirty.clear()
        await self.redis.aclose()


def connection_slots_from_url(
    redis_url: str | None, breaker: RedisBreaker | None = None
) -> ConnectionSlots:
    """Shared through Redis for ``redis://``, ``rediss://`` or ``unix://`` URLs; per process
    without one (or with ``memory://``), as the rate limiter chooses."""
    if not redis_url or redis_url.strip() in ("", "memory://"):
        return MemoryConnectionSlots()
    url = redis_url.strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisConnectionSlots(url, breaker)
    raise ValueError("Redis URL must start with redis://, rediss://, unix:// or memory://")
