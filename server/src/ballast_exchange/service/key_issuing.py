"""Issuing and revoking API keys: for the operator's API, the account dashboard and the demo."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..access.key_ring import KeyRecord, KeyRing
from ..access.keys import SecretBox, new_api_key, parse_scopes
from ..access.replay import ReplayCache
from ..domain import DomainError
from ..store import records as store_writes
from .exchange import Exchange
from .reads import Reads


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key with its secret: the only time the secret is ever shown."""

    api_key: str
    api_secret: str
    account_id: str
    scopes: tuple[str, ...]
    label: str | None
    tier: str | None
    created_at: int


class KeyIssuing:
    def __init__(
        self,
        env: str,
        exchange: Exchange,
        reads: Reads,
        keys: KeyRing,
        secrets: SecretBox,
        replays: ReplayCache,
    ) -> None:
        self.env = env
        self.exchange = exchange
        self.reads = reads
        self.keys = keys
        self.secrets = secrets
        self.replays = replays
        #: Tells the venue's other processes (gateways, the sequencer) to reload a key that
        #: was issued or revoked here (docs/adr/0025); None in the one-process server.
        self.announce: Callable[[str], Awaitable[None]] | None = None

    async def issue(
        self, account_id: str, scopes: list[str], label: str | None, tier: str | None
    ) -> IssuedKey:
        self.reads.require_account(account_id)
        try:
            scope_set = parse_scopes(scopes)
        except ValueError as error:
            raise DomainError("INVALID_REQUEST", str(error), {"field": "scopes"}) from None
        api_key, secret = new_api_key(self.env)
        now = self.exchange.clock()
        await self.reads.write(
            store_writes.insert_api_key,
            api_key=api_key,
            account_id=account_id,
            secret_encrypted=self.secrets.encrypt(secret),
            scopes=",".join(sorted(scope_set)),
            tier=tier,
            label=label or "",
            created_at=now,
        )
        self.keys.put(KeyRecord(api_key, account_id, secret, scope_set, tier))
        if self.announce is not None:
            await self.announce(api_key)
        return IssuedKey(api_key, secret, account_id, tuple(sorted(scope_set)), label, tier, now)

    async def set_tier(self, api_key: str, tier: str | None) -> None:
        """A key's rate-limit tier, for every process of the venue."""
        found = await self.reads.write(store_writes.set_api_key_tier, api_key, tier)
        if not found:
            raise DomainError("KEY_NOT_FOUND", f"no API key {api_key!r}", {"api_key": api_key})
        self.keys.set_tier(api_key, tier)
        if self.announce is not None:
            await self.announce(api_key)

    async def revoke(self, api_key: str) -> None:
        """Revoke at once: the next request with this key is refused."""
        found = await self.reads.write(store_writes.revoke_api_key, api_key, self.exchange.clock())
        if not found:
            raise DomainError("KEY_NOT_FOUND", f"no API key {api_key!r}", {"api_key": api_key})
        self.keys.revoke(api_key)
        # In the shared cache before the answer: every gateway refuses the key's next request.
        await self.replays.revoke(api_key)
        if self.announce is not None:
            await self.announce(api_key)
