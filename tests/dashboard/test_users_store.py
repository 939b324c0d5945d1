"""The store's users and sessions (``store/users.py``) on SQLite and PostgreSQL, migrated by
Alembic: unique emails, sessions found only by their token hash and only until they expire."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ballast_exchange.store import Database
from ballast_exchange.store import users as store
from ballast_exchange.store.schema import accounts
from tests.databases import fresh_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    tmp: Path = tmp_path_factory.mktemp(f"users-{request.param}")
    with fresh_database(request.param, tmp) as url:
        db = Database(url)
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()


def add_user(conn: Connection, n: int) -> str:
    conn.execute(accounts.insert().values(account_id=f"acc_{n}", name=f"a{n}", created_at=1))
    store.insert_user(
        conn,
        user_id=f"usr_{n}",
        email=f"u{n}@example.com",
        password_hash="$argon2id$…",
        account_id=f"acc_{n}",
        created_at=1,
    )
    return f"usr_{n}"


def test_users_and_sessions(database: Database) -> None:
    with database.engine.begin() as conn:
        user_id = add_user(conn, 1)
        store.insert_session(
            conn, token_hash="live", user_id=user_id, csrf_token="c1", created_at=1, expires_at=100
        )
        store.insert_session(
            conn, token_hash="old", user_id=user_id, csrf_token="c2", created_at=1, expires_at=50
        )
    with database.engine.connect() as conn:
        found = store.get_session(conn, "live", now=60)
        assert found is not None
        assert (found["email"], found["account_id"], found["csrf_token"]) == (
            "u1@example.com",
            "acc_1",
            "c1",
        )
        assert store.get_session(conn, "old", now=60) is None  # expired
        assert store.get_session(conn, "live", now=100) is None  # expiry is exclusive
        assert store.get_user_by_email(conn, "u1@example.com")["user_id"] == user_id
        assert store.get_user_by_email(conn, "nobody@example.com") is None
    with database.engine.begin() as conn:
        assert store.delete_expired_sessions(conn, now=60) == 1
        store.set_password_hash(conn, user_id, "$argon2id$new")
        assert store.delete_session(conn, "live") is True
        assert store.delete_session(conn, "live") is False
    with database.engine.connect() as conn:
        assert store.get_session(conn, "live", now=60) is None
        assert store.get_user_by_email(conn, "u1@example.com")["password_hash"] == "$argon2id$new"


def test_an_email_belongs_to_one_user(database: Database) -> None:
    with database.engine.begin() as conn:
        add_user(conn, 2)
    with pytest.raises(IntegrityError), database.engine.begin() as conn:
        conn.execute(accounts.insert().values(account_id="acc_3", name="a3", created_at=1))
        store.insert_user(
            conn,
            user_id="usr_3",
            email="u2@example.com",
            password_hash="x",
            account_id="acc_3",
            created_at=1,
        )
