"""Times on the wire: ISO-8601 (dates or times) or Unix milliseconds, to integer milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Query

from ..domain.state import MAX_TIME_MS
from .errors import invalid_request


def to_ms(value: datetime | int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return _bounded(value, field)
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return _bounded(int(moment.timestamp() * 1000), field)


def _bounded(ms: int, field: str) -> int:
    if not 0 <= ms <= MAX_TIME_MS:
        raise invalid_request(field, f"{field} must lie between 1970 and the year 9999")
    return ms


# A time in a query: what the document admits, parse_time_param reads.
TIME_PARAM_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^[0-9]{1,14}$"},
        {"type": "null"},
    ],
    "description": "A date (2025-03-01), an ISO-8601 time, or Unix milliseconds.",
}
TimeParam = Annotated[str | None, Query(json_schema_extra=TIME_PARAM_SCHEMA)]


def parse_time_param(value: str | None, field: str, *, end: bool = False) -> int | None:
    """A query parameter: a date (whole day; ``end`` takes its last millisecond), an ISO-8601
    time, or Unix milliseconds. A filter before 1970 or after 9999 is clamped to those ends:
    it asks for everything from (or until) then."""
    if value is None or value == "":
        return None
    shapes = f"{field} must be a date (2025-03-01), an ISO-8601 time or Unix milliseconds"
    if not value.isascii():  # fromisoformat and isdigit would take other scripts' digits
        raise invalid_request(field, shapes)
    if value.isdigit():
        return min(int(value), MAX_TIME_MS) if len(value) < 20 else MAX_TIME_MS
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
            ms = start + 86_400_000 - 1 if end else start
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise invalid_request(field, shapes) from None
    return min(max(ms, 0), MAX_TIME_MS)
