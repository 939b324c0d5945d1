"""The server's address while it recovers: ``/readyz`` answers 503 with recovery's progress.

Recovery (restoring a snapshot, replaying the journal after it) runs before the API can serve.
Meanwhile a small threaded HTTP responder holds the server's port so that a load balancer or an
operator sees a 503 in the error envelope saying how far recovery is, instead of a refused
connection. ``/healthz`` answers 200 (the process is alive); everything else 503 with
``Retry-After``. The responder closes its socket before the real server binds the port.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


def not_ready(progress: dict[str, Any]) -> dict[str, Any]:
    """The ``/readyz`` body while recovering (the API's envelope and readiness details)."""
    phase = progress.get("phase", "starting")
    if phase == "standby":
        phase = f"standby, waiting for the sequencer lease ({progress.get('standby', '')})"
    elif phase == "replaying journal":
        phase = f"replaying journal ({progress['replayed']}/{progress['to_replay']} commands)"
    return {
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": "not ready: the engine check failed",
            "details": {
                "failed": ["engine"],
                "checks": {"engine": f"recovering: {phase}"},
                "recovery": progress,
            },
        }
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], family: int, describe: Callable[[], dict[str, Any]]
    ) -> None:
        self.address_family = family
        self.describe = describe
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/healthz":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(503, not_ready(self.server.describe()))

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Retry-After", "5")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("recovering: " + format, *args)


@contextlib.contextmanager
def recovery_probe(host: str, port: int, describe: Callable[[], dict[str, Any]]) -> Iterator[bool]:
    """Answer on ``host:port`` while the block runs; yields whether the port could be held
    (if not, the block runs anyway: the real server reports a busy port when it binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        server = _Server((host, port), family, describe)
    except OSError as error:
        log.debug("no recovery probe on %s:%d: %s", host, port, error)
        yield False
        return
    # A short poll: shutdown() waits for the loop's next poll, and with the default 0.5 s
    # every start would wait up to half a second after recovery before serving.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="recovery-probe", daemon=True
    )
    thread.start()
    try:
        yield True
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
