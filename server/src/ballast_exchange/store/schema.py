"""The database schema (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Units follow the domain: prices, floor and cap in integer ticks; sizes in contracts; money in
micro-USDC; times in milliseconds since the Unix epoch. ``journal`` is the system of record
(replaying it rebuilds the engine); every other table is a projection of the engine's events
plus the descriptive fields the service writes beside them.

The Alembic migrations in ``migrations/versions`` create exactly this schema; a test compares
the two, so change both together (a new migration, never an edited one).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names on both databases, so later migrations can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

journal = Table(
    "journal",
    metadata,
    # Assigned by the caller (1, 2, 3, …): never a database sequence, so numbers are gap-free
    # and identical whichever database holds them.
    Column("command_no", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    # The sequencer lease's epoch the row was written under (PostgreSQL; None on SQLite and
    # before revision 0012): which leader wrote what, for an audit after a takeover.
    Column("epoch", BigInteger, nullable=True),
)

# How far the query tables have been projected from the journal (one row, id 1): the
# projector moves it in the same transaction as the rows it writes, and resumes from it.
projection_state = Table(
    "projection_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("command_no", BigInteger, nullable=False),
)

# Engine snapshots (store/snapshots.py): a row is published only once every chunk of its
# bytes is stored and the journal and projection have passed its command, so a row present is
# a snapshot whole; chunks without a row are a write that a crash cut short.
snapshots = Table(
    "snapshots",
    metadata,
    Column("command_no", BigInteger, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("checksum", Text, nullable=False),  # SHA-256 of the stored bytes
    Column("digest", Text, nullable=False),  # SHA-256 of the state's payload
    Column("size_bytes", BigInteger, nullable=False),
    Column("payload_bytes", BigInteger, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("engine", Text, nullable=False),  # the twin that took it
    Column("created_at", BigInteger, nullable=False),  # ms since the epoch
    Column("duration_ms", BigInteger, nullable=False),  # encoding and writing, in the child
)

snapshot_chunks = Table(
    "snapshot_chunks",
    metadata,
    Column("command_no", BigInteger, primary_key=True, autoincrement=False),
    Column("chunk_no", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("api_key", Text, primary_key=True),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("tier", Text, nullable=True),
    Column("label", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Index("ix_api_keys_account_id", "account_id"),
)

markets = Table(
    "markets",
    metadata,
    Column("market_id", Text, primary_key=True),
    # Descriptive fields: written by the service (``upsert_market_details``), not by events.
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("question", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("resolution_source", Text, nullable=True),
    Column("settlement_date", BigInteger, nullable=True),
    # Discovery (descriptive too): a category, tags (a JSON array of strings), the series the
    # market recurs in and the event it belongs to, each an id and a title.
    Column("category", Text, nullable=True),
    Column("tags", Text, nullable=True),
    Column("series_id", Text, nullable=True),
    Column("series_title", Text, nullable=True),
    Column("event_id", Text, nullable=True),
    Column("event_title", Text, nullable=True),
    # Trading rules, from CreateMarket.
    Column("close_time", BigInteger, nullable=False),
    Column("tick_size", Text, nullable=False),  # decimal text, e.g. "0.001"
    Column("tick_value", BigInteger, nullable=False),  # micro-USDC per tick per contract
    Column("floor", BigInteger, nullable=False),  # ticks
    Column("cap", BigInteger, nullable=False),  # ticks
    Column("min_size", BigInteger, nullable=False),
    Column("max_order_size", BigInteger, nullable=False),
    Column("max_position", BigInteger, nullable=False),
    Column("maker_fee_bps", Integer, nullable=False),
    Column("taker_fee_bps", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The current (proposed or final) settlement; cleared when a proposal is overturned.
    Column("settlement_value", BigInteger, nullable=True),  # micro price units (value × 10⁶)
    Column("evidence_hash", Text, nullable=True),
    Column("proposer", Text, nullable=True),
    Column("proposed_at", BigInteger, nullable=True),
    Column("settled_at", BigInteger, nullable=True),
)

settlements = Table(
    "settlements",
    metadata,
    # Integer (not BigInteger) so that SQLite makes it the auto-incrementing rowid.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("evidence_hash", Text, nullable=False),
    Column("proposer", Text, nullable=False),
    Column("proposed_at", BigInteger, nullable=False),
    Column("final_after", BigInteger, nullable=True),  # the dispute window ends here
    Column("outcome", Text, nullable=False),  # proposed | overturned | finalized
    Column("decided_by", Text, nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Index("ix_settlements_market_id", "market_id", "id"),
)

# Settlement evidence by the hex SHA-256 of its canonical JSON (RFC 8785), stored before the
# proposal that publishes the hash.
evidence = Table(
    "evidence",
    metadata,
    Column("evidence_hash", Text, primary_key=True),
    Column("body", Text, nullable=False),  # the canonical JSON itself
    Column("created_at", BigInteger, nullable=False),
)

# Orders placed over a stream connection with cancel-on-disconnect, stored in the same commit
# as the order: after a crash, recovery cancels those still open (their connections are gone).
guarded_orders = Table(
    "guarded_orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Text, nullable=False),
)

# Armed dead-man switches, one per API key: the deadline is stored before a heartbeat is
# answered, so a restart cancels the account's orders if it lapsed while the server was down.
dead_man_switches = Table(
    "dead_man_switches",
    metadata,
    Column("api_key", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("timeout_ms", BigInteger, nullable=False),
    Column("deadline", BigInteger, nullable=False),  # ms since the epoch
)

# Order groups with a contract limit (service/order_groups.py). Created, reset and deleted by
# the service before it answers; a trigger is written in the same commit as the command whose
# fills caused it. ``revision`` orders the writes: a write never replaces a later one.
order_groups = Table(
    "order_groups",
    metadata,
    Column("group_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("max_filled_size", BigInteger, nullable=False),  # contracts
    Column("window_ms", BigInteger, nullable=False),
    Column("status", Text, nullable=False),  # active | triggered
    Column("created_at", BigInteger, nullable=False),
    Column("triggered_at", BigInteger, nullable=True),
    Column("reset_at", BigInteger, nullable=True),
    Column("first_trade_id", BigInteger, nullable=False),  # fills of this trade on count
    Column("revision", BigInteger, nullable=False),
    Index("ix_order_groups_account", "account_id", "created_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("side", Text, nullable=False),
    Column("order_type", Text, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("filled", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("time_in_force", Text, nullable=False),
    Column("expire_at", BigInteger, nullable=True),
    Column("post_only", Boolean, nullable=False),
    Column("reduce_only", Boolean, nullable=False),
    Column("client_order_id", Text, nullable=True),
    Column("stp", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("order_group_id", Text, nullable=True),  # its order group (contract limit), if any
    # NULLs never collide on either database, so orders without a client id are unconstrained.
    UniqueConstraint("account_id", "client_order_id"),
    Index("ix_orders_account_status", "account_id", "status", "order_id"),
    Index("ix_orders_account_created", "account_id", "created_at"),
)

trades = Table(
    "trades",
    metadata,
    Column("trade_id", BigInteger, primary_key=True, autoincrement=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("taker_side", Text, nullable=False),
    Column("maker_order_id", BigInteger, nullable=False),
    Column("taker_order_id", BigInteger, nullable=False),
    Column("maker_account_id", Text, nullable=False),
    Column("taker_account_id", Text, nullable=False),
    Column("maker_fee", BigInteger, nullable=False),
    Column("taker_fee", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_trades_market", "market_id", "trade_id"),
    # Candles and time-bounded trade lists scan a market by time.
    Index("ix_trades_market_created", "market_id", "created_at"),
    Index("ix_trades_maker_account", "maker_account_id", "trade_id"),
    Index("ix_trades_taker_account", "taker_account_id", "trade_id"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Text, nullable=True),
    Column("market_id", Text, nullable=True),
    Column("debit", Text, nullable=False),
    Column("credit", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("ref", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_account_seq", "account_id", "seq"),
)

# Each position a settlement paid out, per account (projected from the finalize's
# PositionChanged and its settlement ledger entries): the position does not vanish from the
# account's history when the engine zeroes it. ``seq`` is the PositionChanged event's.
position_settlements = Table(
    "position_settlements",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Text, nullable=False),
    Column("market_id", Text, ForeignKey("markets.market_id"), nullable=False),
    Column("value", BigInteger, nullable=False),  # micro price units, as settlements.value
    Column("size", BigInteger, nullable=False),  # signed contracts held at settlement
    Column("cost", BigInteger, nullable=False),  # micro-USDC: the collateral it returned
    Column("payout", BigInteger, nullable=False),  # micro-USDC paid to cash
    Column("realized_pnl", BigInteger, nullable=False),  # the market's lifetime, fees aside
    Column("settled_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "market_id"),
    Index("ix_position_settlements_account", "account_id", "seq"),
)

# The dashboard's people (an email and an argon2 password hash, each owning one trading
# account) and their browser sessions, keyed by the SHA-256 of the cookie's token.
users = Table(
    "users",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("email", Text, nullable=False),  # normalised: trimmed, lower case
    Column("password_hash", Text, nullable=False),
    Column("account_id", Text, ForeignKey("accounts.account_id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("email"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("users.user_id"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_sessions_user_id", "user_id"),
)

ALL_TABLES = (
    journal,
    projection_state,
    snapshots,
    snapshot_chunks,
    guarded_orders,
    dead_man_switches,
    order_groups,
    accounts,
    api_keys,
    markets,
    settlements,
    evidence,
    orders,
    trades,
    ledger_entries,
    position_settlements,
    users,
    sessions,
)
