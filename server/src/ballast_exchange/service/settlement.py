"""Settlement as the venue runs it: evidence is stored under the SHA-256 of its canonical form,
then the engine's commands propose, overturn and finalize.

The evidence is written before the proposal is journaled, so a published hash always has its
evidence beside it, whatever crashes in between (a rejected proposal leaves harmless evidence).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import rfc8785
from sqlalchemy import Engine as SqlEngine

from ..domain import MarketStatus
from ..domain import commands as c
from ..store.database import begin_write
from ..store.records import put_evidence
from .exchange import Exchange


class EvidenceError(ValueError):
    """The evidence is not a JSON object that has one canonical form."""


def canonical_evidence(evidence: Any) -> bytes:
    """RFC 8785 (JCS): sorted keys, no whitespace, ECMAScript numbers, UTF-8."""
    if not isinstance(evidence, dict):
        raise EvidenceError("evidence must be a JSON object")
    try:
        return rfc8785.dumps(evidence)
    except rfc8785.CanonicalizationError as error:
        raise EvidenceError(f"evidence has no canonical form: {error}") from None


def evidence_hash(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


class Settlements:
    def __init__(self, exchange: Exchange, sql: SqlEngine, dispute_window_ms: int) -> None:
        self.exchange = exchange
        self.sql = sql
        self.dispute_window_ms = dispute_window_ms

    async def propose(self, market_id: str, value: int, evidence: Any, proposer: str) -> str:
        """Publish ``value`` (micro price units) with the hash of ``evidence``; returns it."""
        canonical = canonical_evidence(evidence)
        digest = evidence_hash(canonical)
        now = self.exchange.clock()
        await asyncio.to_thread(self._store, digest, canonical.decode("utf-8"), now)
        window = self.dispute_window_ms
        await self.exchange.submit(
            lambda t: c.ProposeSettlement(t, market_id, value, digest, proposer, window)
        )
        return digest

    async def overturn(self, market_id: str, by: str) -> None:
        await self.exchange.submit(lambda t: c.OverturnSettlement(t, market_id, by))

    async def finalize(self, market_id: str) -> None:
        await self.exchange.submit(lambda t: c.FinalizeSettlement(t, market_id))

    def due(self, now: int) -> list[str]:
        """Markets whose proposal is past its dispute window, ready to be finalized."""
        return [
            market.market_id
            for market in self.exchange.engine.markets.values()
            if market.status is MarketStatus.RESOLVING
            and market.settlement is not None
            and market.settlement.final_after <= now
        ]

    def _store(self, digest: str, body: str, now: int) -> None:
        with begin_write(self.sql) as conn:
            put_evidence(conn, digest, body, now)
