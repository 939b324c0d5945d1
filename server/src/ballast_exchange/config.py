"""Server settings: flags first, then ``BALLAST_*`` environment variables, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("sandbox", "production")


@dataclass(slots=True)
class Settings:
    env: str = "sandbox"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=lambda: Path("var"))
    database_url: str | None = None  # default: SQLite in the data dir
    redis_url: str | None = None  # shared rate limits across processes when set
    secret_key: str | None = None  # Fernet key(s) for API secrets; default: data_dir/secret.key
    public_rate_limit: int = 100  # requests a minute per IP (spec)
    private_rate_limit: int = 300  # requests a minute per API key (spec)
    max_body_bytes: int = 64 * 1024
    demo: bool = True  # sandbox only: the market catalogue and a funded demo account
    # Sandbox with demo data only: the liquidity bot (``--no-bot`` turns it off) and its cycle.
    bot: bool = True
    bot_interval_s: float = 1.0
    # Sandbox catalogue calendar: None is the real one (weekly series close Fridays 16:00 UTC,
    # monthly ones on the last day at 23:59 UTC); a number of seconds compresses it, for demos
    # and tests: weekly series roll every that many seconds, monthly ones every 4x.
    sandbox_period_s: float | None = None
    log_json: bool = False
    # PostgreSQL only (store/sequencer_lease.py): wait as a hot standby for the store's
    # sequencer lease rather than refuse a store in use, and the lease's term: a holder that
    # stops renewing for this long is taken over.
    standby: bool = False
    lease_ttl_s: float = 5.0
    # Scale-out (docs/adr/0025): the NATS server the sequencer and its gateways share, and the
    # venue's subject prefix on it. A server given nats_url takes gateways' calls (it is the
    # sequencer); ``gateway`` makes this process a gateway in front of one.
    nats_url: str | None = None
    nats_subject: str = "ballast"
    gateway: bool = False
    reuse_port: bool = False  # gateways on one host share the port (``serve --gateways N``)
    # Sandbox only: test USDC on demand (POST /v1/account/faucet), in micro-USDC.
    faucet_amount: int = 10_000 * 1_000_000
    faucet_daily_cap: int = 100_000 * 1_000_000
    # How long a settlement proposal may be overturned: 24 h by default, 2 min in the sandbox.
    dispute_window_s: float | None = None
    # The WebSocket stream (docs/websocket.md).
    stream_connections_per_key: int = 5  # spec: 5 simultaneous connections per API key
    stream_connections_per_ip: int = 50  # unauthenticated connections per client IP
    stream_send_buffer_bytes: int = 1 << 20  # unsent bytes of one connection before it is cut
    stream_heartbeat_s: float = 5.0
    stream_ping_interval_s: float = 10.0
    stream_ping_timeout_s: float = 10.0
    stream_max_message_bytes: int = 64 * 1024
    # Connections (api/http_limits.py; docs/operations.md "Limits"). The cap counts HTTP and
    # WebSocket connections alike and is lowered at start to what the open-files limit allows.
    http_max_connections: int = 4096
    http_header_timeout_s: float = 5.0  # a request head must arrive whole within this
    http_keep_alive_timeout_s: float = 5.0  # an idle kept-alive connection closes after this
    http_max_head_bytes: int = 16 * 1024  # request line and headers together
    http_max_headers: int = 100
    # Engine snapshots (service/snapshotter.py; docs/operations.md "Snapshots and the journal").
    # A snapshot every this many commands, or this many seconds after the last if commands
    # came since (0 turns either off; `ballast admin snapshot` takes one any time).
    snapshot_every_commands: int = 100_000
    snapshot_every_s: float = 3600.0
    snapshot_keep: int = 3  # the newest this many stay; older ones are deleted
    snapshot_chunk_bytes: int = 1 << 20  # written one chunk a transaction
    snapshot_timeout_s: float = 600.0  # a snapshot process still running then is killed
    # The journal before the oldest kept snapshot: "keep" (the audit trail, the default in
    # production), "archive" (to gzip'd segments in journal_archive_dir, default
    # data_dir/journal-archive) or "discard" (the sandbox's default: a bounded window).
    journal_retention: str | None = None
    journal_archive_dir: Path | None = None
    # Dashboard passwords (dashboard/users.py): argon2id hashes computed at once, each ~19 MiB.
    password_hash_concurrency: int = field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2)
    )

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ValueError(f"env must be one of {ENVIRONMENTS}, not {self.env!r}")
        self.data_dir = Path(self.data_dir)
        if self.env == "production":
            self.demo = False
            self.bot = False
        if self.bot_interval_s <= 0:
            raise ValueError("bot_interval_s must be positive")
        if self.sandbox_period_s is not None and self.sandbox_period_s < 1:
            raise ValueError("sandbox_period_s must be at least 1 second")
        for name in ("http_max_connections", "http_max_head_bytes", "http_max_headers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.http_header_timeout_s <= 0 or self.http_keep_alive_timeout_s <= 0:
            raise ValueError("http_header_timeout_s and http_keep_alive_timeout_s must be positive")
        if self.journal_retention is None:
            self.journal_retention = "discard" if self.env == "sandbox" else "keep"
        if self.journal_retention not in ("keep", "archive", "discard"):
            raise ValueError("journal_retention must be keep, archive or discard")
        if self.journal_archive_dir is None:
            self.journal_archive_dir = self.data_dir / "journal-archive"
        self.journal_archive_dir = Path(self.journal_archive_dir)
        if self.snapshot_every_commands < 0 or self.snapshot_every_s < 0:
            raise ValueError("snapshot_every_commands and snapshot_every_s must be 0 or more")
        if self.snapshot_keep < 1 or self.snapshot_chunk_bytes < 1024:
            raise ValueError("snapshot_keep must be 1 or more, snapshot_chunk_bytes 1024 or more")
        if self.lease_ttl_s < 0.5:
            raise ValueError("lease_ttl_s must be at least 0.5 seconds")
        if self.gateway and not self.nats_url:
            raise ValueError("a gateway needs the NATS server its sequencer uses (nats_url)")
        if self.gateway and self.standby:
            raise ValueError("a gateway is not a standby; run the standby as a sequencer")
        if not self.nats_subject or any(ch in self.nats_subject for ch in " *>\t"):
            raise ValueError("nats_subject must be a NATS subject prefix without wildcards")
        if self.password_hash_concurrency < 1:
            raise ValueError("password_hash_concurrency must be at least 1")

    @property
    def dispute_window_ms(self) -> int:
        if self.dispute_window_s is not None:
            return int(self.dispute_window_s * 1000)
        return 120_000 if self.env == "sandbox" else 86_400_000

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ballast.db').resolve()}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Flags (``overrides`` that are not None) win over ``BALLAST_<NAME>`` variables."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"BALLAST_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if kind.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "Path" in kind:
        return Path(raw)
    return raw
