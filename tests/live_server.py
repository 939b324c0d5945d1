"""A real Ballast server on a free loopback port, for tests that talk to it over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import uvloop

from ballast_exchange.api.http_limits import raise_open_files_limit
from ballast_exchange.app import create_app, server_options
from ballast_exchange.bootstrap import Runtime
from ballast_exchange.config import Settings

# Limits high enough that tests about other things are never rate limited.
NO_LIMITS = {"public_rate_limit": 10**9, "private_rate_limit": 10**9}


# For checks the database cannot influence: run them on the SQLite `live` server only.
sqlite_only = pytest.mark.parametrize("live", ["sqlite"], indirect=True)


# Ports for test servers come from a block of their own per pytest-xdist worker, below the
# kernel's ephemeral range: a port handed out here is free until its server binds it a moment
# (or, for a `ballast serve` subprocess, a second) later, and in that gap neither the other
# worker nor an outgoing connection's ephemeral port can take it.
_PORT_BASE, _PORT_TOP = 10_000, 32_000


def _port_block() -> range:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (_PORT_TOP - _PORT_BASE) // max(workers, 1)
    start = _PORT_BASE + worker * size
    return range(start, start + size)


_ports = itertools.cycle(_port_block())
for _ in range(random.randrange(len(_port_block()))):  # a rerun does not reuse the last run's ports
    next(_ports)


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's block."""
    for _ in range(len(_port_block())):
        port = next(_ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's block")


class LiveServer:
    def __init__(self, runtime: Runtime, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.runtime = runtime
        self.server = server
        self.thread = thread
        self.url = runtime.settings.base_url
        self.api = f"{self.url}/v1"

    @property
    def admin_token(self) -> str:
        return self.runtime.state.admin_token

    def call(self, coroutine: Any) -> Any:
        """Run a coroutine on the server's own loop (to read its state consistently)."""
        loop = self.server_loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    server_loop: asyncio.AbstractEventLoop


@contextmanager
def live_server(
    data_dir: Path,
    *,
    port: int | None = None,
    socket_send_buffer: int | None = None,
    **settings: Any,
) -> Iterator[LiveServer]:
    """A server on ``port`` (a free one by default; give one to restart at the same address).

    ``socket_send_buffer`` sets the kernel send buffer (SO_SNDBUF) of its connections, as a
    congested link would shrink it, so that large messages back up in the server.
    """
    settings.setdefault("demo", False)
    raise_open_files_limit()  # as `ballast serve` does
    config = Settings(data_dir=data_dir, port=port or free_port(), **settings)
    runtime = Runtime(config)
    app = create_app(runtime)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=config.port,
            log_config=None,
            access_log=False,
            **server_options(config),
        )
    )
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if socket_send_buffer is not None:  # accepted connections inherit it
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_send_buffer)
    listener.bind(("127.0.0.1", config.port))
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = uvloop.new_event_loop()  # as `ballast serve` runs it
        holder["loop"] = loop
        loop.run_until_complete(server.serve(sockets=[listener]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start on port {config.port}")
        time.sleep(0.01)
    live = LiveServer(runtime, server, thread)
    live.server_loop = holder["loop"]
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
