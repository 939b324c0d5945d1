"""The dashboard's people and their browser sessions: plain functions on a ``Connection``.

Users sign in with an email (stored normalised: trimmed, lower case) and a password (only its
argon2 hash is stored). A session row is keyed by the SHA-256 of the random token in the
browser's cookie, so a copy of the database cannot be replayed as a login; each session has
its own CSRF token and an absolute expiry. Times are Unix milliseconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from .schema import sessions, users


def insert_user(
    conn: Connection,
    *,
    user_id: str,
    email: str,
    password_hash: str,
    account_id: str,
    created_at: int,
) -> None:
    """Store a new user; the unique email constraint refuses a second one with that email."""
    conn.execute(
        users.insert().values(
            user_id=user_id,
            email=email,
            password_hash=password_hash,
            account_id=account_id,
            created_at=created_at,
        )
    )


def get_user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.email == email)).mappings().first()
    return None if row is None else dict(row)


def set_password_hash(conn: Connection, user_id: str, password_hash: str) -> None:
    """Replace a user's hash (a rehash with stronger parameters after a good login)."""
    conn.execute(
        update(users).where(users.c.user_id == user_id).values(password_hash=password_hash)
    )


def insert_session(
    conn: Connection,
    *,
    token_hash: str,
    user_id: str,
    csrf_token: str,
    created_at: int,
    expires_at: int,
) -> None:
    conn.execute(
        sessions.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


def get_session(conn: Connection, token_hash: str, now: int) -> dict[str, Any] | None:
    """The live session with this token hash, with its user's email and account; None when
    there is none or it has expired."""
    query = (
        select(
            sessions.c.token_hash,
            sessions.c.user_id,
            sessions.c.csrf_token,
            sessions.c.created_at,
            sessions.c.expires_at,
            users.c.email,
            users.c.account_id,
        )
        .join(users, users.c.user_id == sessions.c.user_id)
        .where(sessions.c.token_hash == token_hash, sessions.c.expires_at > now)
    )
    row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def delete_session(conn: Connection, token_hash: str) -> bool:
    """End a session (logout); False when there was none."""
    result = conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
    return result.rowcount > 0


def delete_expired_sessions(conn: Connection, now: int) -> int:
    """Drop sessions past their expiry; how many went."""
    result = conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
    return int(result.rowcount)
