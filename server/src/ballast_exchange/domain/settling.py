"""Settlement commands: propose a value with its evidence hash, overturn it, finalize, pay out."""

from __future__ import annotations

from . import commands as cmd
from .errors import DomainError, ErrorCode, invalid
from .events import (
    PositionChanged,
    SettlementFinalized,
    SettlementOverturned,
    SettlementProposed,
)
from .ledger import (
    cash_key,
    clearing_key,
)
from .market import Settlement
from .state import EngineState, is_int
from .types import (
    MarketKind,
    MarketStatus,
)


class Settling(EngineState):
    def _propose_settlement(self, c: cmd.ProposeSettlement) -> None:
        market = self.market(c.market_id)
        if market.status is not MarketStatus.CLOSED:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "a settlement is proposed for a closed market",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        if not is_int(c.value):
            raise DomainError(
                ErrorCode.INVALID_SETTLEMENT,
                "the settlement value must be an integer of micro price units",
                {"value": c.value},
            )
        if not isinstance(c.evidence_hash, str) or len(c.evidence_hash) != 64:
            raise invalid("evidence_hash", "must be the hex SHA-256 of the canonical evidence")
        if not isinstance(c.proposer, str) or not c.proposer:
            raise invalid("proposer", "must name who proposes")
        if not is_int(c.dispute_window) or c.dispute_window < 0:
            raise invalid("dispute_window", "must be a whole number of milliseconds, at least 0")
        low = market.floor * market.tick_value
        high = market.cap * market.tick_value
        if market.kind is MarketKind.BINARY:
            if c.value not in (low, high):
                raise DomainError(
                    ErrorCode.INVALID_SETTLEMENT,
                    "a binary market settles to exactly 0 or 1",
                    {"value": c.value},
                )
            value = c.value
        else:
            value = min(max(c.value, low), high)
        self._set_status(market, MarketStatus.RESOLVING, c.time)
        final_after = c.time + c.dispute_window
        market.settlement = Settlement(value, c.evidence_hash, c.proposer, c.time, final_after)
        self.seq += 1
        self._out.append(
            SettlementProposed(
                self.seq,
                c.time,
                market.market_id,
                value,
                c.evidence_hash,
                c.proposer,
                final_after,
            )
        )

    def _overturn_settlement(self, c: cmd.OverturnSettlement) -> None:
        market = self.market(c.market_id)
        if market.status is not MarketStatus.RESOLVING or market.settlement is None:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "only a proposed settlement can be overturned",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        if not isinstance(c.by, str) or not c.by:
            raise invalid("by", "must name who overturns")
        settlement = market.settlement
        market.settlement = None
        self._set_status(market, MarketStatus.CLOSED, c.time)
        self.seq += 1
        self._out.append(
            SettlementOverturned(
                self.seq,
                c.time,
                market.market_id,
                settlement.value,
                settlement.evidence_hash,
                c.by,
            )
        )

    def _finalize_settlement(self, c: cmd.FinalizeSettlement) -> None:
        market = self.market(c.market_id)
        settlement = market.settlement
        if market.status is not MarketStatus.RESOLVING or settlement is None:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "only a proposed settlement can be finalized",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        if c.time < settlement.final_after:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "the dispute window is still open",
                {"market_id": market.market_id, "final_after": settlement.final_after},
            )
        value = settlement.value
        long_value = value - market.floor * market.tick_value
        short_value = market.cap * market.tick_value - value
        clearing = clearing_key(market.market_id)
        ref = f"settle:{market.market_id}"
        total = 0
        for position in market.positions.values():
            size = position.size
            if size == 0:
                continue
            payout = long_value * size if size > 0 else short_value * -size
            cash = cash_key(position.account_id)
            if position.collateral:
                self._move(
                    position.collateral_key, cash, position.collateral, "settlement", ref, c.time
                )
            pnl = payout - position.collateral
            if pnl > 0:
                self._move(clearing, cash, pnl, "settlement_pnl", ref, c.time)
            elif pnl < 0:
                self._move(cash, clearing, -pnl, "settlement_pnl", ref, c.time)
            position.realized_pnl += pnl
            position.collateral = 0
            position.size = 0
            total += payout
            self.seq += 1
            self._out.append(
                PositionChanged(
                    self.seq,
                    c.time,
                    position.account_id,
                    market.market_id,
                    0,
                    0,
                    position.realized_pnl,
                )
            )
        market.open_interest = 0
        self._set_status(market, MarketStatus.SETTLED, c.time)
        self.seq += 1
        self._out.append(
            SettlementFinalized(
                self.seq, c.time, market.market_id, value, settlement.evidence_hash, total
            )
        )
