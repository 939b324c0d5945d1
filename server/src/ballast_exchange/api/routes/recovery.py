"""The operator's snapshot and audit endpoints under /v1/admin (``ballast admin snapshot``,
``ballast admin verify``; docs/operations.md "Snapshots and the journal")."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ...service.snapshotter import SnapshotFailed, Snapshotter
from ...service.venue import Venue
from ...store import snapshots as snapshot_store
from ...wire.dependencies import current_venue
from ...wire.errors import ApiError
from ..schemas import ADMIN_ERRORS
from .admin import Admin

router = APIRouter(prefix="/admin", tags=["admin"], responses=ADMIN_ERRORS)
State = Annotated[Venue, Depends(current_venue)]


def snapshotter(request: Request) -> Snapshotter:
    found: Snapshotter | None = request.app.state.ballast_snapshotter
    if found is None:  # a gateway: the engine whose state is stored is the sequencer's
        raise ApiError(
            "SERVICE_UNAVAILABLE", "this server is a gateway: ask the sequencer's address", {}
        )
    return found


Taker = Annotated[Snapshotter, Depends(snapshotter)]


@router.post("/snapshots", status_code=201, summary="Take an engine snapshot now")
async def take_snapshot(_: Admin, taker: Taker) -> Any:
    """Snapshot the engine now, off the path of orders; answers once it is stored."""
    try:
        taken = await taker.take()
    except SnapshotFailed as error:
        raise ApiError("SERVICE_UNAVAILABLE", f"the snapshot failed: {error}", {}) from None
    return {"snapshot": taken.describe()}


@router.get("/snapshots", summary="The stored engine snapshots and the last recovery")
async def list_snapshots(_: Admin, state: State, taker: Taker) -> Any:
    exchange = state.exchange
    rows = await state.read(snapshot_store.listed)
    return {
        "command_no": exchange.command_no,
        "snapshots": [asdict(row) for row in rows],
        "recovery": exchange.recovery.describe(),
        "last": None if taker.last is None else taker.last.describe(),
    }


@router.get("/state-digest", summary="The digest of the live engine state")
async def state_digest(_: Admin, state: State, taker: Taker) -> Any:
    """The digest a replay of the journal through ``command_no`` must reproduce
    (``domain.snapshot_codec.state_digest``), computed off the path of orders."""
    try:
        command_no, digest = await taker.live_digest()
    except SnapshotFailed as error:
        raise ApiError("SERVICE_UNAVAILABLE", f"the digest failed: {error}", {}) from None
    return {
        "command_no": command_no,
        "digest": digest,
        "engine": state.reads.engine_name,
    }
