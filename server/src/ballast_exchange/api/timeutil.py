"""Times on the wire: ISO-8601 (dates or times) or Unix milliseconds, to integer milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime

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


def parse_time_param(value: str | None, field: str, *, end: bool = False) -> int | None:
    """A query parameter: a date (whole day; ``end`` takes its last millisecond), an ISO-8601
    time, or Unix milliseconds."""
    if value is None or value == "":
        return None
    if value.isdigit():
        return _bounded(int(value), field) if len(value) < 20 else _bounded(-1, field)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
            return start + 86_400_000 - 1 if end else start
        return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")), field)
    except ValueError:
        raise invalid_request(
            field, f"{field} must be a date (2025-03-01), an ISO-8601 time or Unix milliseconds"
        ) from None
