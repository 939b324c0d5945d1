"""Order groups (docs/api.md "Order groups"): a contract limit over a rolling window."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ...wire import order_groups as wire
from ...wire.order_groups import CreateOrderGroupRequest
from ..schemas import (
    BODY_ERRORS,
    PRIVATE_ERRORS,
    DeletedOrderGroup,
    OrderGroup,
    OrderGroups,
    errors,
)
from .orders import Reader, State, Trader

router = APIRouter(tags=["trading"])


@router.post(
    "/order_groups",
    status_code=201,
    summary="Create an order group: its orders may fill max_filled_size contracts within a "
    "rolling window; reaching it cancels them and refuses new ones until a reset",
    responses={201: {"model": OrderGroup}, **PRIVATE_ERRORS, **BODY_ERRORS},
)
async def create_order_group(
    body: CreateOrderGroupRequest, principal: Trader, state: State, response: Response
) -> Any:
    status, view = await wire.create(state.order_groups, principal.account_id, body)
    response.status_code = status
    return view


@router.get(
    "/order_groups",
    summary="List the account's order groups, oldest first",
    responses={200: {"model": OrderGroups}, **PRIVATE_ERRORS},
)
async def list_order_groups(principal: Reader, state: State) -> Any:
    _, view = await wire.list_groups(state.order_groups, principal.account_id)
    return view


@router.get(
    "/order_groups/{order_group_id}",
    summary="Get one order group",
    responses={200: {"model": OrderGroup}, **PRIVATE_ERRORS, **errors(404)},
)
async def get_order_group(order_group_id: str, principal: Reader, state: State) -> Any:
    _, view = await wire.get(state.order_groups, principal.account_id, order_group_id)
    return view


@router.post(
    "/order_groups/{order_group_id}/reset",
    summary="Reset an order group: its count starts afresh and it takes orders again",
    responses={200: {"model": OrderGroup}, **PRIVATE_ERRORS, **errors(404)},
)
async def reset_order_group(order_group_id: str, principal: Trader, state: State) -> Any:
    _, view = await wire.reset(state.order_groups, principal.account_id, order_group_id)
    return view


@router.delete(
    "/order_groups/{order_group_id}",
    summary="Delete an order group, canceling its open orders",
    responses={200: {"model": DeletedOrderGroup}, **PRIVATE_ERRORS, **errors(404)},
)
async def delete_order_group(order_group_id: str, principal: Trader, state: State) -> Any:
    _, view = await wire.delete(state.order_groups, principal.account_id, order_group_id)
    return view
