"""Request signing, exactly as the API specification gives it.

The signature is the lower-case hex HMAC-SHA256, keyed with the API secret, of
``timestamp + METHOD + path + body``: the Unix time in milliseconds as decimal text, the
upper-case method, the path as sent (with ``/v1`` and with the query string, e.g.
``/v1/orders?status=open``) and the exact body bytes (empty for GET and DELETE).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "signed_headers"]

SIGNATURE_HEADER = "X-BM-Signature"
TIMESTAMP_HEADER = "X-BM-Timestamp"


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes | str = b"") -> str:
    """The hex signature of one request. A ``str`` body is UTF-8 encoded."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    message = f"{timestamp}{method.upper()}{path}".encode() + raw
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(
    api_key: str, api_secret: str, method: str, path: str, body: bytes, timestamp_ms: int
) -> dict[str, str]:
    """The three authentication headers for one request."""
    timestamp = str(timestamp_ms)
    return {
        "Authorization": f"Bearer {api_key}",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(api_secret, timestamp, method, path, body),
    }
