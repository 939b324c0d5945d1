"""Logging: readable lines by default, one JSON object a line with ``--log-json``.

Every line logged while an HTTP request (or a stream connection) is being served carries its
request id, from the ``request_id`` context variable the access middleware sets. Both formats
pass the message and any exception text through ``redact``, a last line of defence that
masks API secrets, the admin token, bearer tokens, signatures and database passwords should
one ever end up in a line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("ballast_request_id", default=None)

_SECRETS = re.compile(
    r"(?P<token>bmkt_(?:secret|admin)_)[A-Za-z0-9_\-]+"
    r"|(?P<header>(?:authorization|x-bm-signature)[\"']?\s*[:=,]\s*[\"']?(?:bearer\s+)?)"
    r"[^\s\"',)]+"
    r"|(?P<scheme>\bbearer\s+)[^\s\"',)]+"
    r"|(?P<userinfo>://[^:/@\s]+:)[^@\s/]+@",
    re.IGNORECASE,
)


def _mask(match: re.Match[str]) -> str:
    kept = match.group("token") or match.group("header") or match.group("scheme")
    if kept:
        return kept + "***"
    return match.group("userinfo") + "***@"


# Every pattern above contains one of these: most lines skip the (slower) regex altogether.
_TRIGGERS = ("bmkt_secret_", "bmkt_admin_", "bearer", "authorization", "signature", "://")


def redact(text: str) -> str:
    """``text`` with secrets masked (a no-op, and cheap, for the usual line without any)."""
    lowered = text.lower()
    for trigger in _TRIGGERS:
        if trigger in lowered:
            return _SECRETS.sub(_mask, text)
    return text


# The attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "request_id", "rid", "color_message"}  # uvicorn's
)


def _request_id(record: logging.LogRecord) -> str | None:
    given = getattr(record, "request_id", None)
    return given if given is not None else request_id.get()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = _request_id(record)
        if rid is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Masking the finished line covers the message, extras and traceback alike, and
        # keeps it valid JSON (only characters inside a token are replaced).
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id]: message``, secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = _request_id(record)
        record.rid = f" [{rid}]" if rid is not None else ""
        return redact(super().format(record))


def configure_logging(as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
