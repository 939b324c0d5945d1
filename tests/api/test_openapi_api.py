"""The OpenAPI documents and /docs over real HTTP: the docs page loads only assets the server
itself serves; the public document declares the signing headers and applies them exactly where
a signature is enforced, leaves the operator's routes to a document of their own behind the
admin token, lists only the responses each operation gives, and carries the package's version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import metadata
from typing import Any

import httpx
import pytest

from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.scraped_metrics import scrape, value
from tests.signed_client import Admin, signature

SIGNED = [{"ApiKey": [], "Timestamp": [], "Signature": []}]
ENVELOPE = "#/components/schemas/ErrorResponse"

# Every operation's error statuses, as the routes can answer them (docs/api.md "Errors"): 503
# everywhere (the connection cap), 429 where rate limited, 401/403 where auth is checked, 400
# where a parameter or body can be invalid, 404 where something is looked up, 409 where a state
# can refuse, 413 and 415 where a body is taken.
MARKET_DATA = {401, 403, 429, 503}
PRIVATE = {401, 403, 429, 503}
BODY = {400, 413, 415}
PUBLIC_ERRORS = {
    "GET /v1/time": {429, 503},
    "GET /v1/markets": MARKET_DATA | {400},
    "GET /v1/series": MARKET_DATA,
    "GET /v1/events": MARKET_DATA,
    "GET /v1/markets/{market_id}": MARKET_DATA | {404},
    "GET /v1/markets/{market_id}/orderbook": MARKET_DATA | {400, 404},
    "GET /v1/markets/{market_id}/trades": MARKET_DATA | {400, 404},
    "GET /v1/markets/{market_id}/candles": MARKET_DATA | {400, 404},
    "GET /v1/markets/{market_id}/settlement": MARKET_DATA | {404},
    "POST /v1/orders": PRIVATE | BODY | {404, 409},
    "GET /v1/orders": PRIVATE | {400, 404},
    "DELETE /v1/orders": PRIVATE | {404},
    "POST /v1/orders/batch": PRIVATE | BODY,
    "PATCH /v1/orders/batch": PRIVATE | BODY,
    "DELETE /v1/orders/batch": PRIVATE | {400, 413},
    "GET /v1/orders/{order_id}": PRIVATE | {404},
    "PATCH /v1/orders/{order_id}": PRIVATE | BODY | {404, 409},
    "DELETE /v1/orders/{order_id}": PRIVATE | {404, 409},
    "GET /v1/orders/{order_id}/queue_position": PRIVATE | {404, 409},
    "POST /v1/heartbeat": PRIVATE | BODY,
    "DELETE /v1/heartbeat": PRIVATE,
    "POST /v1/order_groups": PRIVATE | BODY,
    "GET /v1/order_groups": PRIVATE,
    "GET /v1/order_groups/{order_group_id}": PRIVATE | {404},
    "POST /v1/order_groups/{order_group_id}/reset": PRIVATE | {404},
    "DELETE /v1/order_groups/{order_group_id}": PRIVATE | {404},
    "GET /v1/account/balance": PRIVATE,
    "GET /v1/positions": PRIVATE | {400},
    "GET /v1/settlements": PRIVATE | {400, 404},
    "GET /v1/account/fees": PRIVATE | {400},
    "GET /v1/fills": PRIVATE | {400, 404},
    "GET /v1/account/ledger": PRIVATE | {400},
    "POST /v1/account/faucet": PRIVATE | BODY,
}
ADMIN = {401, 503}
ADMIN_ERRORS = {
    "POST /v1/admin/accounts": ADMIN | BODY,
    "POST /v1/admin/accounts/{account_id}/{action}": ADMIN | BODY | {404},
    "GET /v1/admin/accounts/{account_id}": ADMIN | {404},
    "POST /v1/admin/keys": ADMIN | BODY | {404},
    "GET /v1/admin/keys": ADMIN,
    "POST /v1/admin/keys/{api_key}/revoke": ADMIN | {404},
    "POST /v1/admin/keys/{api_key}/tier": ADMIN | BODY | {404},
    "POST /v1/admin/markets": ADMIN | BODY | {409},
    "PATCH /v1/admin/markets/{market_id}": ADMIN | BODY | {404},
    "POST /v1/admin/markets/{market_id}/{action}": ADMIN | {400, 404, 409},
    "POST /v1/admin/snapshots": ADMIN,
    "GET /v1/admin/snapshots": ADMIN,
    "GET /v1/admin/state-digest": ADMIN,
    "POST /v1/admin/markets/{market_id}/settlement/propose": ADMIN | BODY | {404, 409},
    "POST /v1/admin/markets/{market_id}/settlement/overturn": ADMIN | {404, 409},
    "POST /v1/admin/markets/{market_id}/settlement/finalize": ADMIN | {404, 409},
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("openapi") / "var", **NO_LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def public(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def operator(live: LiveServer, http: httpx.Client) -> dict[str, Any]:
    response = http.get(
        "/v1/admin/openapi.json", headers={"Authorization": f"Bearer {live.admin_token}"}
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


class References(HTMLParser):
    """Every URL a page makes the browser load: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


# ---------------------------------------------------------------- /docs


def test_docs_load_only_assets_the_server_serves(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert not re.search(r"(https?:)?//[a-z0-9]", html, re.I), "the page names another host"
    parser = References()
    parser.feed(html)
    # The document Swagger UI fetches is named in its set-up script, not in an attribute.
    spec = re.search(r"url: '([^']+)'", html)
    assert spec is not None and spec.group(1) == "/v1/openapi.json"
    assert '"validatorUrl": null' in html  # no badge from the public validator either
    expected = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    kinds = set()
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        suffix = url[url.rfind(".") :]
        asset = http.get(url)
        assert asset.status_code == 200, url
        assert expected[suffix] in asset.headers["content-type"], (url, asset.headers)
        assert asset.content, url
        kinds.add(suffix)
    assert kinds == {".js", ".css", ".png"}
    bundle = next(url for url in parser.urls if url.endswith(".js"))
    # Swagger UI 5 (the first to render OpenAPI 3.1, which the document is).
    assert re.search(rb'"5\.\d+\.\d+"', http.get(bundle).content)
    assert http.get("/v1/openapi.json").json()["openapi"].startswith("3.1")


def test_redoc_is_not_offered(http: httpx.Client) -> None:
    """Only one docs page, the offline one: no CDN-loaded ReDoc beside it."""
    assert http.get("/redoc").status_code == 404


# ---------------------------------------------------------------- security


def test_signing_headers_are_security_schemes(public: dict[str, Any]) -> None:
    schemes = public["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    for name, header in (("Timestamp", "X-BM-Timestamp"), ("Signature", "X-BM-Signature")):
        assert schemes[name]["type"] == "apiKey"
        assert (schemes[name]["in"], schemes[name]["name"]) == ("header", header)


def fill(path: str) -> str:
    return path.replace("{market_id}", "no-such-market").replace("{order_id}", "ord_1")


def test_security_is_declared_exactly_where_a_signature_is_enforced(
    public: dict[str, Any], http: httpx.Client
) -> None:
    """Each operation is sent unsigned: those that declare the signing schemes refuse it with
    401 (nothing runs), and those that declare none answer it."""
    declared = {label: op.get("security") for label, op in operations(public).items()}
    assert SIGNED in declared.values() and None in declared.values()
    for label, security in declared.items():
        assert security in (SIGNED, None), (label, security)
        method, path = label.split(" ")
        response = http.request(method, fill(path))
        if security == SIGNED:
            assert response.status_code == 401, (label, response.text)
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
        else:
            assert response.status_code in (200, 404), (label, response.text)
            assert path.startswith(("/v1/time", "/v1/markets", "/v1/series", "/v1/events"))


# ---------------------------------------------------------------- the operator's document


def test_admin_routes_are_only_in_the_operator_document(
    public: dict[str, Any], operator: dict[str, Any]
) -> None:
    assert not [path for path in public["paths"] if path.startswith("/v1/admin")]
    assert all("admin" not in op.get("tags", []) for op in operations(public).values()), (
        "an operator's operation in the public document"
    )
    assert "AdminToken" not in public["components"]["securitySchemes"]
    assert set(operations(operator)) == set(ADMIN_ERRORS)
    schemes = operator["components"]["securitySchemes"]
    assert set(schemes) == {"AdminToken"}
    assert (schemes["AdminToken"]["type"], schemes["AdminToken"]["scheme"]) == ("http", "bearer")
    for label, operation in operations(operator).items():
        assert operation["security"] == [{"AdminToken": []}], label


def test_operator_document_needs_the_admin_token(live: LiveServer, http: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        response = http.get("/v1/admin/openapi.json", headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    # A trader's key is not the admin token either.
    trader = Admin(live.api, live.admin_token).account("doc reader", deposit=0)
    try:
        assert trader.get("/admin/openapi.json").status_code == 401
    finally:
        trader.close()


# ---------------------------------------------------------------- responses


def error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


@pytest.mark.parametrize("which", ["public", "operator"])
def test_responses_are_those_the_operation_gives(
    which: str, public: dict[str, Any], operator: dict[str, Any]
) -> None:
    document, expected = (public, PUBLIC_ERRORS) if which == "public" else (operator, ADMIN_ERRORS)
    listed = operations(document)
    assert set(listed) == set(expected)
    for label, operation in listed.items():
        assert error_statuses(operation) == expected[label], label
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ENVELOPE}, (label, status)
        # A body's statuses go with a body, and only a body the server holds to its media type
        # (POST, PATCH) draws 415.
        method = label.split(" ")[0]
        takes_body = "requestBody" in operation
        assert (413 in error_statuses(operation)) == takes_body, label
        assert (415 in error_statuses(operation)) == (takes_body and method != "DELETE"), label
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert '"422"' not in str(document).replace("'", '"')


def test_a_delete_body_that_is_not_json_is_a_400(live: LiveServer) -> None:
    """Why DELETE /v1/orders/batch lists 400 and 413 but not 415."""
    trader = Admin(live.api, live.admin_token).account("deleter", deposit=0)
    try:
        ts = str(trader.next_timestamp())
        headers = {
            "Authorization": f"Bearer {trader.api_key}",
            "X-BM-Timestamp": ts,
            "X-BM-Signature": signature(trader.api_secret, ts, "DELETE", "/v1/orders/batch", "x"),
            "Content-Type": "text/plain",
        }
        response = trader.http.request(
            "DELETE", f"{live.api}/orders/batch", content=b"x", headers=headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "INVALID_REQUEST"
    finally:
        trader.close()


def test_a_refused_admin_request_keeps_its_route_label(live: LiveServer) -> None:
    """The access log names routes refused before routing (a 413) from both documents' path
    templates: an operator's route out of the public document is still no ``unmatched``."""
    before = scrape(live)
    response = httpx.post(
        f"{live.api}/admin/markets",
        content=b"{" + b" " * (live.runtime.settings.max_body_bytes + 1) + b"}",
        headers={"Authorization": f"Bearer {live.admin_token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    after = scrape(live)
    labels = {"method": "POST", "route": "/v1/admin/markets", "status": "413"}
    assert value(after, "ballast_http_requests_total", **labels) == (
        value(before, "ballast_http_requests_total", **labels) + 1
    )


# ---------------------------------------------------------------- version


def test_documents_carry_the_package_version(
    public: dict[str, Any], operator: dict[str, Any]
) -> None:
    version = metadata.version("ballast-exchange")
    assert public["info"]["version"] == version
    assert operator["info"]["version"] == version
