"""Connection limits uvicorn's httptools protocol lacks (docs/adr/0007-connection-limits.md).

uvicorn bounds neither the size of a request head nor the time a client may take to send it
(with httptools, a connection that never finishes its headers is held for ever, and a 50 MB
header is buffered whole), and its ``limit_concurrency`` only answers a plain-text 503 once
the head has arrived. :class:`LimitedHttpToolsProtocol` adds, per connection:

- a cap on open connections (HTTP and WebSocket alike): one over the cap is answered at once
  with ``503 SERVICE_UNAVAILABLE`` in the API's error envelope and closed, never read;
- a deadline for the request head: from the connection's start, or from the first byte of a
  later request on a kept-alive connection, the head must be complete within
  ``header_timeout_s`` or the connection is closed;
- a bound on the head's bytes (request line and headers) and on the number of headers:
  ``431`` and close, with no more than the bound ever handed to the parser.

Idle keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``. When a limit
bites it is logged once, and then at most once a minute with a count, never a line per
connection. :func:`raise_open_files_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard one,
and :func:`effective_max_connections` keeps the cap below what the process may open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass, field

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

# File descriptors kept for everything but client connections: the listener, the event loop,
# the database pool, Redis, log files, the thread pool's wake-ups.
RESERVED_FDS = 128
LOG_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int
    header_timeout_s: float
    max_head_bytes: int
    max_headers: int


def _error_response(status: int, reason: str, code: str, message: str, retry: bool) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        "cache-control: no-store",
    ]
    if retry:
        head.append("retry-after: 1")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


SERVER_FULL = _error_response(
    503,
    "Service Unavailable",
    "SERVICE_UNAVAILABLE",
    "the server is at its connection limit; retry shortly",
    retry=True,
)
HEAD_TOO_LARGE = _error_response(
    431,
    "Request Header Fields Too Large",
    "HEADERS_TOO_LARGE",
    "the request line and headers are too large or too many",
    retry=False,
)


class LimitLog:
    """Warnings about limits that bite: the first at once, then one summary a minute at most."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._quiet_until: dict[str, float] = {}
        self._pending: dict[str, int] = {}

    def bit(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now >= self._quiet_until.get(kind, 0.0):
            log.warning("%s", message)
            self._quiet_until[kind] = now + self.interval_s
            self._schedule(kind, message)
        else:
            self._pending[kind] = self._pending.get(kind, 0) + 1

    def _schedule(self, kind: str, message: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test): the next bite logs again
            self._quiet_until.pop(kind, None)
            return
        loop.call_later(self.interval_s, self._flush, kind, message)

    def _flush(self, kind: str, message: str) -> None:
        count = self._pending.pop(kind, 0)
        if count == 0:
            self._quiet_until.pop(kind, None)  # quiet for a whole interval: the next one logs
            return
        log.warning("%s (%d more times in the last %.0f s)", message, count, self.interval_s)
        self._quiet_until[kind] = time.monotonic() + self.interval_s
        self._schedule(kind, message)


@dataclass(slots=True)
class ConnectionGate:
    """One server's limits and what they have done: shared by all its connections."""

    limits: HttpLimits
    log: LimitLog = field(default_factory=LimitLog)
    full: bool = False  # refusing connections since the cap was reached
    refused: int = 0  # connections refused since the server became full

    def admit(self, open_connections: int) -> bool:
        cap = self.limits.max_connections
        if open_connections >= cap:
            self.refused += 1
            if not self.full:
                self.full = True
                self.log.bit(
                    "cap",
                    f"connection cap reached: {open_connections} connections open "
                    f"(http_max_connections={cap}); refusing new ones with 503",
                )
            return False
        if self.full and open_connections < cap - max(1, cap // 10):  # hysteresis: no flapping
            log.info(
                "connections back under the cap (%d open); refused %d while full",
                open_connections,
                self.refused,
            )
            self.full = False
            self.refused = 0
        return True


class _TooManyHeaders(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the connection cap, head deadline and head bounds.

    Use :func:`protocol_class` to get a subclass bound to one server's :class:`ConnectionGate`.
    """

    gate: ConnectionGate
    _refused = False
    _in_head = True  # reading a request head (and not a body, nor waiting for the app)
    _head_started = False  # a head's first bytes have been parsed, its end not yet
    _head_bytes = 0
    _header_count = 0
    _head_timer: asyncio.TimerHandle | None = None

    # ---- connection lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.gate.admit(len(self.connections)):
            self._refused = True
            self.transport = transport  # type: ignore[assignment]
            self.transport.write(SERVER_FULL)
            self.transport.close()
            return
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._refused:
            return
        super().connection_lost(exc)

    # ---- bytes in: bounded while they are a head

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        max_head = self.gate.limits.max_head_bytes
        while data:
            if self._in_head:
                room = max_head - self._head_bytes
                chunk, data = data[:room], data[room:]
                self._head_bytes += len(chunk)
            else:
                chunk, data = data, b""
            if not self._feed(chunk):
                return
            if self._in_head:
                if self._head_bytes >= max_head:
                    self._refuse_head(f"request heads over {max_head} bytes")
                    return
                if self._head_started or self._idle():
                    self._arm_head_timer()

    def _feed(self, chunk: bytes) -> bool:
        """uvicorn's ``data_received`` for one chunk; False once the connection is done here."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(chunk)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _TooManyHeaders):
                limit = self.gate.limits.max_headers
                self._refuse_head(f"requests with more than {limit} headers")
            else:
                self.gate.log.bit("invalid", "invalid HTTP requests answered 400")
                self.send_400_response("Invalid HTTP request received.")
            return False
        return not self.transport.is_closing()

    def _refuse_head(self, what: str) -> None:
        self._cancel_head_timer()
        self.gate.log.bit("head", f"refused {what} with 431")
        self.transport.write(HEAD_TOO_LARGE)
        self.transport.close()

    # ---- parser callbacks: where a head starts and ends

    def _idle(self) -> bool:
        """No request in progress: bytes now (even stray line ends) begin the next head."""
        return self.cycle is None or self.cycle.response_complete

    def on_message_begin(self) -> None:
        self._head_started = True
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.gate.limits.max_headers:
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_started = False
        self._head_bytes = 0
        self._header_count = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # whatever comes next is the next request's head

    # ---- the head deadline

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.gate.limits.header_timeout_s, self._head_timed_out
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        timeout = self.gate.limits.header_timeout_s
        self.gate.log.bit(
            "timeout", f"closed connections that sent no complete request head within {timeout} s"
        )
        self.transport.close()


def protocol_class(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol for one server (``uvicorn.Config(http=...)``): its own gate and counts."""

    class BoundLimitedHttpToolsProtocol(LimitedHttpToolsProtocol):
        gate = ConnectionGate(limits)

    return BoundLimitedHttpToolsProtocol


def open_files_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def raise_open_files_limit() -> tuple[int, int]:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit; (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        log.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, error)
        return soft, soft
    log.info("raised the open-files limit from %d to %d", soft, hard)
    return soft, hard


def effective_max_connections(requested: int) -> int:
    """``requested``, or less if the open-files limit would run out first."""
    room = max(1, open_files_limit() - RESERVED_FDS)
    if requested > room:
        log.warning(
            "http_max_connections=%d exceeds what the open-files limit allows; using %d "
            "(raise `ulimit -n` to allow more)",
            requested,
            room,
        )
        return room
    return requested
