"""``POST /v1/account/faucet``: mounted in the sandbox only, so production has no such route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...wire.models import FaucetRequest
from ...wire.money import usdc_to_micro
from ...wire.views import faucet_grant_view
from ..schemas import BODY_ERRORS, PRIVATE_ERRORS, FaucetGrant
from .orders import State, Trader

router = APIRouter(tags=["account"])


@router.post(
    "/account/faucet",
    summary="Sandbox: deposit test USDC (capped per account per UTC day)",
    responses={200: {"model": FaucetGrant}, **PRIVATE_ERRORS, **BODY_ERRORS},
)
async def faucet(principal: Trader, state: State, body: FaucetRequest | None = None) -> Any:
    amount = None
    if body is not None and body.amount is not None:
        amount = usdc_to_micro(body.amount)
    return faucet_grant_view(await state.faucet.drip(principal.account_id, amount))
