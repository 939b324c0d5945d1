"""Wrong passwords slow down whoever sends them, never the account's owner elsewhere.

Failures are counted per (client IP, email): after ``free`` of them the pair must wait
``base_s``, doubling with each further failure up to ``max_s``. An attempt is charged as a
failure before its password is checked (so parallel guesses cannot slip past the count) and
forgiven when it succeeds. A pair with no attempt for ``max_s`` starts afresh.

Someone guessing from one address is slowed down to one guess per ``max_s`` without locking
out the owner, who logs in from another. Spraying many accounts from one address is bounded by
the per-IP attempt limit (``routes.LOGIN_LIMIT_PER_IP``, every attempt counts). The counts
live in this process, bounded to ``capacity`` pairs (the least recently tried are forgotten
first).
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 900.0
CAPACITY = 65_536


@dataclass(slots=True)
class _Pair:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginFailures:
    def __init__(
        self,
        *,
        free: int = FREE_FAILURES,
        base_s: float = BACKOFF_BASE_S,
        max_s: float = BACKOFF_MAX_S,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.base_s = base_s
        self.max_s = max_s
        self.capacity = capacity
        self.clock = clock
        self._pairs: OrderedDict[str, _Pair] = OrderedDict()

    @staticmethod
    def key(ip: str, email: str) -> str:
        """The pair's key: the address and a digest of the normalised email."""
        return f"{ip}|{hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]}"

    def charge(self, key: str) -> float | None:
        """Seconds to wait if the pair is backing off; else None, and the attempt is counted
        as a failure until :meth:`succeeded` forgives it."""
        now = self.clock()
        pair = self._pairs.get(key)
        if pair is not None and now - pair.last > self.max_s and now >= pair.locked_until:
            pair = None  # quiet long enough: start afresh
        if pair is None:
            pair = _Pair()
        elif now < pair.locked_until:
            return pair.locked_until - now
        pair.failures += 1
        pair.last = now
        if pair.failures >= self.free:
            delay = self.base_s * 2.0 ** min(pair.failures - self.free, 32)
            pair.locked_until = now + min(self.max_s, delay)
        self._pairs[key] = pair
        self._pairs.move_to_end(key)
        while len(self._pairs) > self.capacity:
            self._pairs.popitem(last=False)
        return None

    def succeeded(self, key: str) -> None:
        self._pairs.pop(key, None)


_BY_SERVER: weakref.WeakKeyDictionary[object, LoginFailures] = weakref.WeakKeyDictionary()


def login_failures(owner: object) -> LoginFailures:
    """The failure counts of one server (``owner``: its exchange)."""
    failures = _BY_SERVER.get(owner)
    if failures is None:
        failures = _BY_SERVER[owner] = LoginFailures()
    return failures
