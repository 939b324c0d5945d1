"""Request signatures: hex HMAC-SHA256 of ``timestamp + METHOD + path + body`` (DESIGN §7).

The message is built exactly as the spec's Python example does it: the millisecond timestamp
as decimal text, the upper-case HTTP method, the request path as sent (with ``/v1`` and with
the query string), then the raw body bytes (empty for GET/DELETE). The server also accepts a
signature over the path relative to the base URL (``/orders?status=open``), because several
HTTP clients sign what they were given rather than what went on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AuthError",
    "accepted_paths",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-BM-Signature"
TIMESTAMP_HEADER = "X-BM-Timestamp"

# The message shape users must sign, quoted back to them when a signature does not match.
_MESSAGE_SHAPE = "{timestamp}{METHOD}{path}{body}"

# ASCII digits only: str.isdigit() would also accept "١٢٣" or "²", and the length bound keeps
# int() away from pathological inputs (a millisecond timestamp has 13 digits until 2286).
_TIMESTAMP_RE = re.compile(r"[0-9]{1,18}")

# Below this a "millisecond" timestamp is more plausibly seconds (1e12 ms is September 2001).
_SECONDS_LOOKALIKE_MAX = 10**12


class AuthError(Exception):
    """An authentication failure carrying the spec's error envelope fields."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        status: int = 401,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details if details is not None else {}
        self.status = status

    def __repr__(self) -> str:
        return f"AuthError(code={self.code!r}, message={self.message!r}, status={self.status})"


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _message(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    # Same bytes as f"{timestamp}{method}{path}{body}".encode() in the spec, but the body is
    # appended raw so a non-UTF-8 body is signed byte for byte rather than re-encoded.
    return f"{timestamp}{method.upper()}{path}".encode() + body


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes | str = b"") -> str:
    """Return the lower-case hex HMAC-SHA256 signature of one request.

    ``timestamp`` is Unix milliseconds as decimal text, ``path`` the path as sent including
    the query string, ``body`` the raw body (a ``str`` is UTF-8 encoded, as in the spec).
    """
    message = _message(timestamp, method, path, _as_bytes(body))
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def accepted_paths(path: str, base_path: str = "/v1") -> list[str]:
    """Paths a signature may cover: ``path`` as sent, then its form relative to ``base_path``.

    ``/v1/orders?status=open`` gives ``["/v1/orders?status=open", "/orders?status=open"]``;
    a path outside the base (``/v10/x``, ``/healthz``) gives only itself.
    """
    paths = [path]
    base = base_path.rstrip("/")
    if base and path.startswith(base):
        rest = path[len(base) :]
        # Only strip at a segment boundary, so "/v1" never turns "/v10/x" into "0/x".
        if rest == "" or rest[0] == "?":
            paths.append("/" + rest)
        elif rest[0] == "/":
            paths.append(rest)
    return paths


def _parse_timestamp(timestamp: str | None) -> int:
    if timestamp is None or not timestamp.strip():
        raise AuthError(
            "INVALID_SIGNATURE",
            f"Missing {TIMESTAMP_HEADER} header (Unix time in milliseconds)",
            {"header": TIMESTAMP_HEADER},
        )
    text = timestamp.strip()
    if not _TIMESTAMP_RE.fullmatch(text):
        raise AuthError(
            "INVALID_SIGNATURE",
            f"{TIMESTAMP_HEADER} must be Unix time in milliseconds as decimal digits",
            {"header": TIMESTAMP_HEADER},
        )
    return int(text)


def verify(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    base_path: str = "/v1",
    tolerance_ms: int = 30_000,
) -> int:
    """Check one request's signature; return its timestamp if valid, else raise
    :class:`AuthError`.

    ``timestamp`` and ``signature`` are the raw header values (None when absent), ``path``
    the request path as sent including the query string, ``body`` the raw bytes received.
    Raises ``INVALID_SIGNATURE`` for a missing/malformed header or a mismatch, and
    ``TIMESTAMP_EXPIRED`` when the timestamp is more than ``tolerance_ms`` from ``now_ms``.
    """
    ts = _parse_timestamp(timestamp)
    skew_ms = ts - now_ms
    if abs(skew_ms) > tolerance_ms:
        message = (
            f"{TIMESTAMP_HEADER} is {abs(skew_ms)} ms from server time "
            f"(tolerance {tolerance_ms} ms); GET /v1/time returns server time"
        )
        if ts < _SECONDS_LOOKALIKE_MAX:
            message += "; the timestamp looks like seconds, it must be milliseconds"
        raise AuthError(
            "TIMESTAMP_EXPIRED",
            message,
            {
                "server_time": now_ms,
                "timestamp": ts,
                "skew_ms": skew_ms,
                "tolerance_ms": tolerance_ms,
            },
        )

    # Sign with the header text exactly as sent: the client signed that string, not our int.
    ts_text = timestamp.strip() if timestamp is not None else ""
    method_upper = method.upper()
    paths = accepted_paths(path, base_path)
    provided = (signature or "").strip().lower()
    # Bytes, because compare_digest raises TypeError on non-ASCII str (headers are latin-1).
    provided_bytes = provided.encode("utf-8", errors="replace")
    matched = False
    for candidate in paths:
        expected = sign(secret, ts_text, method_upper, candidate, body).encode("ascii")
        # Evaluate every candidate: which form matched is not secret, but keep it uniform.
        matched |= hmac.compare_digest(expected, provided_bytes)
    if matched:
        return ts

    # Tell the user the shape we hashed, never the secret and never the expected signature.
    details: dict[str, Any] = {
        "expected_message": _MESSAGE_SHAPE,
        "timestamp": ts_text,
        "method": method_upper,
        "path": path,
        "accepted_paths": paths,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_length": len(body),
        "skew_ms": skew_ms,
    }
    if not provided:
        reason = f"Missing {SIGNATURE_HEADER} header"
    else:
        reason = f"{SIGNATURE_HEADER} does not match the request"
    raise AuthError(
        "INVALID_SIGNATURE",
        f"{reason}; sign hex HMAC-SHA256(secret, timestamp + METHOD + path + body)",
        details,
    )
