"""The people behind the dashboard: sign-up, password checks and browser sessions.

- A user is an email (normalised: trimmed, lower case) and a password, of which only the
  argon2id hash is kept; signing up creates the user's trading account through the engine
  and, in the sandbox, funds it from the faucet.
- A session is a random token in an HTTP-only cookie. The store keeps only the token's SHA-256
  (a leaked database does not log anybody in), with the session's own CSRF token and an
  absolute expiry. Logout deletes the row.
- Hashing and verifying passwords take tens of milliseconds of CPU and ~19 MiB by design
  (argon2id at OWASP's m=19 MiB, t=2, p=1), so they run off the event loop on a few threads
  of their own (``password_hash_concurrency``, default half the CPUs): however many logins
  arrive at once, at most that many hashes hold memory or CPU, and the matching engine keeps
  the rest of the machine. Hashes made with other parameters (the earlier m=64 MiB, t=3, p=4)
  still verify, and are rehashed with the current ones at the next login. Checking a login
  for an unknown email does the same work as for a known one, so timing does not tell which
  emails exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError

from ..domain import DomainError, commands
from ..service.venue import Venue
from ..store import records
from ..store import users as store
from ..wire.errors import ApiError, invalid_request

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_TTL_MS = 12 * 3_600_000  # absolute: a session ends 12 hours after login
PASSWORD_MIN = 10
PASSWORD_MAX = 1_024
EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

# argon2id with OWASP's first recommended profile (Password Storage Cheat Sheet): 19 MiB,
# two passes, one lane. Costs 20-40 ms of one core; RFC 9106's m=64 MiB, p=4 took 64 MiB and
# four cores per login, which a burst of logins turned into gigabytes.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH: list[str] = []


class PasswordHashing:
    """Where one server's argon2 work runs: a thread pool of ``workers`` threads of its own.

    The pool is the bound on concurrent hashing: further calls queue (as coroutines, costing
    nothing) until a thread is free. Its own threads, rather than the shared pool's forty, also
    bound the memory the C allocator keeps after a hash: one hash's worth per thread at most.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_HASHING: weakref.WeakKeyDictionary[object, PasswordHashing] = weakref.WeakKeyDictionary()


def hashing(state: Venue) -> PasswordHashing:
    """The server's hashing pool (one per exchange, made on first use)."""
    pool = _HASHING.get(state.exchange)
    if pool is None:
        pool = PasswordHashing(state.settings.password_hash_concurrency)
        _HASHING[state.exchange] = pool
        weakref.finalize(state.exchange, pool.close)
    return pool


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    email: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user_id: str
    email: str
    account_id: str
    csrf_token: str
    expires_at: int

    @property
    def user(self) -> User:
        return User(self.user_id, self.email, self.account_id)


def normalize_email(email: str) -> str:
    """The stored form of an email; ``INVALID_REQUEST`` for something that is not one."""
    value = email.strip().lower()
    if len(value) > EMAIL_MAX or not _EMAIL.match(value):
        raise invalid_request("email", "enter a valid email address")
    return value


def check_new_password(password: str, email: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise invalid_request("password", f"use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise invalid_request("password", f"use at most {PASSWORD_MAX} characters")
    if password.strip().lower() == email:
        raise invalid_request("password", "the password must not be the email address")


def hash_token(token: str) -> str:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _burn(password: str) -> None:
    """The work of a real check, for an email nobody signed up with."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(HASHER.hash(secrets.token_urlsafe(16)))
    _verify(_DUMMY_HASH[0], password)


async def sign_up(state: Venue, email: str, password: str) -> User:
    """Create a user with a new trading account (funded by the faucet in the sandbox)."""
    email = normalize_email(email)
    check_new_password(password, email)
    taken = ApiError(
        "ACCOUNT_EXISTS", "an account with this email already exists", {"field": "email"}
    )
    if await state.read(store.get_user_by_email, email) is not None:
        raise taken
    password_hash = await hashing(state).run(HASHER.hash, password)
    account_id = f"acc_{secrets.token_hex(8)}"
    await state.exchange.submit(lambda now: commands.CreateAccount(now, account_id))
    await state.write(records.set_account_name, account_id, email)
    user = User(f"usr_{secrets.token_hex(8)}", email, account_id)
    try:
        await state.write(
            store.insert_user,
            user_id=user.user_id,
            email=email,
            password_hash=password_hash,
            account_id=account_id,
            created_at=state.exchange.clock(),
        )
    except IntegrityError:  # the same email signed up a moment ago
        raise taken from None
    if state.settings.env == "sandbox":
        try:
            await state.faucet.drip(account_id)
        except DomainError as error:  # an unfunded account still works: the user may retry
            log.warning("faucet drip for a new dashboard user failed: %s", error.code)
    return user


async def check_password(state: Venue, email: str, password: str) -> User | None:
    """The user these credentials belong to, or None."""
    try:
        email = normalize_email(email)
    except ApiError:
        await hashing(state).run(_burn, password)
        return None
    row: dict[str, Any] | None = await state.read(store.get_user_by_email, email)
    if row is None:
        await hashing(state).run(_burn, password)
        return None
    if not await hashing(state).run(_verify, row["password_hash"], password):
        return None
    if HASHER.check_needs_rehash(row["password_hash"]):
        rehashed = await hashing(state).run(HASHER.hash, password)
        await state.write(store.set_password_hash, row["user_id"], rehashed)
    return User(row["user_id"], row["email"], row["account_id"])


async def open_session(state: Venue, user: User) -> tuple[str, Session]:
    """A new session for ``user``: the token for the cookie (never stored) and the session."""
    token = secrets.token_urlsafe(32)
    now = state.exchange.clock()
    session = Session(
        hash_token(token),
        user.user_id,
        user.email,
        user.account_id,
        secrets.token_urlsafe(32),
        now + SESSION_TTL_MS,
    )

    def write(conn: Any) -> None:
        store.delete_expired_sessions(conn, now)
        store.insert_session(
            conn,
            token_hash=session.token_hash,
            user_id=user.user_id,
            csrf_token=session.csrf_token,
            created_at=now,
            expires_at=session.expires_at,
        )

    await state.write(write)
    return token, session


async def find_session(state: Venue, token: str) -> Session | None:
    """The live session of a cookie's token, or None (unknown, logged out or expired)."""
    if not token or len(token) > 128:
        return None
    row = await state.read(store.get_session, hash_token(token), state.exchange.clock())
    if row is None:
        return None
    return Session(
        row["token_hash"],
        row["user_id"],
        row["email"],
        row["account_id"],
        row["csrf_token"],
        row["expires_at"],
    )


async def close_session(state: Venue, session: Session) -> None:
    await state.write(store.delete_session, session.token_hash)
