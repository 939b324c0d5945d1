"""FastAPI's way to the venue: the one object REST and the dashboard handlers are given."""

from __future__ import annotations

from fastapi import Request

from ..service.venue import Venue


async def current_venue(request: Request) -> Venue:
    venue: Venue = request.app.state.ballast
    return venue
