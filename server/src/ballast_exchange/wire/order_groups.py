"""Order groups as REST and the stream both speak them: requests in, group views out."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt

from ..domain import DomainError
from ..domain.state import MAX_SIZE
from ..service.order_groups import (
    DEFAULT_WINDOW_S,
    MAX_WINDOW_S,
    MIN_WINDOW_S,
    GroupState,
    OrderGroups,
)
from ..store.order_groups import GroupTrigger
from .errors import from_domain
from .models import Strict, _whole
from .refs import iso, order_ref
from .trading import Answer

ContractLimit = Annotated[StrictInt, Field(gt=0, le=MAX_SIZE), BeforeValidator(_whole)]
WindowSeconds = Annotated[
    StrictInt, Field(ge=MIN_WINDOW_S, le=MAX_WINDOW_S), BeforeValidator(_whole)
]


class CreateOrderGroupRequest(Strict):
    max_filled_size: ContractLimit = Field(
        description="Contracts the group's orders may fill within the window; reaching it "
        "triggers the group.",
        examples=[100],
    )
    window_s: WindowSeconds = Field(
        default=DEFAULT_WINDOW_S,
        description=f"The rolling window in seconds ({MIN_WINDOW_S} to {MAX_WINDOW_S}).",
        examples=[DEFAULT_WINDOW_S],
    )


class OrderGroupRef(Strict):
    order_group_id: str = Field(min_length=1, max_length=64, examples=["grp_3f9a1c2b7d4e5f60"])


def group_view(state: GroupState) -> dict[str, Any]:
    record = state.record
    return {
        "order_group_id": record.group_id,
        "status": record.status,
        "max_filled_size": record.max_filled_size,
        "window_s": record.window_ms // 1000,
        "filled_in_window": state.filled_in_window,
        "open_orders": state.open_orders,
        "created_at": iso(record.created_at),
        "triggered_at": iso(record.triggered_at),
        "reset_at": iso(record.reset_at),
    }


def triggered_view(trigger: GroupTrigger) -> dict[str, Any]:
    """A trigger as the stream announces it: the group then (its open orders are canceled by
    the commands that follow)."""
    return {**group_view(GroupState(trigger.group, trigger.filled, 0)), "event": "triggered"}


async def create(groups: OrderGroups, account_id: str, body: CreateOrderGroupRequest) -> Answer:
    try:
        state = await groups.create(account_id, body.max_filled_size, body.window_s)
    except DomainError as error:
        raise from_domain(error) from None
    return 201, group_view(state)


async def list_groups(groups: OrderGroups, account_id: str) -> Answer:
    states = await groups.states_of(account_id)
    return 200, {"order_groups": [group_view(state) for state in states]}


async def get(groups: OrderGroups, account_id: str, group_id: str) -> Answer:
    try:
        state = await groups.state_of(account_id, group_id)
    except DomainError as error:
        raise from_domain(error) from None
    return 200, group_view(state)


async def reset(groups: OrderGroups, account_id: str, group_id: str) -> Answer:
    try:
        state = await groups.reset(account_id, group_id)
    except DomainError as error:
        raise from_domain(error) from None
    return 200, group_view(state)


async def delete(groups: OrderGroups, account_id: str, group_id: str) -> Answer:
    try:
        deleted = await groups.delete(account_id, group_id)
    except DomainError as error:
        raise from_domain(error) from None
    canceled = [order_ref(order_id) for order_id in deleted.canceled]
    return 200, {
        "order_group_id": deleted.group_id,
        "deleted": True,
        "canceled": canceled,
        "count": len(canceled),
    }
