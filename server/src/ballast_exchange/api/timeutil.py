"""Times on the wire: ISO-8601 (dates or times) or Unix milliseconds, to integer milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime

from .errors import invalid_request


def to_ms(value: datetime | int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        if value < 0:
            raise invalid_request(field, f"{field} must not be negative")
        return value
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_time_param(value: str | None, field: str, *, end: bool = False) -> int | None:
    """A query parameter: a date (whole day; ``end`` takes its last millisecond), an ISO-8601
    time, or Unix milliseconds."""
    if value is None or value == "":
        return None
    if value.isdigit():
        return int(value)
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
