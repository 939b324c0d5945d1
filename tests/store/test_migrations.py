"""Migrations create exactly ``schema.metadata``, downgrade cleanly, and the engine is set up
as DESIGN §6 needs (SQLite: WAL, synchronous FULL, foreign keys, busy timeout)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ballast_exchange.store import Database, normalize_url
from ballast_exchange.store.__main__ import main as cli_main
from ballast_exchange.store.database import MIGRATIONS_DIR
from ballast_exchange.store.schema import ALL_TABLES, metadata

TABLES = {table.name for table in ALL_TABLES}
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def test_upgrade_creates_the_schema_exactly(db_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the migrations are found from the package, not the cwd
    db = Database(db_url)
    try:
        db.upgrade()
        assert _tables(db) == TABLES | {"alembic_version"}
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert context.get_current_revision() == HEAD
        db.upgrade()  # already at head: nothing to do
    finally:
        db.dispose()


def test_downgrade_removes_everything_and_upgrade_again(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade()
        db.downgrade("base")
        assert _tables(db) == {"alembic_version"}
        with db.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() is None
        db.upgrade()
        assert _tables(db) == TABLES | {"alembic_version"}
    finally:
        db.dispose()


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")  # creates the dirs
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    finally:
        db.dispose()


def test_sqlite_transactions_roll_back(tmp_path: Path) -> None:
    """Real BEGIN/ROLLBACK: a failed batch leaves nothing behind (DESIGN §6)."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        db.upgrade()
        with pytest.raises(RuntimeError), db.engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts VALUES ('a', 'a', 1)"))
            raise RuntimeError
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM accounts")).scalar() == 0
    finally:
        db.dispose()


def test_foreign_keys_are_enforced(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (api_key, account_id, secret_encrypted, scopes, label,"
                " created_at) VALUES ('k', 'nobody', 's', 'read', '', 1)"
            )
        )


def test_url_normalisation() -> None:
    assert normalize_url("postgresql://u@h:5432/d") == "postgresql+psycopg://u@h:5432/d"
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ValueError):
        Database("mysql://u@h/d")


def test_alembic_without_a_passed_connection(db_url: str) -> None:
    """env.py connects by itself when run the classic way (config URL, no connection)."""
    db = Database(db_url)
    try:
        command.upgrade(db.alembic_config(), "head")
        assert _tables(db) == TABLES | {"alembic_version"}
        command.downgrade(db.alembic_config(), "base")
        assert _tables(db) == {"alembic_version"}
    finally:
        db.dispose()


@pytest.mark.parametrize("url", ["sqlite:///unused.db", "postgresql://u@localhost/unused"])
def test_offline_sql_script(url: str) -> None:
    """``alembic upgrade --sql`` renders the DDL without touching a database."""
    config = Database(url).alembic_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    script = buffer.getvalue()
    for table in TABLES:
        assert f"CREATE TABLE {table}" in script


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli_main(["--database-url", url, "upgrade"]) == 0
    assert f"{HEAD} (head)" in capsys.readouterr().out
    assert cli_main(["--database-url", url, "downgrade", "base"]) == 0
    assert "0001_initial" not in capsys.readouterr().out
