"""Storage adapter: SQLAlchemy Core over SQLite or PostgreSQL, with Alembic migrations.

- ``Database``: engine, connection settings, ``upgrade()`` to the latest schema.
- ``journal``: encode/decode commands, stream them back for replay.
- ``projection.write_batch``: group-commit journal rows and project events into tables.
- ``records``: service-owned writes (market details, evidence, account names, API keys).
- ``queries``: the reads the API serves, with keyset pagination.
"""

from .database import Database, normalize_url
from .journal import decode_command, encode_command, journal_head, load_commands
from .projection import JournalItem, write_batch
from .queries import Page
from .records import upsert_market_details

__all__ = [
    "Database",
    "JournalItem",
    "Page",
    "decode_command",
    "encode_command",
    "journal_head",
    "load_commands",
    "normalize_url",
    "upsert_market_details",
    "write_batch",
]
