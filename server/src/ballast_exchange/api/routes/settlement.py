"""Settlement: the public record (evidence and hashes) and the operator's propose, overturn and
finalize, which go through ``service.settlement`` like the sandbox's own resolver."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...domain import DomainError, MarketKind
from ...service.settlement import EvidenceError
from ...service.venue import Venue
from ...store import queries
from ...wire.errors import ApiError, invalid_request
from ...wire.models import SettlementProposal
from ...wire.money import usdc_to_micro
from ...wire.refs import iso
from ...wire.usdc import micro_price
from ...wire.views import settlement_view
from ..schemas import ADMIN_ERRORS, BODY_ERRORS, PUBLIC_ERRORS, SettlementRecord, errors
from .admin import Admin
from .public import Public, State

public_router = APIRouter(tags=["markets"])
admin_router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={200: {"model": SettlementRecord}, **ADMIN_ERRORS},
)
OPERATOR = "operator"


async def current_view(state: Venue, market_id: str) -> dict[str, Any]:
    market = state.market(market_id)
    rows = await state.read(queries.list_settlements, market_id)
    return settlement_view(market, rows)


@public_router.get(
    "/markets/{market_id}/settlement",
    summary="The settlement: current proposal, every earlier one, evidence and hashes",
    responses={200: {"model": SettlementRecord}, **PUBLIC_ERRORS, **errors(404)},
)
async def get_settlement(market_id: str, _: Public, state: State) -> Any:
    return await current_view(state, market_id)


@admin_router.post(
    "/markets/{market_id}/settlement/propose",
    summary="Propose a settlement value with its evidence (a JSON object)",
    responses={**BODY_ERRORS, **errors(404, 409)},
)
async def propose(market_id: str, body: SettlementProposal, _: Admin, state: State) -> Any:
    market = state.market(market_id)
    micro = usdc_to_micro(body.value, "value")  # six decimals, like money
    low, high = market.floor * market.tick_value, market.cap * market.tick_value
    if market.kind is MarketKind.INDEX and not low <= micro <= high:
        # The engine would clamp it (the sandbox feed relies on that); an operator's value
        # outside the range is a mistake to be told, not quietly moved to the nearest end.
        raise ApiError(
            "INVALID_SETTLEMENT",
            f"the value {micro_price(micro)} is outside the market's range "
            f"{micro_price(low)} to {micro_price(high)}",
            {
                "market_id": market_id,
                "value": micro_price(micro),
                "floor": micro_price(low),
                "cap": micro_price(high),
            },
        )
    try:
        await state.settlements.propose(market_id, micro, body.evidence, OPERATOR)
    except EvidenceError as error:
        raise invalid_request("evidence", str(error)) from None
    return await current_view(state, market_id)


@admin_router.post(
    "/markets/{market_id}/settlement/overturn",
    summary="Overturn the proposal during its dispute window (the market is closed again)",
    responses=errors(404, 409),
)
async def overturn(market_id: str, _: Admin, state: State) -> Any:
    state.market(market_id)
    await state.settlements.overturn(market_id, OPERATOR)
    return await current_view(state, market_id)


@admin_router.post(
    "/markets/{market_id}/settlement/finalize",
    summary="Finalize the proposal after its dispute window and book the payouts",
    responses=errors(404, 409),
)
async def finalize(market_id: str, _: Admin, state: State) -> Any:
    state.market(market_id)
    try:
        await state.settlements.finalize(market_id)
    except DomainError as error:
        if "final_after" not in error.details:
            raise
        raise ApiError(
            error.code,
            "the dispute window is still open; it can be finalized from dispute_ends_at",
            {"market_id": market_id, "dispute_ends_at": iso(error.details["final_after"])},
        ) from None
    return await current_view(state, market_id)
