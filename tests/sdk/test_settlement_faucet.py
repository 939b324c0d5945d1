"""Settlement records, whose evidence hashes anyone can check, and the sandbox faucet, whose
daily cap is raised at once rather than waited out; sync and async, against real servers."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from ballast import (
    AsyncBallastClient,
    Balance,
    BallastClient,
    FaucetGrant,
    FaucetLimitError,
    MarketNotFoundError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    SettlementProposal,
    SettlementRecord,
)
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.sdk.conftest import unique
from tests.signed_client import Admin

EVIDENCE: dict[str, Any] = {
    "source": "Suez Canal Authority",
    "transits": 1204,
    "share": 0.87,
    "notices": ["open", "Ünïcödé ⛴"],
    "confirmed": True,
    "note": None,
}
USDC = 1_000_000
FAUCET = {"faucet_amount": 1_000 * USDC, "faucet_daily_cap": 2_500 * USDC}
# Long enough that a client treating the faucet cap as a rate limit would wait it out.
PATIENT: dict[str, Any] = {"max_retries": 3, "max_retry_wait": 2 * 86_400.0}


def closed_market(admin: Admin) -> str:
    market_id = unique("settle")
    admin.market(market_id)
    admin.post(f"/markets/{market_id}/close")
    return market_id


def propose(admin: Admin, market_id: str, value: Any, evidence: dict[str, Any]) -> None:
    admin.post(f"/markets/{market_id}/settlement/propose", {"value": value, "evidence": evidence})


def assert_evidence(proposal: SettlementProposal, evidence: dict[str, Any]) -> None:
    """The published evidence, checked independently of the SDK's own ``verify``."""
    canonical = rfc8785.dumps(evidence)
    assert proposal.evidence_canonical == canonical.decode("utf-8")
    assert proposal.evidence_hash == hashlib.sha256(canonical).hexdigest()
    assert proposal.hash_matches and proposal.verify()


# ----------------------------------------------------------------------------- settlement


def test_settlement_before_and_after_proposals(server: LiveServer, admin: Admin) -> None:
    market_id = closed_market(admin)
    with BallastClient(base_url=server.api) as public:  # no key: the record is public
        empty = public.get_settlement(market_id)
        assert isinstance(empty, SettlementRecord)
        assert (empty.market_id, empty.status) == (market_id, "closed")
        assert empty.hash_algorithm.startswith("sha256")
        assert (empty.current, empty.proposals) == (None, [])
        assert empty.verify() and empty.hash_matches  # nothing published, nothing wrong
        assert public.get_market(market_id).settlement is None

        propose(admin, market_id, 1, EVIDENCE)
        record = public.get_settlement(market_id)
        assert record.status == "resolving"
        current = record.current
        assert current is not None and record.proposals == [current]
        assert current.value == Decimal(1) and isinstance(current.value, Decimal)
        assert current.evidence is not None
        assert current.evidence["share"] == Decimal("0.87")  # decimals stay exact
        assert current.evidence["notices"] == EVIDENCE["notices"]
        assert (current.proposer, current.outcome) == ("operator", "proposed")
        assert (current.decided_by, current.decided_at) == (None, None)
        assert current.proposed_at is not None and current.dispute_ends_at is not None
        assert current.proposed_at.tzinfo is not None
        assert current.dispute_ends_at > current.proposed_at
        assert_evidence(current, EVIDENCE)
        assert record.verify() and record.hash_matches

        # The market's own settlement summary points at the same proposal.
        summary = public.get_market(market_id).settlement
        assert summary is not None and not summary.final
        assert summary.value == current.value
        assert summary.evidence_hash == current.evidence_hash
        assert summary.dispute_ends_at == current.dispute_ends_at

        # Overturned proposals stay on the record, oldest first.
        admin.post(f"/markets/{market_id}/settlement/overturn")
        second = {"source": "Suez Canal Authority", "transits": 0, "closed": ["north", "south"]}
        propose(admin, market_id, 0, second)
        record = public.get_settlement(market_id)
        first, latest = record.proposals
        assert (first.outcome, first.decided_by) == ("overturned", "operator")
        assert first.decided_at is not None
        assert record.current == latest and latest.value == Decimal(0)
        assert_evidence(first, EVIDENCE)
        assert_evidence(latest, second)
        assert record.verify()

        with pytest.raises(MarketNotFoundError):
            public.get_settlement("atlantis-2099")


def test_a_tampered_record_does_not_verify(server: LiveServer, admin: Admin) -> None:
    market_id = closed_market(admin)
    propose(admin, market_id, 1, EVIDENCE)
    with BallastClient(base_url=server.api) as public:
        record = public.get_settlement(market_id)
    current = record.current
    assert current is not None and current.evidence_canonical is not None and record.verify()
    canonical = current.evidence_canonical
    assert current.evidence is not None
    shown = current.evidence

    def tampered(**changes: Any) -> SettlementProposal:
        return dataclasses.replace(current, **changes)

    wrong_hash = tampered(evidence_hash=hashlib.sha256(b"{}").hexdigest())
    assert not wrong_hash.hash_matches and not wrong_hash.verify()
    edited = tampered(evidence_canonical=canonical.replace("1204", "1205"))
    assert not edited.hash_matches and not edited.verify()
    missing = tampered(evidence_canonical=None)
    assert not missing.hash_matches and not missing.verify()
    # The hash still matches the canonical text, but the evidence shown is not that text.
    for evidence in (
        {**shown, "transits": 1205},
        {**shown, "confirmed": 1},  # a number is not a boolean
        {**shown, "notices": ["open"]},
        {**shown, "extra": "x"},
    ):
        swapped = tampered(evidence=evidence)
        assert swapped.hash_matches and not swapped.verify()

    # One bad proposal anywhere fails the record, current or earlier.
    assert not dataclasses.replace(record, current=edited).verify()
    assert not dataclasses.replace(record, proposals=[edited]).verify()
    # The same from the wire: a record whose canonical evidence was altered in transit.
    raw = {
        "market_id": market_id,
        "status": "resolving",
        "hash_algorithm": record.hash_algorithm,
        "current": None,
        "proposals": [
            {
                "value": 1,
                "evidence_hash": current.evidence_hash,
                "evidence": {"a": 1},
                "evidence_canonical": '{"a":2}',
                "proposer": "operator",
                "proposed_at": "2025-03-15T10:31:05.000Z",
                "dispute_ends_at": "2025-03-16T10:31:05.000Z",
                "outcome": "proposed",
                "decided_by": None,
                "decided_at": None,
            }
        ],
    }
    assert not SettlementRecord.from_dict(raw).verify()


def test_async_get_settlement(server: LiveServer, admin: Admin) -> None:
    market_id = closed_market(admin)

    async def scenario() -> None:
        async with AsyncBallastClient(base_url=server.api) as public:
            assert (await public.get_settlement(market_id)).current is None
            propose(admin, market_id, 1, EVIDENCE)
            record = await public.get_settlement(market_id)
            assert record.current is not None and record.verify()
            assert_evidence(record.current, EVIDENCE)
            market = await public.get_market(market_id)
            assert market.settlement is not None
            assert market.settlement.dispute_ends_at == record.current.dispute_ends_at
            with pytest.raises(MarketNotFoundError):
                await public.get_settlement("atlantis-2099")

    asyncio.run(scenario())


# ----------------------------------------------------------------------------- faucet


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Admin]]:
    """A sandbox whose faucet gives 1,000 USDC a call, at most 2,500 a day."""
    data_dir: Path = tmp_path_factory.mktemp("faucet") / "var"
    with live_server(data_dir, env="sandbox", **FAUCET, **NO_LIMITS) as server:
        boss = Admin(server.api, server.admin_token)
        yield server, boss
        boss.http.close()


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Admin]]:
    data_dir: Path = tmp_path_factory.mktemp("production") / "var"
    with live_server(data_dir, env="production", **NO_LIMITS) as server:
        boss = Admin(server.api, server.admin_token)
        yield server, boss
        boss.http.close()


def unfunded(admin: Admin) -> dict[str, Any]:
    return admin.post("/accounts", {"name": unique("faucet"), "deposit": 0})


def no_sleeping(seconds: float) -> None:
    raise AssertionError(f"the client slept {seconds} s on a faucet refusal")


def assert_capped(error: FaucetLimitError, granted: str, requested: str) -> None:
    assert (error.code, error.status) == ("FAUCET_LIMIT_EXCEEDED", 429)
    assert isinstance(error, RateLimitError)
    assert error.details["daily_cap"] == Decimal(2500)
    assert error.details["granted_today"] == Decimal(granted)
    assert error.details["requested"] == Decimal(requested)
    resets_at = error.resets_at
    assert resets_at is not None and resets_at.tzinfo is not None
    assert (resets_at.hour, resets_at.minute, resets_at.second) == (0, 0, 0)
    assert error.retry_after is not None and 0 < error.retry_after <= 86_400
    until_reset = (resets_at - datetime.now(UTC)).total_seconds()
    assert abs(until_reset - error.retry_after) < 5


def test_faucet_grants_then_refuses_at_once_past_the_cap(
    sandbox: tuple[LiveServer, Admin],
) -> None:
    server, admin = sandbox
    account = unfunded(admin)
    with BallastClient(
        account["api_key"], account["api_secret"], base_url=server.api, **PATIENT
    ) as client:
        client._sleep = no_sleeping  # type: ignore[method-assign]
        grant = client.request_faucet()  # the server's default amount
        assert isinstance(grant, FaucetGrant) and isinstance(grant.balance, Balance)
        assert (grant.amount, grant.granted_today, grant.daily_cap) == (
            Decimal(1000),
            Decimal(1000),
            Decimal(2500),
        )
        assert grant.balance.total_balance == grant.balance.available == Decimal(1000)

        grant = client.request_faucet("1000.5")
        assert (grant.amount, grant.granted_today) == (Decimal("1000.5"), Decimal("2000.5"))
        assert grant.balance.total_balance == Decimal("2000.5")

        started = time.monotonic()
        with pytest.raises(FaucetLimitError) as caught:
            client.request_faucet()
        assert time.monotonic() - started < 2  # refused at once, never waited out
        assert_capped(caught.value, "2000.5", "1000")
        assert client.get_balance().total_balance == Decimal("2000.5")  # nothing moved

        # Up to the cap exactly is still granted; a float goes as str(float).
        grant = client.request_faucet(amount=499.5)
        assert (grant.amount, grant.granted_today) == (Decimal("499.5"), Decimal(2500))
        with pytest.raises(FaucetLimitError) as again:
            client.request_faucet(Decimal("0.01"))
        assert_capped(again.value, "2500", "0.01")
        assert client.get_balance().total_balance == Decimal(2500)


def test_the_retry_policy_never_waits_out_a_faucet_cap() -> None:
    policy = RetryPolicy(max_retries=3, max_retry_wait=10**9)
    capped = FaucetLimitError("capped", status=429, retry_after=1.0)
    limited = RateLimitError("limited", status=429, retry_after=1.0)
    assert policy.delay(0, True, capped, retry_after=1.0) is None
    assert policy.delay(0, True, limited, retry_after=1.0) is not None


def test_async_faucet(sandbox: tuple[LiveServer, Admin]) -> None:
    server, admin = sandbox
    account = unfunded(admin)

    async def no_waiting(seconds: float) -> None:
        no_sleeping(seconds)

    async def scenario() -> None:
        async with AsyncBallastClient(
            account["api_key"], account["api_secret"], base_url=server.api, **PATIENT
        ) as client:
            client._sleep = no_waiting  # type: ignore[method-assign]
            grant = await client.request_faucet()
            assert (grant.amount, grant.balance.total_balance) == (Decimal(1000), Decimal(1000))
            grant = await client.request_faucet(amount=Decimal("1000.5"))
            assert grant.granted_today == Decimal("2000.5")
            started = time.monotonic()
            with pytest.raises(FaucetLimitError) as caught:
                await client.request_faucet()
            assert time.monotonic() - started < 2
            assert_capped(caught.value, "2000.5", "1000")
            assert (await client.get_balance()).total_balance == Decimal("2000.5")

    asyncio.run(scenario())


def test_production_has_no_faucet(production: tuple[LiveServer, Admin]) -> None:
    server, admin = production
    account = admin.post("/accounts", {"name": unique("desk"), "deposit": 100})
    with BallastClient(account["api_key"], account["api_secret"], base_url=server.api) as client:
        with pytest.raises(NotFoundError) as caught:
            client.request_faucet()
        assert type(caught.value) is NotFoundError
        assert (caught.value.code, caught.value.status) == ("NOT_FOUND", 404)
        assert client.get_balance().total_balance == Decimal(100)

    async def scenario() -> None:
        async with AsyncBallastClient(
            account["api_key"], account["api_secret"], base_url=server.api
        ) as client:
            with pytest.raises(NotFoundError) as caught:
                await client.request_faucet(amount="5000")
            assert caught.value.code == "NOT_FOUND"

    asyncio.run(scenario())


def test_resets_at_reads_the_servers_time() -> None:
    error = FaucetLimitError(
        "capped", details={"resets_at": "2025-03-16T00:00:00.000Z"}, retry_after=60.0
    )
    assert error.resets_at == datetime(2025, 3, 16, tzinfo=UTC)
    assert error.resets_at - timedelta(days=1) == datetime(2025, 3, 15, tzinfo=UTC)
    assert FaucetLimitError("capped").resets_at is None
