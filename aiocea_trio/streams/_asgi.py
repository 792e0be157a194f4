"""An in-process WebSocket to an ASGI app (the simulator) on trio channels, no socket.

Why not httpx-ws's ASGI transport: under trio it enters the app's stream in one task and
leaves it in another, and trio then reports a corrupted nursery stack on every close (seen
with httpx-ws 0.9 and the simulator, closed normally or cancelled). This bridge keeps the
app in a nursery of the connection's own block, so its lifetime is the block's.

The app sees a client the way a socket server would show one: messages in order, a bounded
buffer towards the client (a consumer that stops reading makes the app's own queue fill, as
TCP's window would), and the simulator's ping extension (``aiocea.websocket.ping`` messages
from the app are answered at once with ``aiocea.websocket.pong``: pings are the connection's
business, never the consumer's).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import trio

__all__ = ["PING_EXTENSION", "connect_asgi"]

PING_EXTENSION = "aiocea.websocket.ping"
#: Messages that may wait towards the client: a socket's buffers.
WIRE_BUFFER = 64
#: Longest wait for the app to accept the connection.
ACCEPT_TIMEOUT = 10.0

logger = logging.getLogger("aiocea_trio.streams")


class AsgiWebSocketClosed(ConnectionError):
    """The app closed the connection, refused it, or failed."""


class AsgiWebSocket:
    """The client's end: ``send_text`` to the app, ``receive`` what the app sent."""

    def __init__(
        self,
        to_app: trio.MemorySendChannel[dict[str, Any]],
        from_app: trio.MemoryReceiveChannel[Any],
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self.close_code: int | None = None
        self.close_reason = ""

    async def send_text(self, text: str) -> None:
        if self.close_code is not None:
            raise AsgiWebSocketClosed(f"closed ({self.close_code} {self.close_reason})")
        try:
            await self._to_app.send({"type": "websocket.receive", "text": text})
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise AsgiWebSocketClosed("the app is gone") from exc

    async def receive(self) -> str:
        if self.close_code is not None:
            raise AsgiWebSocketClosed(f"closed ({self.close_code} {self.close_reason})")
        try:
            item = await self._from_app.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError) as exc:
            self.close_code = self.close_code or 1006
            raise AsgiWebSocketClosed("the app ended the connection") from exc
        if isinstance(item, tuple):  # ("close", code, reason)
            self.close_code, self.close_reason = item[1], item[2]
            raise AsgiWebSocketClosed(f"closed by the server ({item[1]} {item[2]})")
        return str(item)


def _scope(url: str, client_ip: str) -> dict[str, Any]:
    parts = urlsplit(url)
    host = parts.hostname or "sim"
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "wss" if parts.scheme in ("wss", "https") else "ws",
        "server": (host, parts.port or 80),
        "client": (client_ip, 50000),
        "root_path": "",
        "path": parts.path or "/",
        "raw_path": (parts.path or "/").encode(),
        "query_string": parts.query.encode(),
        "headers": [(b"host", host.encode())],
        "subprotocols": [],
        "extensions": {PING_EXTENSION: {}},
    }


@asynccontextmanager
async def connect_asgi(
    url: str, app: Any, *, client_ip: str = "127.0.0.1"
) -> AsyncIterator[AsgiWebSocket]:
    """Connect to ``app`` at ``url``'s path and query; leaving the block disconnects."""
    to_app_send, to_app_recv = trio.open_memory_channel[dict[str, Any]](math.inf)
    to_client_send, to_client_recv = trio.open_memory_channel[Any](WIRE_BUFFER)
    accepted = trio.Event()
    refused: list[str] = []

    async def receive() -> dict[str, Any]:
        try:
            return await to_app_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return {"type": "websocket.disconnect", "code": 1006}

    async def send(message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            accepted.set()
        elif kind == "websocket.send":
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode()
            await to_client_send.send(text)
        elif kind == "websocket.close":
            if not accepted.is_set():
                refused.append(f"{message.get('code', 1000)} {message.get('reason') or ''}")
                accepted.set()
            close = ("close", message.get("code", 1000), message.get("reason") or "")
            await to_client_send.send(close)
        elif kind == PING_EXTENSION:  # answered by the connection, whatever the consumer does
            to_app_send.send_nowait(
                {"type": "aiocea.websocket.pong", "bytes": message.get("bytes", b"")}
            )
        elif kind == "websocket.http.response.start":  # a refused handshake (ASGI extension)
            refused.append(f"HTTP {message.get('status')}")
            accepted.set()

    closing = False

    async def run_app() -> None:
        try:
            await app(_scope(url, client_ip), receive, send)
        except Exception as exc:  # the app failed: the client sees a 1011 close, as over TCP
            if not closing:
                logger.error("in-process WebSocket app failed", exc_info=exc)
                with suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    to_client_send.send_nowait(("close", 1011, f"server error: {exc!r}"))
        finally:
            accepted.set()
            to_client_send.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_app)
        to_app_send.send_nowait({"type": "websocket.connect"})
        with trio.move_on_after(ACCEPT_TIMEOUT):
            await accepted.wait()
        if refused or not accepted.is_set():
            nursery.cancel_scope.cancel()
            why = refused[0] if refused else "no answer"
            raise AsgiWebSocketClosed(f"the app refused the connection to {url}: {why}")
        conn = AsgiWebSocket(to_app_send, to_client_recv)
        try:
            yield conn
        finally:
            closing = True
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                to_app_send.send_nowait({"type": "websocket.disconnect", "code": 1000})
            to_app_send.close()
            to_client_recv.close()  # the app's sends now fail: it ends
            nursery.cancel_scope.cancel()
