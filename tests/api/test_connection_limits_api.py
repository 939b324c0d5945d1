"""Slow, half-open, oversized and idle connections against a real server (issue 13, item 2).

Small configured limits stand in for production's: a connection cap of a few, a header
timeout of a second or two, a head bound of a few KiB. Raw sockets play the hostile clients;
httpx plays the ordinary ones. Nothing sleeps for a guessed time: every wait is for a
condition, with a deadline.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer, free_port, live_server

BALLAST = str(Path(sys.executable).with_name("ballast"))
LIMITS_LOGGER = "ballast_exchange.api.http_limits"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def open_connections(live: LiveServer) -> int:
    return len(live.server.server_state.connections)


def connect(live: LiveServer, first_bytes: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.runtime.settings.port), timeout=15)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes the connection (b"" for a silent close)."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response off a kept-alive connection (its body by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response"
        data += chunk
    status, headers, body = reply(data)
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status, headers, body


def reply(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@contextmanager
def limited(tmp_path: Path, **limits: Any) -> Iterator[LiveServer]:
    with live_server(tmp_path / "var", **limits) as live:
        yield live


def fds_open() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_slow_heads_are_cut_and_the_cap_answers_503_while_new_clients_are_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LIMITS_LOGGER)
    timeout = 2.0
    with limited(tmp_path, http_max_connections=8, http_header_timeout_s=timeout) as live:
        baseline = fds_open()
        with ExitStack() as stack, httpx.Client(base_url=live.url, timeout=15) as client:
            # Six clients that never finish their heads (three sent nothing at all).
            started = time.monotonic()
            slow = [
                stack.enter_context(
                    connect(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" * (i % 2))
                )
                for i in range(6)
            ]
            wait_for(lambda: open_connections(live) == 6, "six slow connections")
            # Under the cap, an ordinary client is served while they hang.
            fresh = httpx.get(f"{live.url}/healthz", timeout=15)
            assert fresh.status_code == 200
            wait_for(lambda: open_connections(live) <= 6, "the served client to be dropped")
            if time.monotonic() - started < timeout:  # (a loaded machine may be slower)
                assert open_connections(live) == 6, "the slow ones were cut too early"

            # Fill the cap: the next connections are answered 503 in the error envelope and
            # closed, without holding a file descriptor.
            slow += [stack.enter_context(connect(live, b"GET / HTTP/1.1\r\n")) for _ in range(2)]
            wait_for(lambda: open_connections(live) >= 8, "the cap to fill")
            for _ in range(5):
                refused = client.get("/healthz", headers={"Connection": "close"})
                assert refused.status_code == 503, refused.text
                error = refused.json()["error"]
                assert (error["code"], error["details"]) == ("SERVICE_UNAVAILABLE", {})
                assert set(error) == {"code", "message", "details"}
                assert refused.headers["retry-after"] == "1"
                assert refused.headers["connection"] == "close"

            # Every slow connection is closed by the server, silently, once its head is late.
            for sock in slow:
                assert read_until_closed(sock) == b""
                sock.close()
            assert time.monotonic() - started >= timeout * 0.9
            wait_for(lambda: open_connections(live) == 0, "the server to drop them")
            # Their file descriptors are released (the server's side of each is closed).
            wait_for(lambda: fds_open() <= baseline + 1, "the file descriptors to be released")
            served = client.get("/healthz", headers={"Connection": "close"})
            assert served.status_code == 200

    messages = [r.getMessage() for r in caplog.records if r.name == LIMITS_LOGGER]
    # One line when the cap bit (not one per refused connection), one when it cleared, one
    # for the late heads (not one per connection).
    assert sum("connection cap reached" in m for m in messages) == 1, messages
    assert sum("back under the cap" in m for m in messages) == 1, messages
    assert sum("no complete request head" in m for m in messages) == 1, messages


def test_a_trickled_head_is_cut_at_the_deadline_not_reset_by_each_byte(tmp_path: Path) -> None:
    with limited(tmp_path, http_header_timeout_s=1.0) as live:
        sock = connect(live, b"G")
        started = time.monotonic()
        sock.settimeout(0.2)
        closed = False
        for byte in b"ET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 200:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "a head trickled a byte every 0.2 s was never cut"
        assert time.monotonic() - started < 10
        sock.close()


def test_oversized_heads_and_too_many_headers_get_431(tmp_path: Path) -> None:
    limits = {"http_max_head_bytes": 8 * 1024, "http_max_headers": 20}
    with limited(tmp_path, **limits) as live:
        # A huge header: the server answers once the bound is passed, and never buffers the
        # rest (it is still being sent when the answer arrives).
        sock = connect(live)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        answer = b""
        sock.settimeout(0.05)
        sent = 0
        while not answer and sent < 50 * 1024 * 1024:
            try:
                sock.sendall(b"a" * 65536)
                sent += 65536
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
        sock.settimeout(15)
        answer += read_until_closed(sock)
        sock.close()
        status, headers, body = reply(answer)
        assert status == 431
        assert headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "HEADERS_TOO_LARGE"
        assert sent < 50 * 1024 * 1024, "the server read a 50 MB header"

        # Too many headers, each small: 431 too; exactly the limit is fine.
        def head(count: int) -> bytes:
            extra = b"".join(b"X-H%d: 1\r\n" % i for i in range(count - 2))
            return b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + b"\r\n"

        with connect(live, head(21)) as sock:
            assert reply(read_until_closed(sock))[0] == 431
        with connect(live, head(20)) as sock:
            assert reply(read_until_closed(sock))[0] == 200
        # A head just under the byte bound is served.
        padding = b"X-Pad: " + b"p" * (7 * 1024) + b"\r\n"
        with connect(live, head(3).replace(b"Host: x\r\n", b"Host: x\r\n" + padding)) as sock:
            assert reply(read_until_closed(sock))[0] == 200
        assert httpx.get(f"{live.url}/healthz").status_code == 200


def test_idle_keep_alive_connections_are_closed(tmp_path: Path) -> None:
    with limited(tmp_path, http_keep_alive_timeout_s=0.5) as live:
        with connect(live) as sock:
            for _ in range(2):  # kept alive between two quick requests
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock)[0] == 200
            started = time.monotonic()
            assert read_until_closed(sock) == b""  # then closed once idle
            assert time.monotonic() - started < 10
        wait_for(lambda: open_connections(live) == 0, "the idle connection to be dropped")


def test_serve_raises_the_soft_open_files_limit(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    if hard == resource.RLIM_INFINITY or hard <= low:
        pytest.skip(f"the hard open-files limit ({hard}) leaves nothing to raise")

    def lower_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    data_dir = tmp_path / "var"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [BALLAST, "serve", "--data-dir", str(data_dir), "--port", str(port), "--no-demo"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=lower_soft_limit,
        )
        try:

            def up() -> bool:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz").is_success
                except httpx.TransportError:
                    return False

            wait_for(up, "ballast serve to start", timeout=60)
            limits = Path(f"/proc/{process.pid}/limits").read_text().splitlines()
            row = next(line for line in limits if line.startswith("Max open files"))
            soft_now, hard_now = (int(v) for v in row.split()[3:5])
            assert (soft_now, hard_now) == (hard, hard), row
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert "raised the open-files limit" in (tmp_path / "serve.log").read_text()
