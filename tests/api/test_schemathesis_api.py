"""Schemathesis against a live server's own OpenAPI documents: the public one
(``/v1/openapi.json``) and the operator's (``/v1/admin/openapi.json``, read with the admin token).

One SQLite server serves the module. Every operation in the document is fuzzed in both
generation modes (data that fits the schema, and data that does not); each response goes
through schemathesis' checks: no 5xx, a documented status code, a documented content type, a
body matching the declared response schema. Findings are collected across the whole run (one
example of each distinct problem) and asserted by the tests below, so one run reports them all.

Private endpoints are signed per request, over the exact bytes on the wire (a ``requests`` auth
hook sees the prepared request: its path with the query string and its body); admin endpoints
carry the admin token. Generated ids are steered, part of the time, onto a real open market
with resting liquidity, real order ids and a scratch account / market / key, so that orders
reach the engine, trade, and get amended and canceled.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.control import SkipTest
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.databases import fresh_database
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin

# Per operation and generation mode; the whole module stays well under 60 s. A longer run:
# BALLAST_FUZZ_EXAMPLES=300 (a few minutes; docs/operations.md records the last one).
MAX_EXAMPLES = int(os.environ.get("BALLAST_FUZZ_EXAMPLES", "20"))
MARKET = "st-binary"  # open, tick 0.01, with resting orders on both sides
ADMIN_MARKET = "st-admin"  # the only market the fuzzed admin endpoints may move
# Closed markets with a settlement proposed, for the fuzzed finalize to land on.
PROPOSED_MARKETS = [f"st-proposed-{n}" for n in range(5)]
PRIVATE = (
    "/v1/orders",
    "/v1/fills",
    "/v1/positions",
    "/v1/settlements",
    "/v1/account",
    "/v1/heartbeat",
    "/v1/order_groups",
)
PRICES = [round(0.01 * n, 2) for n in range(1, 100)]
UNSCHEMATIC = ("cursor", "expire_at", "settlement_date")
UNSCHEMATIC_OPERATIONS = (
    "POST /v1/admin/markets",
    "POST /v1/admin/markets/{market_id}/settlement/propose",
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Finding:
    """One distinct problem, with the first request that showed it."""

    check: str
    operation: str
    status: int
    title: str
    request: str
    response: str

    def __str__(self) -> str:
        return (
            f"[{self.check}] {self.operation} -> {self.status}: {self.title}\n"
            f"    request:  {self.request}\n    response: {self.response}"
        )


@dataclass
class FuzzRun:
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    order_refs: list[str] = field(default_factory=list)  # every order the fuzzer placed
    open_refs: list[str] = field(default_factory=list)  # those that rested on the book
    group_refs: list[str] = field(default_factory=list)  # every order group it created
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    after: str = ""  # the seeded key's GET /account/balance once fuzzing is over

    def __repr__(self) -> str:
        requests_sent = sum(sum(counts.values()) for counts in self.statuses.values())
        return (
            f"FuzzRun({len(self.statuses)} operations, {requests_sent} requests in "
            f"{self.seconds:.1f} s, {len(self.findings)} findings)"
        )

    def of(self, check: str) -> list[Finding]:
        return [f for f in self.findings.values() if f.check == check]


class Signer(requests.auth.AuthBase):
    """Signs the prepared request: timestamp + METHOD + path-with-query + the body bytes sent."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.last_ms = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        # Later than the last: the server refuses a signature it has already seen.
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        timestamp = str(self.last_ms)
        message = f"{timestamp}{request.method}{request.path_url}".encode() + raw
        digest = hmac.new(self.api_secret.encode(), message, hashlib.sha256).hexdigest()
        request.headers["Authorization"] = f"Bearer {self.api_key}"
        request.headers["X-BM-Timestamp"] = timestamp
        request.headers["X-BM-Signature"] = digest
        return request


@dataclass
class Target:
    """The live server, its credentials, and the real ids generated requests are steered to."""

    server: LiveServer
    signer: Signer
    scratch_account: str
    scratch_key: str
    session: requests.Session
    run: FuzzRun


Draw = Callable[[st.SearchStrategy[Any]], Any]


def sometimes(draw: Draw) -> bool:
    return bool(draw(st.booleans()))


def often(draw: Draw) -> bool:
    return bool(draw(st.integers(0, 3)))


def steer_order(order: Any, draw: Draw) -> None:
    """Point a generated order at the real market with a price on its grid, in no order group
    (a made-up one is refused), part of the time."""
    if not isinstance(order, dict) or not often(draw):
        return
    order.pop("order_group_id", None)
    order["market_id"] = MARKET
    order["size"] = draw(st.integers(1, 50))
    if order.get("type", "limit") == "limit" or "price" in order:
        price = draw(st.sampled_from(PRICES))
        order["price"] = draw(st.sampled_from([price, str(price)]))
    if sometimes(draw):
        order.pop("expire_at", None)
        order.pop("time_in_force", None)


def steer_batch_ids(body: dict[str, Any], draw: Draw, target: Target) -> None:
    """Aim a batch cancel's ids or a batch amend's items at orders the run placed, with prices
    on the grid, part of the time (the same draws whatever the run has placed so far)."""
    steer_it, index = often(draw), draw(st.integers(0, 10**6))
    price, size = draw(st.sampled_from(PRICES)), draw(st.integers(1, 50))
    refs = target.run.open_refs or target.run.order_refs
    if not steer_it or not refs:
        return
    ids = body.get("order_ids")
    if isinstance(ids, list):
        body["order_ids"] = [refs[(index + i) % len(refs)] for i in range(len(ids))]
    items = body.get("orders")
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                item.update(order_id=refs[(index + i) % len(refs)], price=price, size=size)


def steer(case: schemathesis.Case, draw: Draw, target: Target) -> None:
    """Replace generated ids and values with real ones, part of the time."""
    path = case.operation.path
    method = case.method.upper()
    admin = path.startswith("/v1/admin")
    params = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    query = case.query if isinstance(case.query, dict) else {}
    body = case.body
    if "market_id" in params and sometimes(draw):
        params["market_id"] = ADMIN_MARKET if admin else MARKET
        if path.endswith("/settlement/finalize"):
            params["market_id"] = draw(st.sampled_from(PROPOSED_MARKETS))
    if "order_id" in params:
        # Draw the same choices whatever the run has placed so far (hypothesis replays a case
        # and must see the same draws); the lists grow, so an index picks from them.
        steer_it, open_only, index = often(draw), often(draw), draw(st.integers(0, 10**6))
        refs = (target.run.open_refs if open_only else []) or target.run.order_refs
        if steer_it and refs:
            params["order_id"] = refs[index % len(refs)]
    if "order_group_id" in params:
        steer_it, index = often(draw), draw(st.integers(0, 10**6))
        if steer_it and target.run.group_refs:
            params["order_group_id"] = target.run.group_refs[index % len(target.run.group_refs)]
    if "account_id" in params and sometimes(draw):
        params["account_id"] = target.scratch_account
    if "api_key" in params and sometimes(draw):
        params["api_key"] = target.scratch_key
    if "market_id" in query and sometimes(draw):
        query["market_id"] = MARKET
    if "account_id" in query and sometimes(draw):
        query["account_id"] = target.scratch_account
    if not isinstance(body, dict):
        return
    if path == "/v1/orders" and method == "POST":
        steer_order(body, draw)
    elif path == "/v1/orders/batch" and method == "POST" and isinstance(body.get("orders"), list):
        for order in body["orders"]:
            steer_order(order, draw)
    elif path == "/v1/orders/batch":  # batch cancel (DELETE) and amend (PATCH)
        steer_batch_ids(body, draw, target)
    elif path == "/v1/heartbeat" and body.get("timeout_s") not in (None, 0):
        # Disarm instead: an armed switch would cancel the fuzzer's orders in mid-run.
        body["timeout_s"] = 0
    elif method == "PATCH" and path.startswith("/v1/orders/") and often(draw):
        body.update(price=draw(st.sampled_from(PRICES)), size=draw(st.integers(1, 50)))
    elif path.startswith("/v1/admin/accounts/") and sometimes(draw):
        body["amount"] = draw(st.sampled_from(["10", 5, "0.5", 1000.25]))
    elif path == "/v1/admin/keys" and sometimes(draw):
        body["account_id"] = target.scratch_account
    elif path.endswith("/tier") and sometimes(draw):
        body["tier"] = draw(st.sampled_from(["standard", "market_maker", "600", None]))
    elif path == "/v1/admin/markets" and sometimes(draw):
        body.update(close_time=4_102_444_800_000, tick_size="0.01")
        for name in ("floor", "cap", "settlement_date"):
            body.pop(name, None)


def describe_request(response: schemathesis.Response) -> str:
    request = response.request
    body = request.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return f"{request.method} {request.url}" + (f" body={body[:400]}" if body else "")


def remember_orders(run: FuzzRun, label: str, response: schemathesis.Response) -> None:
    """Keep the ids of orders the fuzzer placed (and of those still open), to aim requests at."""
    if response.status_code not in (200, 201):
        return
    data = response.json()
    if label == "POST /v1/order_groups":
        run.group_refs.append(data["order_group_id"])
        return
    if label == "POST /v1/orders":
        orders = [data]
    elif label == "POST /v1/orders/batch":
        orders = [r["order"] for r in data["results"] if r.get("status") == 201]
    elif label == "DELETE /v1/orders":
        run.open_refs[:] = [ref for ref in run.open_refs if ref not in set(data["canceled"])]
        return
    elif label in ("DELETE /v1/orders/{order_id}", "PATCH /v1/orders/{order_id}"):
        if data["status"] != "open" and data["order_id"] in run.open_refs:
            run.open_refs.remove(data["order_id"])
        return
    else:
        return
    for order in orders:
        run.order_refs.append(order["order_id"])
        if order["status"] == "open":
            run.open_refs.append(order["order_id"])


def order_of_play(operation: Any) -> int:
    """Place and amend orders before cancelling one, then all, and read and reset order groups
    before deleting one; fuzz admin endpoints last."""
    if operation.path.startswith("/v1/admin"):
        return 3
    if operation.method.upper() == "DELETE" and operation.path.startswith("/v1/order_groups"):
        return 1
    if operation.method.upper() == "DELETE" and operation.path.startswith("/v1/orders"):
        return 1 if "{order_id}" in operation.path else 2
    return 0


def exercise(
    case: schemathesis.Case, draw: Draw, target: Target, mode: schemathesis.GenerationMode
) -> None:
    """Send one generated request (signed if private) and record what the checks say."""
    steer(case, draw, target)
    path = case.operation.path
    headers: dict[str, str] = {}
    auth = None
    if path.startswith("/v1/admin"):
        headers["Authorization"] = f"Bearer {target.server.admin_token}"
    elif path.startswith(PRIVATE):
        auth = target.signer
    response = case.call(
        base_url=target.server.url, session=target.session, headers=headers, auth=auth
    )
    run = target.run
    label = case.operation.label
    run.statuses[label][response.status_code] += 1
    remember_orders(run, label, response)
    if mode is schemathesis.GenerationMode.POSITIVE and response.status_code == 400:
        # The document admitted this request: validation must not call it malformed (business
        # refusals such as INVALID_PRICE off a market's grid are another matter).
        error = response.json().get("error") or {}
        field = (error.get("details") or {}).get("field")
        # Refusals no schema can state: a cursor is opaque (only one this server gave out is
        # good), a GTD expiry must lie in the future when the order arrives, a market's floor,
        # cap and tick must fit together, and settlement evidence needs an RFC 8785 form
        # (integers within 2^53) at any depth, and a market's settlement date lies in years
        # 1970 to 9999 (docs/api.md lists those rules).
        unschematic = field in UNSCHEMATIC or label in UNSCHEMATIC_OPERATIONS
        if error.get("code") == "INVALID_REQUEST" and not unschematic:
            key = ("schema_valid_refused", label, response.text[:120])
            run.findings.setdefault(
                key,
                Finding(
                    check="schema_valid_refused",
                    operation=label,
                    status=400,
                    title="a request the document admits is refused as INVALID_REQUEST",
                    request=describe_request(response),
                    response=response.text[:400],
                ),
            )
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            check = failure.checks[0] if failure.checks else failure.code
            key = (check, label, f"{response.status_code}:{failure.title}")
            run.findings.setdefault(
                key,
                Finding(
                    check=check,
                    operation=label,
                    status=response.status_code,
                    title=failure.title,
                    request=describe_request(response),
                    response=response.text[:400],
                ),
            )


def fuzz(operation: Any, mode: schemathesis.GenerationMode, target: Target) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        exercise(case, data.draw, target, mode)

    # One mode at a time: in a negative-only run schemathesis says at the first draw when an
    # operation has nothing it can break (no body, no query, path parameters any string fits),
    # instead of hypothesis giving up after hundreds of rejected draws.
    operation.schema.config.generation.update(modes=[mode])
    try:
        run()
    except (Unsatisfiable, SkipTest):
        # Nothing to break in an operation without parameters or body (GET /time, /positions).
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise


def seed(server: LiveServer) -> tuple[Admin, Any, str, str]:
    """A fuzzing account, a counterparty quoting both sides, and the scratch account and key."""
    admin = Admin(server.api, server.admin_token)
    admin.market(MARKET, tick_size="0.01")
    admin.post(
        "/markets",
        {"id": ADMIN_MARKET, "name": "admin", "type": "binary", "close_time": 4_102_444_800_000},
    )
    trader = admin.account("fuzzer", deposit=1_000_000)
    maker = admin.account("maker", deposit=1_000_000)
    for n in range(10):
        for side, price in (("buy", 0.30 + n * 0.02), ("sell", 0.52 + n * 0.02)):
            order = {"market_id": MARKET, "side": side, "price": round(price, 2), "size": 500}
            placed = maker.post("/orders", order)
            assert placed.status_code == 201, placed.text
    for market_id in PROPOSED_MARKETS:
        admin.market(market_id)
        admin.post(f"/markets/{market_id}/close")
        admin.post(
            f"/markets/{market_id}/settlement/propose", {"value": 1, "evidence": {"n": market_id}}
        )
    scratch = admin.post("/accounts", {"name": "scratch", "deposit": 100})
    return admin, trader, scratch["account_id"], scratch["api_key"]


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzRun]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    with (
        fresh_database("sqlite", tmp) as url,
        # No dispute window, so that a fuzzed finalize can follow a fuzzed proposal.
        live_server(tmp / "var", database_url=url, dispute_window_s=0, **NO_LIMITS) as server,
        requests.Session() as session,
    ):
        admin, trader, scratch_account, scratch_key = seed(server)
        schemas = [
            schemathesis.openapi.from_url(f"{server.api}/openapi.json"),
            schemathesis.openapi.from_url(
                f"{server.api}/admin/openapi.json",
                headers={"Authorization": f"Bearer {server.admin_token}"},
            ),
        ]
        for schema in schemas:
            # The signing headers and the admin token the documents declare are set on the
            # wire (Signer, the call's headers) over whatever is generated: drawing them would
            # only send the same request again, and give every operation a negative mode.
            schema.config.generation.update(with_security_parameters=False)
        run = FuzzRun()
        target = Target(
            server,
            Signer(trader.api_key, trader.api_secret),
            scratch_account,
            scratch_key,
            session,
            run,
        )
        started = time.monotonic()
        operations = [result.ok() for schema in schemas for result in schema.get_all_operations()]
        for operation in sorted(operations, key=order_of_play):
            began = time.monotonic()
            for mode in schemathesis.GenerationMode:
                fuzz(operation, mode, target)
            run.timings[operation.label] = time.monotonic() - began
        run.seconds = time.monotonic() - started
        after = trader.get("/account/balance")
        run.after = f"{after.status_code} {after.text[:300]}"
        print(f"\n{run!r}")  # shown with -s: what a long run covered
        admin.http.close()
        trader.close()
        yield run


def report(findings: list[Finding]) -> str:
    return f"{len(findings)} problem(s):\n" + "\n".join(str(f) for f in findings)


def test_no_server_errors(fuzz_run: FuzzRun) -> None:
    problems = fuzz_run.of("not_a_server_error")
    assert not problems, report(problems)


def test_the_document_and_validation_agree(fuzz_run: FuzzRun) -> None:
    refused = fuzz_run.of("schema_valid_refused")
    assert not refused, report(refused)


def test_exchange_still_serves_after_fuzzing(fuzz_run: FuzzRun) -> None:
    """Whatever was sent, the exchange keeps taking commands (the seeded key still works)."""
    assert fuzz_run.after.startswith("200 "), fuzz_run.after


def test_status_codes_are_documented(fuzz_run: FuzzRun) -> None:
    problems = fuzz_run.of("status_code_conformance")
    assert not problems, report(problems)


def test_content_types_are_documented(fuzz_run: FuzzRun) -> None:
    problems = fuzz_run.of("content_type_conformance")
    assert not problems, report(problems)


def test_response_bodies_match_their_schemas(fuzz_run: FuzzRun) -> None:
    problems = fuzz_run.of("response_schema_conformance")
    assert not problems, report(problems)


def test_every_operation_was_exercised(fuzz_run: FuzzRun) -> None:
    """Each operation answered at least once with success: the requests reached the engine."""
    assert len(fuzz_run.statuses) >= 26
    never_succeeded = {
        label: dict(counts)
        for label, counts in fuzz_run.statuses.items()
        if not any(200 <= status < 300 for status in counts)
    }
    assert not never_succeeded, f"never a 2xx: {never_succeeded}"
    placed = fuzz_run.statuses["POST /v1/orders"]
    assert placed[201] >= 3, dict(placed)
    assert fuzz_run.order_refs
