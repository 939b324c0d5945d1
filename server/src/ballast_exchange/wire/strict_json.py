"""JSON as the API reads it: a key given twice, or nesting too deep to parse, is an error.

Python's ``json`` keeps the last of two equal keys, so ``{"side": "buy", "side": "sell"}``
would mean whatever the last parser in a chain of proxies decided; the API refuses it instead.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError, invalid_request


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise invalid_request(key, f"the key {key!r} appears twice")
        result[key] = value
    return result


def loads(text: str | bytes) -> Any:
    """Parse a request; ``INVALID_REQUEST`` for bad JSON, deep nesting or a repeated key."""
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except ApiError:
        raise
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise invalid_request("body", "the body is not valid JSON") from None
