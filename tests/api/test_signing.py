"""Request signatures (DESIGN §7): the worked example, tampering, and what errors reveal."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ballast_exchange.access.signing import AuthError, accepted_paths, sign, verify

# The worked example that docs/api.md quotes. Time is 2025-03-15T10:31:05Z, the spec's example
# order's created_at; the body is the spec's example order, serialised compactly.
EXAMPLE_SECRET = "bmkt_secret_xyz789"
EXAMPLE_TIMESTAMP = "1742034665000"
EXAMPLE_METHOD = "POST"
EXAMPLE_PATH = "/v1/orders"
EXAMPLE_BODY = (
    '{"market_id":"suez-apr2025","side":"buy","type":"limit",'
    '"price":0.87,"size":1000,"time_in_force":"GTC"}'
)
EXAMPLE_SIGNATURE = "5fd5926f59670954e4e7f6c87887024b728c3e7057d6ce48f9789acbc0737f56"

# A GET with a query string and no body, signed over the full path.
EXAMPLE_GET_PATH = "/v1/orders?status=open"
EXAMPLE_GET_SIGNATURE = "b74197599a9ae7c6ba2e75849463e9d9953ba7bc195f63797dceca128d5441c4"

NOW_MS = int(EXAMPLE_TIMESTAMP)
SECRET = "bmkt_secret_test-secret-for-unit-tests"


def hmac_hex(secret: str, message: str | bytes) -> str:
    """The signature computed independently of the module under test."""
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def spec_sign_request(secret: str, method: str, path: str, timestamp: str, body: str = "") -> str:
    """The spec's Python example, verbatim except that the timestamp is passed in."""
    message = f"{timestamp}{method}{path}{body}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def check(
    *,
    signature: str | None,
    timestamp: str | None = EXAMPLE_TIMESTAMP,
    method: str = "POST",
    path: str = "/v1/orders",
    body: bytes = b"",
    now_ms: int = NOW_MS,
    secret: str = SECRET,
) -> None:
    verify(
        secret=secret,
        timestamp=timestamp,
        signature=signature,
        method=method,
        path=path,
        body=body,
        now_ms=now_ms,
    )


def auth_error(**kwargs: object) -> AuthError:
    with pytest.raises(AuthError) as info:
        check(**kwargs)  # type: ignore[arg-type]
    return info.value


# --- the worked example --------------------------------------------------------------------


def test_worked_example_post() -> None:
    message = EXAMPLE_TIMESTAMP + EXAMPLE_METHOD + EXAMPLE_PATH + EXAMPLE_BODY
    assert hmac_hex(EXAMPLE_SECRET, message) == EXAMPLE_SIGNATURE
    got = sign(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, EXAMPLE_METHOD, EXAMPLE_PATH, EXAMPLE_BODY)
    assert got == EXAMPLE_SIGNATURE
    # Bytes and str bodies sign the same message.
    body_bytes = EXAMPLE_BODY.encode()
    assert sign(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, "POST", EXAMPLE_PATH, body_bytes) == got
    # The body is what the spec's order example serialises to.
    assert json.loads(EXAMPLE_BODY)["market_id"] == "suez-apr2025"
    verify(
        secret=EXAMPLE_SECRET,
        timestamp=EXAMPLE_TIMESTAMP,
        signature=EXAMPLE_SIGNATURE,
        method="POST",
        path=EXAMPLE_PATH,
        body=body_bytes,
        now_ms=NOW_MS + 1_234,
    )


def test_worked_example_get_with_query() -> None:
    assert hmac_hex(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP + "GET" + EXAMPLE_GET_PATH) == (
        EXAMPLE_GET_SIGNATURE
    )
    assert sign(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, "GET", EXAMPLE_GET_PATH) == (
        EXAMPLE_GET_SIGNATURE
    )


def test_matches_the_spec_python_example() -> None:
    for method, path, body in [
        ("POST", "/v1/orders", EXAMPLE_BODY),
        ("GET", "/v1/orders?status=open", ""),
        ("DELETE", "/v1/orders/ord_abc123", ""),
        ("POST", "/v1/orders", '{"note":"café ☕"}'),  # non-ASCII goes in as UTF-8
    ]:
        expected = spec_sign_request(SECRET, method, path, EXAMPLE_TIMESTAMP, body)
        assert sign(SECRET, EXAMPLE_TIMESTAMP, method, path, body) == expected
        assert sign(SECRET, EXAMPLE_TIMESTAMP, method, path, body.encode()) == expected


def test_method_is_upper_cased() -> None:
    assert sign(SECRET, "1", "get", "/v1/markets") == sign(SECRET, "1", "GET", "/v1/markets")


# --- accepted forms ------------------------------------------------------------------------


def test_full_path_with_query_accepted() -> None:
    path = "/v1/orders?status=open&market_id=suez-apr2025"
    check(signature=sign(SECRET, EXAMPLE_TIMESTAMP, "GET", path), method="GET", path=path)


def test_base_relative_path_accepted() -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/orders?status=open")
    check(signature=sig, method="GET", path="/v1/orders?status=open")


def test_upper_case_hex_and_surrounding_space_accepted() -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/markets")
    check(signature=f" {sig.upper()} ", method="GET", path="/v1/markets")


def test_timestamp_within_tolerance_either_side() -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/markets")
    for now in (NOW_MS - 30_000, NOW_MS, NOW_MS + 30_000):
        check(signature=sig, method="GET", path="/v1/markets", now_ms=now)


def test_accepted_paths() -> None:
    assert accepted_paths("/v1/orders?status=open") == [
        "/v1/orders?status=open",
        "/orders?status=open",
    ]
    assert accepted_paths("/v1") == ["/v1", "/"]
    assert accepted_paths("/v1?x=1") == ["/v1?x=1", "/?x=1"]
    # Only at a segment boundary, and nothing outside the base.
    assert accepted_paths("/v10/orders") == ["/v10/orders"]
    assert accepted_paths("/healthz") == ["/healthz"]
    assert accepted_paths("/api/v1/orders", base_path="/api/v1/") == ["/api/v1/orders", "/orders"]
    assert accepted_paths("/orders", base_path="") == ["/orders"]


# --- tampering -----------------------------------------------------------------------------


def test_body_changed_after_signing() -> None:
    body = EXAMPLE_BODY.encode()
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "POST", "/v1/orders", body)
    check(signature=sig, body=body)
    tampered = body.replace(b'"size":1000', b'"size":9000')
    err = auth_error(signature=sig, body=tampered)
    assert err.code == "INVALID_SIGNATURE"
    assert err.status == 401
    assert err.details["body_sha256"] == hashlib.sha256(tampered).hexdigest()
    assert err.details["body_length"] == len(tampered)


def test_body_whitespace_matters() -> None:
    # The raw bytes are signed, not a re-serialisation: pretty-printing breaks the signature.
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "POST", "/v1/orders", EXAMPLE_BODY)
    pretty = json.dumps(json.loads(EXAMPLE_BODY), indent=2).encode()
    assert auth_error(signature=sig, body=pretty).code == "INVALID_SIGNATURE"


def test_query_changed() -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/orders?status=open")
    err = auth_error(signature=sig, method="GET", path="/v1/orders?status=filled")
    assert err.code == "INVALID_SIGNATURE"
    # Signing without the query string is not enough either.
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/orders")
    assert auth_error(signature=sig, method="GET", path="/v1/orders?status=open").code == (
        "INVALID_SIGNATURE"
    )


def test_method_changed() -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/orders/ord_abc123")
    err = auth_error(signature=sig, method="DELETE", path="/v1/orders/ord_abc123")
    assert err.code == "INVALID_SIGNATURE"
    assert err.details["method"] == "DELETE"


def test_stale_timestamp_replayed() -> None:
    body = EXAMPLE_BODY.encode()
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "POST", "/v1/orders", body)
    now = NOW_MS + 30_001  # the same signed request, replayed just past the tolerance
    err = auth_error(signature=sig, body=body, now_ms=now)
    assert err.code == "TIMESTAMP_EXPIRED"
    assert err.status == 401
    assert err.details == {
        "server_time": now,
        "timestamp": NOW_MS,
        "skew_ms": -30_001,
        "tolerance_ms": 30_000,
    }


def test_timestamp_from_the_future() -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/markets")
    err = auth_error(signature=sig, method="GET", path="/v1/markets", now_ms=NOW_MS - 60_000)
    assert err.code == "TIMESTAMP_EXPIRED"
    assert err.details["skew_ms"] == 60_000


def test_timestamp_in_seconds_gets_a_hint() -> None:
    ts = EXAMPLE_TIMESTAMP[:-3]
    err = auth_error(signature=sign(SECRET, ts, "GET", "/v1/x"), timestamp=ts, method="GET")
    assert err.code == "TIMESTAMP_EXPIRED"
    assert "milliseconds" in err.message


def test_altered_timestamp_header() -> None:
    # Moving the timestamp forward to dodge the tolerance invalidates the signature.
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/v1/markets")
    later = str(NOW_MS + 5_000)
    err = auth_error(signature=sig, timestamp=later, method="GET", path="/v1/markets")
    assert err.code == "INVALID_SIGNATURE"
    assert err.details["timestamp"] == later
    assert err.details["skew_ms"] == 5_000


def test_wrong_secret() -> None:
    sig = sign("bmkt_secret_someone-else", EXAMPLE_TIMESTAMP, "GET", "/v1/markets")
    assert auth_error(signature=sig, method="GET", path="/v1/markets").code == "INVALID_SIGNATURE"


def test_other_base_path_prefix_not_stripped() -> None:
    # A signature over "/orders" must not validate a request to "/v2/orders".
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "GET", "/orders")
    assert auth_error(signature=sig, method="GET", path="/v2/orders").code == "INVALID_SIGNATURE"


# --- malformed headers ---------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [None, "", "  ", "abc", "1.7e12", "-1742034665000", "١٢٣"])
def test_missing_or_non_numeric_timestamp(timestamp: str | None) -> None:
    err = auth_error(signature="00" * 32, timestamp=timestamp)
    assert err.code == "INVALID_SIGNATURE"
    assert err.status == 401
    assert err.details == {"header": "X-BM-Timestamp"}
    assert "X-BM-Timestamp" in err.message


def test_huge_timestamp_does_not_crash() -> None:
    err = auth_error(signature="00", timestamp="9" * 5000)
    assert err.code == "INVALID_SIGNATURE"


@pytest.mark.parametrize("signature", [None, "", "not-hex", "é" * 64, "00" * 32])
def test_missing_or_garbage_signature(signature: str | None) -> None:
    err = auth_error(signature=signature, method="GET", path="/v1/orders?status=open")
    assert err.code == "INVALID_SIGNATURE"
    assert ("Missing" in err.message) == (not signature)
    assert err.details["expected_message"] == "{timestamp}{METHOD}{path}{body}"


# --- what an error tells the client --------------------------------------------------------


def test_failure_details_show_the_shape_never_the_secret_or_signature() -> None:
    body = b'{"market_id":"suez-apr2025"}'
    err = auth_error(signature="ab" * 32, method="post", body=body, now_ms=NOW_MS - 250)
    assert err.details == {
        "expected_message": "{timestamp}{METHOD}{path}{body}",
        "timestamp": EXAMPLE_TIMESTAMP,
        "method": "POST",
        "path": "/v1/orders",
        "accepted_paths": ["/v1/orders", "/orders"],
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_length": len(body),
        "skew_ms": 250,
    }
    shown = json.dumps(err.details) + err.message + repr(err) + str(err)
    assert SECRET not in shown
    for path in ("/v1/orders", "/orders"):
        assert sign(SECRET, EXAMPLE_TIMESTAMP, "POST", path, body) not in shown


# --- properties ----------------------------------------------------------------------------


@given(
    body=st.binary(max_size=256),
    path=st.sampled_from(["/v1/orders", "/v1/orders?status=open", "/v1/markets/suez-apr2025"]),
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    skew=st.integers(min_value=-30_000, max_value=30_000),
)
def test_round_trip(body: bytes, path: str, method: str, skew: int) -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, method, path, body)
    assert sig == hmac_hex(SECRET, f"{EXAMPLE_TIMESTAMP}{method}{path}".encode() + body)
    check(signature=sig, method=method, path=path, body=body, now_ms=NOW_MS + skew)


@given(body=st.binary(min_size=1, max_size=128), data=st.data())
def test_any_single_byte_change_is_rejected(body: bytes, data: st.DataObject) -> None:
    sig = sign(SECRET, EXAMPLE_TIMESTAMP, "POST", "/v1/orders", body)
    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    tampered = body[:i] + bytes([body[i] ^ flip]) + body[i + 1 :]
    with pytest.raises(AuthError):
        check(signature=sig, body=tampered)
