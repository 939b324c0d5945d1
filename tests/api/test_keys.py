"""API keys, secrets encrypted at rest, fingerprints and scopes (DESIGN §7)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from ballast_exchange.access.keys import (
    READ,
    TRADE,
    SecretBox,
    environment_of,
    key_fingerprint,
    new_api_key,
    parse_scopes,
)

URLSAFE = re.compile(r"[A-Za-z0-9_-]+")

# --- key generation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "prefix"), [("sandbox", "bmkt_test_"), ("production", "bmkt_live_")]
)
def test_new_api_key_prefixes_and_randomness(environment: str, prefix: str) -> None:
    api_key, secret = new_api_key(environment)
    assert api_key.startswith(prefix)
    assert secret.startswith("bmkt_secret_")
    for value, head in ((api_key, prefix), (secret, "bmkt_secret_")):
        tail = value[len(head) :]
        assert len(tail) >= 32
        assert URLSAFE.fullmatch(tail)
    assert environment_of(api_key) == environment


def test_new_api_keys_are_unique() -> None:
    pairs = [new_api_key("sandbox") for _ in range(200)]
    values = [v for pair in pairs for v in pair]
    assert len(set(values)) == len(values)


def test_unknown_environment_rejected() -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        new_api_key("staging")


def test_environment_of_foreign_strings() -> None:
    assert environment_of("bmkt_secret_abc") is None
    assert environment_of("bmkt_live_") is None
    assert environment_of("sk_live_abc") is None


def test_key_fingerprint() -> None:
    api_key = "bmkt_live_abc123"
    assert key_fingerprint(api_key) == hashlib.sha256(b"bmkt_live_abc123").hexdigest()
    assert len(key_fingerprint(api_key)) == 64
    assert key_fingerprint(api_key) != key_fingerprint("bmkt_live_abc124")


# --- scopes --------------------------------------------------------------------------------


def test_parse_scopes() -> None:
    assert READ == "read" and TRADE == "trade"
    assert parse_scopes("read") == frozenset({READ})
    assert parse_scopes("read,trade") == frozenset({READ, TRADE})
    assert parse_scopes(" trade , read ") == frozenset({READ, TRADE})
    assert parse_scopes("read trade read") == frozenset({READ, TRADE})
    assert parse_scopes(["TRADE"]) == frozenset({TRADE})
    assert parse_scopes(frozenset({READ})) == frozenset({READ})


@pytest.mark.parametrize("value", ["admin", "read,withdraw", ["read", "write"]])
def test_parse_scopes_rejects_unknown(value: str | list[str]) -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes(value)


@pytest.mark.parametrize("value", ["", " , ", []])
def test_parse_scopes_rejects_empty(value: str | list[str]) -> None:
    with pytest.raises(ValueError, match="at least one scope"):
        parse_scopes(value)


# --- SecretBox -----------------------------------------------------------------------------


def test_encrypt_decrypt_round_trip_and_ciphertext_hides_secret() -> None:
    box = SecretBox([SecretBox.generate_key()])
    _, secret = new_api_key("production")
    token = box.encrypt(secret)
    assert secret not in token
    assert box.decrypt(token) == secret
    # Fresh IV each time: equal secrets do not give equal tokens.
    assert box.encrypt(secret) != token
    assert box.decrypt(box.encrypt("café ☕")) == "café ☕"


def test_wrong_key_and_tampered_token_rejected() -> None:
    box = SecretBox([SecretBox.generate_key()])
    other = SecretBox([SecretBox.generate_key()])
    token = box.encrypt("bmkt_secret_x")
    with pytest.raises(ValueError, match="cannot decrypt"):
        other.decrypt(token)
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(ValueError, match="cannot decrypt"):
        box.decrypt(tampered)
    with pytest.raises(ValueError, match="cannot decrypt"):
        box.decrypt("not a token ✗")


def test_rotation_first_key_encrypts_all_decrypt() -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    old_box = SecretBox([old_key])
    old_token = old_box.encrypt("bmkt_secret_old")

    both = SecretBox([new_key, old_key])
    assert both.decrypt(old_token) == "bmkt_secret_old"
    # New encryptions use the newest key only: the new key alone can read them.
    assert SecretBox([new_key]).decrypt(both.encrypt("bmkt_secret_new")) == "bmkt_secret_new"

    rotated = both.rotate(old_token)
    new_only = SecretBox([new_key])
    assert new_only.decrypt(rotated) == "bmkt_secret_old"
    with pytest.raises(ValueError):
        new_only.decrypt(old_token)
    # Checked independently with cryptography itself.
    assert Fernet(new_key.encode()).decrypt(rotated.encode()) == b"bmkt_secret_old"
    with pytest.raises(ValueError, match="cannot rotate"):
        new_only.rotate(old_token)


def test_invalid_keys_rejected_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SecretBox([])
    with pytest.raises(ValueError, match="invalid Fernet key") as info:
        SecretBox(["hunter2-not-a-key"])
    assert "hunter2" not in str(info.value)


def test_from_environment_prefers_env_value(tmp_path: Path) -> None:
    new_key, old_key = SecretBox.generate_key(), SecretBox.generate_key()
    old_token = SecretBox([old_key]).encrypt("s")
    box = SecretBox.from_environment(tmp_path / "var", f" {new_key} , {old_key} ")
    assert box.decrypt(old_token) == "s"
    assert SecretBox([new_key]).decrypt(box.encrypt("t")) == "t"
    # The env var wins: no key file is created.
    assert not (tmp_path / "var").exists()


def test_from_environment_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BALLAST_SECRET_KEY") as info:
        SecretBox.from_environment(tmp_path, "oops-secret")
    assert "oops-secret" not in str(info.value)


def test_from_environment_creates_key_file_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "var"
    box = SecretBox.from_environment(data_dir, None)
    key_file = data_dir / "secret.key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    Fernet(key.encode())  # a valid Fernet key
    token = box.encrypt("bmkt_secret_persisted")
    # A restart reads the same file, so earlier tokens still decrypt; an empty env var counts
    # as unset.
    again = SecretBox.from_environment(data_dir, "")
    assert again.decrypt(token) == "bmkt_secret_persisted"
    assert key_file.read_text().strip() == key
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]  # no temp files left


def test_key_file_mode_ignores_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        SecretBox.from_environment(tmp_path, None)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_key_file_with_several_keys(tmp_path: Path) -> None:
    new_key, old_key = SecretBox.generate_key(), SecretBox.generate_key()
    old_token = SecretBox([old_key]).encrypt("s")
    (tmp_path / "secret.key").write_text(f"{new_key}\n{old_key}\n")
    box = SecretBox.from_environment(tmp_path, None)
    assert box.decrypt(old_token) == "s"
    assert SecretBox([new_key]).decrypt(box.encrypt("t")) == "t"


def test_empty_key_file_is_an_error_not_silently_replaced(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("\n")
    with pytest.raises(ValueError, match="holds no key"):
        SecretBox.from_environment(tmp_path, None)
    assert (tmp_path / "secret.key").read_text() == "\n"


def test_concurrent_first_start_agrees_on_one_key(tmp_path: Path) -> None:
    # Several workers starting together must end up with the same key, never an empty read.
    boxes: list[SecretBox] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        try:
            barrier.wait()
            boxes.append(SecretBox.from_environment(tmp_path, None))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    token = boxes[0].encrypt("shared")
    assert all(box.decrypt(token) == "shared" for box in boxes)
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]
