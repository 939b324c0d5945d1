"""Reaching the machine's PostgreSQL, Redis and NATS from tests.

Where a service is down, a test that needs it skips with the reason; with
``BALLAST_REQUIRE_SERVICES=1`` (as CI sets) it fails instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get(
    "BALLAST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BALLAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("BALLAST_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("BALLAST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and BALLAST_REQUIRE_SERVICES=1 says it must be")
    pytest.skip(reason)


def require_postgres() -> str:
    require("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


def require_redis() -> str:
    require("Redis", "127.0.0.1", 6379)
    return REDIS_URL


def require_nats() -> str:
    require("NATS", "127.0.0.1", 4222)
    return NATS_URL
