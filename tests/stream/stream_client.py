"""A WebSocket client for the stream, written from docs/websocket.md (not from the server)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed


def stream_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/stream"


def auth_message(api_key: str, api_secret: str, nonce: str, **extra: Any) -> dict[str, Any]:
    """``auth`` signed over the connection's nonce (from its ``welcome``), like REST's body."""
    timestamp = str(int(time.time() * 1000))
    message = f"{timestamp}GET/stream{nonce}".encode()
    signature = hmac.new(api_secret.encode(), message, hashlib.sha256).hexdigest()
    signed = {"api_key": api_key, "timestamp": timestamp, "signature": signature}
    return {"op": "auth", **signed, **extra}


class StreamClient:
    """Sends requests, and keeps every message it reads in arrival order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._next_id = 0
        self._read = 0  # messages already handed to ``next``

    @classmethod
    async def connect(cls, base_url: str, **kwargs: Any) -> StreamClient:
        return cls(await websockets.connect(stream_url(base_url), **kwargs))

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, message: dict[str, Any] | str) -> Any:
        """Send a request (an id is added to dicts without one); return its id."""
        if isinstance(message, dict):
            if "id" not in message:
                self._next_id += 1
                message = {**message, "id": self._next_id}
            await self.ws.send(json.dumps(message))
            return message["id"]
        await self.ws.send(message)
        return None

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.messages.append(message)
        return message

    async def wait_for(self, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        """The first message (already read or still to come) that matches."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while self._read < len(self.messages):
                message = self.messages[self._read]
                self._read += 1
                if predicate(message):
                    return message
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("no matching message")
            await self.receive(left)

    async def request(self, message: dict[str, Any] | str, timeout: float = 10) -> dict[str, Any]:
        """Send a request and wait for its reply (the reply to a non-object has id null)."""
        request_id = await self.send(message)
        return await self.wait_for(
            lambda m: m.get("id") == request_id and m["type"] not in ("snapshot", "update"),
            timeout,
        )

    async def nonce(self) -> str:
        """The nonce of this connection's ``welcome`` (the server's first message)."""
        if self.messages and self.messages[0].get("type") == "welcome":
            return str(self.messages[0]["nonce"])
        welcome = await self.wait_for(lambda m: m["type"] in ("welcome", "error"))
        assert welcome["type"] == "welcome", welcome
        return str(welcome["nonce"])

    async def auth(self, api_key: str, api_secret: str, **extra: Any) -> dict[str, Any]:
        nonce = await self.nonce()
        return await self.request(auth_message(api_key, api_secret, nonce, **extra))

    async def subscribe(self, channel: str, **fields: Any) -> dict[str, Any]:
        """Subscribe and return the snapshot."""
        reply = await self.request({"op": "subscribe", "channel": channel, **fields})
        assert reply["type"] == "subscribed", reply
        return await self.wait_for(lambda m: m["type"] == "snapshot" and m["channel"] == channel)

    async def sync(self) -> int:
        """Everything committed before now has been read; return the exchange_seq of then."""
        pong = await self.request({"op": "ping"})
        assert pong["type"] == "pong", pong
        exchange_seq: int = pong["exchange_seq"]
        return exchange_seq

    async def closed_with(self) -> int | None:
        """Read until the server closes the connection; its close code."""
        try:
            while True:
                await self.receive(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
        except TimeoutError:
            return None  # still open after ten silent seconds

    def data(self, channel: str, market_id: str | None = None) -> list[dict[str, Any]]:
        """Every snapshot and update read so far on one channel (and market)."""
        return [
            m
            for m in self.messages
            if m.get("channel") == channel
            and m["type"] in ("snapshot", "update")
            and (market_id is None or m.get("market_id") == market_id)
        ]
