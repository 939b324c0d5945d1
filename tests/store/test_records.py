"""Service-owned writes: market details, settlement evidence, account names, API keys."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import IntegrityError

from ballast_exchange.store import Database, upsert_market_details
from ballast_exchange.store import queries as q
from ballast_exchange.store import records as r

from .helpers import Recorder, scripted, store_in_batches


@pytest.fixture
def stored(db: Database) -> Database:
    rec = Recorder()
    scripted(rec)
    store_in_batches(db, rec.items, [100])
    return db


def test_market_details(stored: Database) -> None:
    with stored.engine.begin() as conn:
        upsert_market_details(
            conn,
            "bin",
            name="Suez Canal Availability - April 2025",
            question="Will the Suez Canal be available for tanker transits during April 2025?",
            resolution_source="SCA notices",
            settlement_date=1_746_057_540_000,
        )
        market = q.get_market(conn, "bin")
        assert market is not None
        assert market["name"] == "Suez Canal Availability - April 2025"
        assert market["settlement_date"] == 1_746_057_540_000
        assert market["description"] is None
        with pytest.raises(ValueError):
            upsert_market_details(conn, "bin", status="settled")  # engine-owned
        with pytest.raises(LookupError):
            upsert_market_details(conn, "nope", name="x")


def test_settlement_evidence(stored: Database) -> None:
    body = json.dumps({"source": "port authority", "value": 52.1}, sort_keys=True)
    with stored.engine.begin() as conn:
        r.put_evidence(conn, "b" * 64, body, 5)
        r.put_evidence(conn, "b" * 64, body, 6)  # the same evidence again: kept once
        history = q.list_settlements(conn, "idx")
        assert [h["evidence"] for h in history] == [None, body]
        assert [h["final_after"] for h in history] == [h["proposed_at"] for h in history]


def test_account_name(stored: Database) -> None:
    with stored.engine.begin() as conn:
        assert q.get_account(conn, "alice") == {
            "account_id": "alice",
            "name": "alice",
            "created_at": 1_000,
        }
        r.set_account_name(conn, "alice", "Alice Desk")
        account = q.get_account(conn, "alice")
        assert account is not None and account["name"] == "Alice Desk"
        with pytest.raises(LookupError):
            r.set_account_name(conn, "nobody", "x")


def test_api_keys(stored: Database) -> None:
    with stored.engine.begin() as conn:
        r.insert_api_key(
            conn,
            api_key="bmkt_test_1",
            account_id="alice",
            secret_encrypted="enc1",
            scopes=["read", "trade"],
            created_at=10,
            label="bot",
        )
        r.insert_api_key(
            conn,
            api_key="bmkt_test_2",
            account_id="bob",
            secret_encrypted="enc2",
            scopes="read",
            created_at=11,
            tier="mm",
        )
        key = q.get_api_key(conn, "bmkt_test_1")
        assert key == {
            "api_key": "bmkt_test_1",
            "account_id": "alice",
            "secret_encrypted": "enc1",
            "scopes": "read,trade",
            "tier": None,
            "label": "bot",
            "created_at": 10,
            "revoked_at": None,
            "last_used_at": None,
        }
        assert [k["api_key"] for k in q.list_api_keys(conn)] == ["bmkt_test_1", "bmkt_test_2"]
        assert [k["api_key"] for k in q.list_api_keys(conn, "bob")] == ["bmkt_test_2"]
        r.touch_api_keys(conn, {"bmkt_test_1": 20})
        assert r.set_api_key_tier(conn, "bmkt_test_1", "mm")
        assert not r.set_api_key_tier(conn, "nope", "mm")
        assert r.revoke_api_key(conn, "bmkt_test_1", 30)
        assert not r.revoke_api_key(conn, "bmkt_test_1", 31)  # already revoked
        key = q.get_api_key(conn, "bmkt_test_1")
        assert key is not None
        assert (key["last_used_at"], key["revoked_at"], key["tier"]) == (20, 30, "mm")
        assert q.get_api_key(conn, "nope") is None
    with pytest.raises(IntegrityError), stored.engine.begin() as conn:
        r.insert_api_key(
            conn,
            api_key="bmkt_test_1",
            account_id="alice",
            secret_encrypted="x",
            scopes="read",
            created_at=1,
        )
