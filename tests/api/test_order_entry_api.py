"""The order-entry path (api/order_entry.py, docs/adr/0024) answers exactly as the FastAPI routes
it stands in front of: the same status, body, headers and HTTP metrics for every request, good
or bad, sent once down each path of one real server; and the OpenAPI document still describes
these operations with their request bodies and responses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ballast_exchange.api.order_entry import ExchangeAPI
from ballast_exchange.logs import JsonFormatter
from tests.api.test_health_logs_api import access_line, capture_logs
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.scraped_metrics import scrape
from tests.signed_client import Admin, SignedClient, signature

MARKET = "entry-m"
# Values that differ between two equal requests: fresh ids and times, the request id, counts
# of a rate window that moves on.
VOLATILE_KEYS = {
    "order_id",
    "trade_id",
    "created_at",
    "updated_at",
    "server_time",
    "skew_ms",
    "timestamp",
}
VOLATILE_HEADERS = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "date"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("entry") / "var", **NO_LIMITS) as server:
        yield server


def app_of(live: LiveServer) -> ExchangeAPI:
    app = live.server.config.app
    assert isinstance(app, ExchangeAPI) and app.order_entry is not None
    return app


@dataclass
class Probe:
    """One request, built afresh for each path (a signature is good once)."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sign: bool = True
    timestamp_offset_ms: int = 0
    signed_body: bytes | None = None  # sign something other than what is sent


def send(live: LiveServer, client: SignedClient, probe: Probe) -> httpx.Response:
    headers = dict(probe.headers)
    body = probe.body or b""
    if probe.sign:
        ts = str(client.next_timestamp() + probe.timestamp_offset_ms)
        signed = probe.signed_body if probe.signed_body is not None else body
        message = f"{ts}{probe.method}{probe.path}".encode() + signed  # bytes: not all UTF-8
        headers.setdefault("Authorization", f"Bearer {client.api_key}")
        headers["X-BM-Timestamp"] = ts
        headers["X-BM-Signature"] = hmac.new(
            client.api_secret.encode(), message, hashlib.sha256
        ).hexdigest()
    return client.http.request(
        probe.method, live.url + probe.path, content=probe.body, headers=headers
    )


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE_KEYS else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return "*" if value.startswith(("ord_", "trd_")) else re.sub(r"\d{4,}", "#", value)
    return value


def shape(response: httpx.Response) -> dict[str, Any]:
    # The body's length less its numbers and their signs: the same rendering, whatever the
    # ids and times (skew_ms is -3 on one request and 0 on the next).
    length = str(len(re.sub(rb"-?\d", b"", response.content)))
    headers = [
        (k, length if k == "content-length" else v)
        for k, v in response.headers.multi_items()
        if k not in VOLATILE_HEADERS
    ]
    try:
        body: Any = masked(response.json())
    except json.JSONDecodeError:
        body = response.text
    return {"status": response.status_code, "headers": headers, "body": body}


def http_counts(live: LiveServer) -> dict[tuple[str, ...], float]:
    return {
        tuple(sorted(labels)): v
        for (name, labels), v in scrape(live).items()
        if name == "ballast_http_requests_total"
    }


def both_ways(live: LiveServer, client: SignedClient, make: Callable[[], Probe]) -> None:
    """Send the probe down the order-entry path, then down FastAPI's; the answers and what
    /metrics counted for them must be the same."""
    app = app_of(live)
    entry = app.order_entry
    seen = []
    for fast in (True, False):
        app.order_entry = entry if fast else None
        try:
            before = http_counts(live)
            response = send(live, client, make())
            after = http_counts(live)
        finally:
            app.order_entry = entry
        counted = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        # The scrape itself is counted on the next scrape.
        counted = {k: v for k, v in counted.items() if ("route", "/metrics") not in k}
        seen.append((shape(response), counted))
    assert seen[0] == seen[1], make()


@pytest.fixture(scope="module")
def trader(live: LiveServer) -> SignedClient:
    admin = Admin(live.api, live.admin_token)
    admin.market(MARKET)
    other = admin.account("entry-maker", 1_000)
    # Resting sells for the probes' crossing buys to trade with.
    for _ in range(10):
        body = {"market_id": MARKET, "side": "sell", "price": 0.6, "size": 5}
        assert other.post("/orders", body).status_code == 201
    return admin.account("entry-trader", 1_000)


def order(**fields: Any) -> bytes:
    body = {"market_id": MARKET, "side": "buy", "price": 0.4, "size": 2, **fields}
    return json.dumps(body).encode()


JSON = {"Content-Type": "application/json"}

BAD_PLACEMENTS = [
    pytest.param(b'{"market_id":', JSON, id="malformed-json"),
    pytest.param(b'{"side": "buy", "side": "sell"}', JSON, id="repeated-key"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, JSON, id="oversize"),
    pytest.param(b"[" * 5_000 + b"]" * 5_000, JSON, id="too-deep"),
    pytest.param(b"\xff\xfe", JSON, id="not-utf8"),
    pytest.param(b"null", JSON, id="null"),
    pytest.param(b"[1]", JSON, id="array"),
    pytest.param(b"", JSON, id="empty"),
    pytest.param(order(size="3"), JSON, id="size-as-string"),
    pytest.param(order(size=1.5), JSON, id="size-fraction"),
    pytest.param(order(side="hold", price=True), JSON, id="two-bad-fields"),
    pytest.param(order(colour="red"), JSON, id="unknown-field"),
    pytest.param(order(price=0.4001), JSON, id="off-grid"),
    pytest.param(order(market_id="nope"), JSON, id="unknown-market"),
    pytest.param(order(type="limit", price=None), JSON, id="limit-without-price"),
    pytest.param(order(time_in_force="GTD"), JSON, id="gtd-without-expiry"),
    pytest.param(order(size=10**12), JSON, id="too-large"),
    pytest.param(order(), {"Content-Type": "text/plain"}, id="text-plain"),
    pytest.param(order(), {"Content-Type": "application/json; charset=utf-8"}, id="charset"),
    pytest.param(order(), {}, id="no-content-type"),
]


@pytest.mark.parametrize(("body", "headers"), BAD_PLACEMENTS)
def test_a_placement_is_answered_alike_either_way(
    live: LiveServer, trader: SignedClient, body: bytes, headers: dict[str, str]
) -> None:
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders", body, headers))


def test_good_placements_and_retries_are_answered_alike(
    live: LiveServer, trader: SignedClient
) -> None:
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders", order(), JSON))
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders", order(price=0.6), JSON))
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders", order(time_in_force="IOC"), JSON))
    # The first answers 201; every retry of the same client_order_id 200, either way.
    retried = order(client_order_id="entry-retry-1")
    assert send(live, trader, Probe("POST", "/v1/orders", retried, JSON)).status_code == 201
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders", retried, JSON))


def test_authentication_failures_are_answered_alike(live: LiveServer, trader: SignedClient) -> None:
    body = order()
    cases: list[Callable[[], Probe]] = [
        lambda: Probe("POST", "/v1/orders", body, JSON, sign=False),
        lambda: Probe("POST", "/v1/orders", body, {**JSON, "Authorization": "Bearer nope"}),
        lambda: Probe("POST", "/v1/orders", body, {**JSON, "Authorization": "Basic x"}),
        lambda: Probe("POST", "/v1/orders", body, JSON, timestamp_offset_ms=-120_000),
        lambda: Probe("POST", "/v1/orders", body, JSON, signed_body=order(size=3)),
        lambda: Probe("DELETE", f"/v1/orders?market_id={MARKET}", sign=False),
        lambda: Probe("DELETE", "/v1/orders/ord_1", headers={"X-BM-Signature": "0" * 64}),
    ]
    for case in cases:
        both_ways(live, trader, case)


def test_a_replayed_signature_is_refused_alike(live: LiveServer, trader: SignedClient) -> None:
    """The same signed bytes twice: the second is refused as a replay, on either path."""
    app = app_of(live)
    entry = app.order_entry
    answers = []
    for fast in (True, False):
        ts = str(trader.next_timestamp())
        path = "/v1/orders/ord_999999"
        headers = {
            "Authorization": f"Bearer {trader.api_key}",
            "X-BM-Timestamp": ts,
            "X-BM-Signature": signature(trader.api_secret, ts, "DELETE", path, ""),
        }
        app.order_entry = entry if fast else None
        try:
            first = trader.http.delete(live.url + path, headers=headers)
            again = trader.http.delete(live.url + path, headers=headers)
        finally:
            app.order_entry = entry
        assert first.json()["error"]["code"] == "ORDER_NOT_FOUND"
        assert again.json()["error"]["details"]["reason"] == "replayed"
        answers.append((shape(first), shape(again)))
    assert answers[0] == answers[1]


def test_a_read_only_key_is_forbidden_alike(live: LiveServer, trader: SignedClient) -> None:
    admin = Admin(live.api, live.admin_token)
    made = admin.post("/keys", {"account_id": trader.account_id, "scopes": ["read"]})  # type: ignore[attr-defined]
    reader = SignedClient(live.api, made["api_key"], made["api_secret"])
    both_ways(live, reader, lambda: Probe("POST", "/v1/orders", order(), JSON))


def place(live: LiveServer, trader: SignedClient, **fields: Any) -> str:
    placed = send(live, trader, Probe("POST", "/v1/orders", order(**fields), JSON))
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["order_id"]
    return order_id


def test_cancels_and_amends_are_answered_alike(live: LiveServer, trader: SignedClient) -> None:
    ids = iter([place(live, trader) for _ in range(4)])
    both_ways(live, trader, lambda: Probe("DELETE", f"/v1/orders/{next(ids)}"))
    gone = place(live, trader)
    send(live, trader, Probe("DELETE", f"/v1/orders/{gone}"))
    both_ways(live, trader, lambda: Probe("DELETE", f"/v1/orders/{gone}"))  # 409
    both_ways(live, trader, lambda: Probe("DELETE", "/v1/orders/ord_424242"))  # 404
    both_ways(live, trader, lambda: Probe("DELETE", "/v1/orders/nonsense"))
    both_ways(live, trader, lambda: Probe("DELETE", "/v1/orders/ord_1", b'{"x": 1}', JSON))
    both_ways(live, trader, lambda: Probe("PATCH", f"/v1/orders/{next(ids)}", b'{"size": 1}', JSON))
    kept = place(live, trader)
    for body in (b"{}", b'{"size": "x"}', b'{"price": 0.41}', b'{"price": 0.4001}', b"", b"{"):
        both_ways(live, trader, lambda body=body: Probe("PATCH", f"/v1/orders/{kept}", body, JSON))


def test_batches_and_cancel_all_are_answered_alike(live: LiveServer, trader: SignedClient) -> None:
    good = json.loads(order())
    batch = json.dumps({"orders": [good, {**good, "price": 0.4001}, {**good, "size": 0}]})
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders/batch", batch.encode(), JSON))
    both_ways(live, trader, lambda: Probe("POST", "/v1/orders/batch", b'{"orders": []}', JSON))

    def cancel() -> Probe:
        ids = [place(live, trader) for _ in range(2)]
        body = json.dumps({"order_ids": [*ids, "ord_77777777", "junk"]}).encode()
        return Probe("DELETE", "/v1/orders/batch", body, JSON)

    both_ways(live, trader, cancel)
    # DELETE bodies are not checked by the body middleware: FastAPI's own reading applies.
    for body, headers in (
        (b'{"order_ids": ["ord_1"', JSON),
        (b'{"order_ids": ["ord_1"], "order_ids": ["ord_2"]}', JSON),
        (b'{"order_ids": ["ord_1"]}', {"Content-Type": "text/plain"}),
        (b'{"order_ids": ["ord_1"]}', {"Content-Type": "application/merge-patch+json"}),
        (b'{"order_ids": ["ord_1"]}', {}),
        (b"", {}),
    ):
        both_ways(
            live,
            trader,
            lambda body=body, headers=headers: Probe("DELETE", "/v1/orders/batch", body, headers),
        )
    kept = place(live, trader)
    amends = json.dumps({"orders": [{"order_id": kept, "size": 1}, {"order_id": "x"}]}).encode()
    both_ways(live, trader, lambda: Probe("PATCH", "/v1/orders/batch", amends, JSON))
    for query in (f"?market_id={MARKET}", "?market_id=nope", f"?market_id=nope&market_id={MARKET}"):

        def cancel_all(query: str = query) -> Probe:
            # One order of its own to cancel on each path, and no other.
            assert send(live, trader, Probe("DELETE", "/v1/orders")).status_code == 200
            place(live, trader)
            return Probe("DELETE", f"/v1/orders{query}")

        both_ways(live, trader, cancel_all)
    both_ways(live, trader, lambda: Probe("DELETE", "/v1/orders"))


def test_a_chunked_oversize_body_is_refused_alike(live: LiveServer, trader: SignedClient) -> None:
    """A body with no declared length is read up to the limit and refused there."""
    app = app_of(live)
    entry = app.order_entry
    answers = []
    for fast in (True, False):
        app.order_entry = entry if fast else None

        def chunks() -> Iterator[bytes]:
            for _ in range(20):
                yield b" " * 8192

        try:
            response = trader.http.post(f"{live.api}/orders", content=chunks(), headers=JSON)
        finally:
            app.order_entry = entry
        assert response.status_code == 413
        assert response.headers["connection"] == "close"
        answers.append(shape(response))
    assert answers[0] == answers[1]


def test_the_order_entry_path_keeps_the_request_id_and_rate_headers(
    live: LiveServer, trader: SignedClient
) -> None:
    response = send(
        live, trader, Probe("POST", "/v1/orders", order(), {**JSON, "X-Request-ID": "entry-1"})
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "entry-1"
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert response.headers[name].isdigit()


def test_rate_limits_bind_on_the_order_entry_path(tmp_path: Path) -> None:
    limits = {"public_rate_limit": 3, "private_rate_limit": 2}
    with live_server(tmp_path / "var", **limits) as server:
        admin = Admin(server.api, server.admin_token)
        admin.market(MARKET)
        client = admin.account("limited", 100)
        statuses = [
            send(server, client, Probe("DELETE", f"/v1/orders?market_id={MARKET}")).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        refused = send(server, client, Probe("DELETE", f"/v1/orders?market_id={MARKET}"))
        assert refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert int(refused.headers["retry-after"]) >= 0
        assert refused.headers["x-ratelimit-remaining"] == "0"
        # Unsigned requests spend the IP's budget, and past it are refused before anything.
        anonymous = [
            httpx.post(f"{server.api}/orders", content=b"{", headers=JSON, timeout=10)
            for _ in range(4)
        ]
        assert [r.status_code for r in anonymous] == [400, 400, 400, 429]
        assert "x-request-id" in anonymous[-1].headers


# The operations the order-entry path answers, with their request bodies as the document
# names them: what a generated client or a fuzzer builds from.
OPERATIONS = {
    ("post", "/v1/orders"): "PlaceOrderRequest",
    ("delete", "/v1/orders"): None,
    ("post", "/v1/orders/batch"): "BatchOrdersRequest",
    ("delete", "/v1/orders/batch"): "BatchCancelRequest",
    ("patch", "/v1/orders/batch"): "BatchAmendRequest",
    ("delete", "/v1/orders/{order_id}"): None,
    ("patch", "/v1/orders/{order_id}"): "AmendOrderRequest",
}


def test_the_document_still_describes_the_order_entry_operations(live: LiveServer) -> None:
    document = httpx.get(f"{live.url}/v1/openapi.json", timeout=30).json()
    for (method, path), model in OPERATIONS.items():
        operation = document["paths"][path][method]
        assert operation["security"] == [{"ApiKey": [], "Timestamp": [], "Signature": []}]
        body = operation.get("requestBody")
        if model is None:
            assert body is None, (method, path)
        else:
            schema = body["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{model}"}, (method, path)
            assert model in document["components"]["schemas"]
        for status in ("401", "403", "429", "503"):
            error = operation["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    placement = document["components"]["schemas"]["PlaceOrderRequest"]
    assert placement["additionalProperties"] is False
    assert set(placement["required"]) == {"market_id", "side", "size"}
    assert "201" in document["paths"]["/v1/orders"]["post"]["responses"]


BAD = "INVALID_REQUEST"
ENVELOPE_CASES = [
    pytest.param(b'{"market_id":', JSON, 400, BAD, {"field": "body"}, id="malformed"),
    pytest.param(b'{"side": "buy", "side": "sell"}', JSON, 400, BAD, {"field": "side"}, id="twice"),
    pytest.param(order(size="3"), JSON, 400, BAD, {"field": "size"}, id="wrong-type"),
    pytest.param(b" " * 70_000, JSON, 413, "PAYLOAD_TOO_LARGE", {}, id="oversize"),
    pytest.param(
        order(), {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", {}, id="415"
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "code", "details"), ENVELOPE_CASES)
def test_refusals_on_the_order_entry_path_are_the_spec_envelope(
    live: LiveServer,
    trader: SignedClient,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    details: dict[str, Any],
) -> None:
    response = send(live, trader, Probe("POST", "/v1/orders", body, headers))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and set(error) == {"code", "message", "details"}
    assert error["code"] == code and error["message"]
    assert details.items() <= error["details"].items()
    assert response.headers["x-request-id"]


def test_a_good_order_logs_at_debug_and_a_refused_one_at_info(
    live: LiveServer, trader: SignedClient
) -> None:
    quiet_id, loud_id = {**JSON, "X-Request-ID": "q-1"}, {**JSON, "X-Request-ID": "l-1"}
    with capture_logs(JsonFormatter()) as logs:
        good = send(live, trader, Probe("POST", "/v1/orders", order(), quiet_id))
        bad = send(live, trader, Probe("POST", "/v1/orders", b"{", loud_id))
        assert (good.status_code, bad.status_code) == (201, 400)
        quiet, loud = access_line(logs, "q-1"), access_line(logs, "l-1")
    assert (quiet["level"], quiet["method"], quiet["path"], quiet["status"]) == (
        "debug",
        "POST",
        "/v1/orders",
        201,
    )
    assert quiet["api_key_prefix"] == trader.api_key[:16]
    assert (loud["level"], loud["status"]) == ("info", 400)
