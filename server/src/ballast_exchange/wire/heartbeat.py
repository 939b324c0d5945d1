"""The dead-man switch as REST and the stream both speak it: a heartbeat in, the deadline out."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic.json_schema import WithJsonSchema

from ..domain import DomainError
from ..service.dead_man import MAX_TIMEOUT_S, MIN_TIMEOUT_S, DeadMan
from .errors import from_domain
from .models import Strict, WholeNumber
from .refs import iso
from .trading import Answer


def _timeout(value: int) -> int:
    if value != 0 and not MIN_TIMEOUT_S <= value <= MAX_TIMEOUT_S:
        raise ValueError(f"must be 0 (disarm) or {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds")
    return value


TimeoutSeconds = Annotated[
    WholeNumber,
    AfterValidator(_timeout),
    WithJsonSchema(
        {
            "type": "integer",
            "anyOf": [{"const": 0}, {"minimum": MIN_TIMEOUT_S, "maximum": MAX_TIMEOUT_S}],
        }
    ),
]


class HeartbeatRequest(Strict):
    timeout_s: TimeoutSeconds = Field(
        description=f"Seconds until the switch fires unless another heartbeat comes "
        f"({MIN_TIMEOUT_S} to {MAX_TIMEOUT_S}); 0 disarms it.",
        examples=[10],
    )


async def heartbeat(dead_man: DeadMan, api_key: str, account_id: str, timeout_s: int) -> Answer:
    """Arm (or disarm, with 0) the key's switch; answer once it is stored."""
    try:
        switch = await dead_man.heartbeat(api_key, account_id, timeout_s)
    except DomainError as error:
        raise from_domain(error) from None
    if switch is None:
        return 200, disarmed_view()
    return 200, {
        "armed": True,
        "timeout_s": switch.timeout_ms // 1000,
        "deadline": iso(switch.deadline),
    }


def disarmed_view() -> dict[str, Any]:
    return {"armed": False, "timeout_s": 0, "deadline": None}
