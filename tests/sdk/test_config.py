"""What the client does before any request: URLs per environment, signing, ids, numbers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ballast import AsyncBallastClient, BallastClient, InvalidRequestError
from ballast._core import (
    new_client_order_id,
    price_text,
    size_int,
    time_body,
    time_param,
)
from ballast.signing import sign, signed_headers

# The worked example of docs/api.md (secret bmkt_secret_xyz789, timestamp 1742034665000).
SECRET = "bmkt_secret_xyz789"
TIMESTAMP = "1742034665000"
SPEC_BODY = (
    '{"market_id":"suez-apr2025","side":"buy","type":"limit",'
    '"price":0.87,"size":1000,"time_in_force":"GTC"}'
)


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BALLAST_API_KEY",
        "BALLAST_API_SECRET",
        "BALLAST_BASE_URL",
        "BALLAST_ENVIRONMENT",
        "BALLAST_STREAM_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        (
            "POST",
            "/v1/orders",
            SPEC_BODY,
            "5fd5926f59670954e4e7f6c87887024b728c3e7057d6ce48f9789acbc0737f56",
        ),
        (
            "GET",
            "/v1/orders?status=open",
            "",
            "b74197599a9ae7c6ba2e75849463e9d9953ba7bc195f63797dceca128d5441c4",
        ),
        (
            "GET",
            "/orders?status=open",
            "",
            "ca41f3a06afa049976c025e9fdfd0af074782bc942c0b1820bb14683b2e8b3c8",
        ),
    ],
)
def test_signatures_match_the_documented_examples(
    method: str, path: str, body: str, expected: str
) -> None:
    assert sign(SECRET, TIMESTAMP, method, path, body) == expected
    assert sign(SECRET, TIMESTAMP, method, path, body.encode()) == expected
    headers = signed_headers(
        "bmkt_live_abc123", SECRET, method, path, body.encode(), int(TIMESTAMP)
    )
    assert headers == {
        "Authorization": "Bearer bmkt_live_abc123",
        "X-BM-Timestamp": TIMESTAMP,
        "X-BM-Signature": expected,
    }


@pytest.mark.parametrize(
    ("options", "base_url", "stream_url", "environment"),
    [
        ({}, "https://api.ballastmarkets.com/v1", "wss://stream.ballastmarkets.com", "production"),
        (
            {"environment": "sandbox"},
            "https://api-sandbox.ballastmarkets.com/v1",
            "wss://stream-sandbox.ballastmarkets.com",
            "sandbox",
        ),
        (
            {"environment": "local"},
            "http://127.0.0.1:8000/v1",
            "ws://127.0.0.1:8000/stream",
            "local",
        ),
        (
            {"base_url": "http://10.0.0.5:9000/v1/"},
            "http://10.0.0.5:9000/v1",
            "ws://10.0.0.5:9000/stream",
            "custom",
        ),
        (
            {"base_url": "https://ballast.desk.example/v1"},
            "https://ballast.desk.example/v1",
            "wss://ballast.desk.example/stream",
            "custom",
        ),
        (
            {"base_url": "https://api-sandbox.ballastmarkets.com/v1"},
            "https://api-sandbox.ballastmarkets.com/v1",
            "wss://stream-sandbox.ballastmarkets.com",
            "sandbox",
        ),
        (
            {"environment": "sandbox", "stream_url": "wss://elsewhere.example/stream"},
            "https://api-sandbox.ballastmarkets.com/v1",
            "wss://elsewhere.example/stream",
            "sandbox",
        ),
    ],
)
def test_urls_per_environment(
    options: dict[str, str], base_url: str, stream_url: str, environment: str
) -> None:
    for cls in (BallastClient, AsyncBallastClient):
        client = cls("bmkt_test_k", "bmkt_secret_s", **options)  # type: ignore[arg-type]
        assert (client.base_url, client.stream_url, client.environment) == (
            base_url,
            stream_url,
            environment,
        )


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_API_KEY", "bmkt_test_from_env")
    monkeypatch.setenv("BALLAST_API_SECRET", "bmkt_secret_from_env")
    monkeypatch.setenv("BALLAST_BASE_URL", "http://127.0.0.1:8123/v1")
    with BallastClient() as client:
        assert client.api_key == "bmkt_test_from_env"
        assert client.base_url == "http://127.0.0.1:8123/v1"
        assert client.stream_url == "ws://127.0.0.1:8123/stream"
    # Explicit arguments win over the environment.
    with BallastClient("k", "s", environment="sandbox") as client:
        assert client.api_key == "k"
        assert client.base_url == "https://api-sandbox.ballastmarkets.com/v1"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="environment"):
        BallastClient("k", "s", environment="staging")
    with pytest.raises(ValueError, match="base_url"):
        BallastClient("k", "s", base_url="ftp://example.com/v1")
    with pytest.raises(ValueError, match="both"):
        BallastClient("k", None)
    with pytest.raises(ValueError, match="max_retries"):
        BallastClient("k", "s", max_retries=-1)


def test_generated_client_order_ids_fit_the_servers_pattern() -> None:
    ids = {new_client_order_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", value), value


def test_numbers_are_sent_exactly() -> None:
    assert price_text(0.87) == "0.87"
    assert price_text(0.865) == "0.865"
    assert price_text(Decimal("0.870")) == "0.870"
    assert price_text("0.5") == "0.5"
    assert price_text(55) == "55"
    # Binary floating point is not rounded away: the grid check will refuse it.
    assert price_text(0.3 - 0.1) == "0.19999999999999998"
    for bad in ("abc", float("nan"), float("inf"), True):
        with pytest.raises(InvalidRequestError) as caught:
            price_text(bad)
        assert caught.value.details == {"field": "price"}
    assert size_int(1000) == 1000
    assert size_int(Decimal("10")) == 10
    assert size_int(10.0) == 10
    assert size_int("12") == 12
    for bad_size in (1.5, "x", True, Decimal("2.5")):
        with pytest.raises(InvalidRequestError):
            size_int(bad_size)


def test_times_are_sent_as_the_server_reads_them() -> None:
    moment = datetime(2025, 3, 15, 10, 31, 5, 123000, tzinfo=UTC)
    assert time_param(moment) == "1742034665123"
    assert time_param(moment.astimezone(timezone(timedelta(hours=2)))) == "1742034665123"
    assert time_param(moment.replace(tzinfo=None)) == "1742034665123"  # naive is UTC
    assert time_param(date(2025, 3, 1)) == "2025-03-01"  # a date stays a whole day
    assert time_param("2025-03-01T00:00:00Z") == "2025-03-01T00:00:00Z"
    assert time_param(1742034665123) == "1742034665123"
    assert time_body(moment) == 1742034665123
    assert time_body(date(2025, 3, 15)) == 1741996800000
