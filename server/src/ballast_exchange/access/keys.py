"""API keys, their secrets, and how secrets are kept encrypted at rest (DESIGN §7).

Keys look like ``bmkt_live_…`` (production) or ``bmkt_test_…`` (sandbox); secrets look like
``bmkt_secret_…`` and are shown to the user once. The server must keep the secret itself (it
recomputes HMACs with it), so it stores it encrypted with Fernet under a server key that
lives in ``BALLAST_SECRET_KEY`` or ``<data_dir>/secret.key``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = [
    "ALL_SCOPES",
    "ENVIRONMENTS",
    "LIVE_PREFIX",
    "READ",
    "SECRET_FILE_NAME",
    "SECRET_KEY_ENV",
    "SECRET_PREFIX",
    "TEST_PREFIX",
    "TRADE",
    "SecretBox",
    "environment_of",
    "key_fingerprint",
    "new_api_key",
    "parse_scopes",
]

LIVE_PREFIX = "bmkt_live_"
TEST_PREFIX = "bmkt_test_"
SECRET_PREFIX = "bmkt_secret_"

# Deployment environment -> key prefix.
ENVIRONMENTS: dict[str, str] = {"production": LIVE_PREFIX, "sandbox": TEST_PREFIX}

# 32 random bytes -> 43 url-safe base64 characters: 256 bits, beyond any guessing.
_RANDOM_BYTES = 32

SECRET_KEY_ENV = "BALLAST_SECRET_KEY"
SECRET_FILE_NAME = "secret.key"

READ = "read"
TRADE = "trade"
ALL_SCOPES: frozenset[str] = frozenset({READ, TRADE})


def new_api_key(environment: str) -> tuple[str, str]:
    """Return a fresh ``(api_key, api_secret)`` pair for ``"sandbox"`` or ``"production"``."""
    try:
        prefix = ENVIRONMENTS[environment]
    except KeyError:
        raise ValueError(
            f"unknown environment {environment!r}; expected one of {sorted(ENVIRONMENTS)}"
        ) from None
    api_key = prefix + secrets.token_urlsafe(_RANDOM_BYTES)
    api_secret = SECRET_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    return api_key, api_secret


def environment_of(api_key: str) -> str | None:
    """The environment a key was issued for, from its prefix; None if it is not a Ballast key."""
    for environment, prefix in ENVIRONMENTS.items():
        if api_key.startswith(prefix) and len(api_key) > len(prefix):
            return environment
    return None


def key_fingerprint(api_key: str) -> str:
    """SHA-256 hex of the API key, for indexing keys without storing them in clear.

    A plain hash is enough here: keys carry 256 random bits, so there is nothing to brute-force.
    """
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def parse_scopes(value: str | Iterable[str]) -> frozenset[str]:
    """Parse ``"read,trade"`` (commas and/or spaces) or an iterable of scope names.

    Raises ValueError for an unknown scope or when no scope is given: a key that can do
    nothing is almost certainly a mistake by the caller.
    """
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    scopes = frozenset(item.strip().lower() for item in items if item.strip())
    valid = f"valid scopes are {sorted(ALL_SCOPES)}"
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scope(s) {sorted(unknown)}; {valid}")
    if not scopes:
        raise ValueError(f"at least one scope is required; {valid}")
    return scopes


def _split_keys(text: str) -> list[str]:
    # Newest first; commas (env var) and newlines (file) both separate keys.
    return [part.strip() for part in re.split(r"[,\s]+", text) if part.strip()]


class SecretBox:
    """Encrypts API secrets at rest with Fernet; the first key encrypts, every key decrypts.

    To rotate: put a new key first (``BALLAST_SECRET_KEY=new,old``), re-encrypt stored tokens
    with :meth:`rotate`, then drop the old key.
    """

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one Fernet key")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError) as exc:
            # Do not echo the key material into logs.
            raise ValueError(
                "invalid Fernet key: expected 32 url-safe base64-encoded bytes"
            ) from exc
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key, as text."""
        return Fernet.generate_key().decode("ascii")

    @classmethod
    def from_environment(cls, data_dir: Path, env_value: str | None) -> SecretBox:
        """Build from ``BALLAST_SECRET_KEY`` if set, else from ``data_dir/secret.key``.

        ``env_value`` is comma-separated keys, newest first. Without it the key file is read,
        and created (mode 0600, directory made if needed) with a new key when missing.
        """
        if env_value is not None and env_value.strip():
            keys = _split_keys(env_value)
            try:
                return cls(keys)
            except ValueError as exc:
                raise ValueError(f"{SECRET_KEY_ENV}: {exc}") from exc
        path = Path(data_dir) / SECRET_FILE_NAME
        if not path.exists():
            _create_key_file(path, cls.generate_key())
        keys = _split_keys(path.read_text(encoding="ascii"))
        if not keys:
            raise ValueError(f"{path} holds no key; delete it to generate one, or set one")
        try:
            return cls(keys)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def encrypt(self, plaintext: str) -> str:
        """Encrypt under the newest key; the token embeds its creation time and a MAC."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt with whichever key fits; ValueError if none does or the token was altered."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError("cannot decrypt secret: wrong key or corrupted token") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the newest key (it may have been made with an older one)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError("cannot rotate secret: wrong key or corrupted token") from exc


def _create_key_file(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` with mode 0600, atomically and without clobbering.

    The key goes to a private temporary file first and is then hard-linked into place, so a
    second process starting at the same moment either wins the link or reads a complete file,
    never an empty one; and an existing key is never overwritten (that would orphan every
    secret encrypted under it).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            # O_CREAT's mode is masked by the umask; 0600 must hold regardless.
            os.fchmod(handle.fileno(), 0o600)
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # If another process linked its key first, keep theirs.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
