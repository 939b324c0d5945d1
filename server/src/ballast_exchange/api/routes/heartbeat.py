"""The dead-man switch (docs/api.md "Dead-man switch"): heartbeat, or have your orders canceled."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...wire.heartbeat import HeartbeatRequest, heartbeat
from ..schemas import BODY_ERRORS, PRIVATE_ERRORS, Heartbeat
from .orders import State, Trader

router = APIRouter(tags=["trading"])


@router.post(
    "/heartbeat",
    summary="Arm or feed the dead-man switch: without a heartbeat before the deadline, "
    "every open order of the account is canceled",
    responses={200: {"model": Heartbeat}, **PRIVATE_ERRORS, **BODY_ERRORS},
)
async def post_heartbeat(body: HeartbeatRequest, principal: Trader, state: State) -> Any:
    _, view = await heartbeat(
        state.dead_man, principal.api_key, principal.account_id, body.timeout_s
    )
    return view


@router.delete(
    "/heartbeat",
    summary="Disarm the dead-man switch of this API key",
    responses={200: {"model": Heartbeat}, **PRIVATE_ERRORS},
)
async def delete_heartbeat(principal: Trader, state: State) -> Any:
    _, view = await heartbeat(state.dead_man, principal.api_key, principal.account_id, 0)
    return view
