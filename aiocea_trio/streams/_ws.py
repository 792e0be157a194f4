"""The one place that knows which WebSocket library is used, so it can be swapped.

Over a socket: websockets' trio client (the cheapest of the three measured in
benchmarks/bench_ws_libs.py: ~7 µs of CPU per message against ~18 for trio-websocket and
~46 for httpx-ws). In-process (the simulator's ASGI app, no socket): our own bridge on trio
channels (``_asgi.py``; httpx-ws's ASGI transport corrupts trio's nursery stack when it
closes). No library answers pings while the application is not reading, so the stream layer
always drains the socket in its own task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

__all__ = ["WebSocket", "WebSocketClosed", "connect", "require_extra"]

#: Largest message accepted: a 1024-stream LIST_SUBSCRIPTIONS reply or a depth-20 frame fits.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class WebSocketClosed(ConnectionError):
    """The connection failed or was closed; whatever the library said is the cause."""


class WebSocket(Protocol):
    """What the stream layer needs from a connection (pings are answered inside)."""

    async def send_text(self, text: str) -> None: ...

    async def receive(self) -> str: ...


class _WebsocketsConn:
    __slots__ = ("_ws",)

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except Exception as exc:
            raise WebSocketClosed(f"send failed: {exc!r}") from exc

    async def receive(self) -> str:
        try:
            msg = await self._ws.recv()
        except Exception as exc:
            raise WebSocketClosed(f"connection closed: {exc!r}") from exc
        return msg if isinstance(msg, str) else msg.decode()


@asynccontextmanager
async def connect(url: str, *, asgi_app: Any = None) -> AsyncIterator[WebSocket]:
    """Open ``url`` (``ws://`` or ``wss://``); leaving the block closes it.

    Args:
        url: the stream URL.
        asgi_app: an ASGI app to reach in-process instead of over a socket.

    Raises:
        WebSocketClosed: the handshake failed (refused, HTTP error, timeout).
    """
    if asgi_app is not None:
        async with _connect_asgi(url, asgi_app) as conn:
            yield conn
        return
    require_extra("websockets")
    from websockets.trio.client import connect as ws_connect

    # Binance pings us and our own watchdog probes a silent connection: no client pings.
    cm = ws_connect(
        url, ping_interval=None, compression=None, max_size=MAX_MESSAGE_BYTES, open_timeout=10
    )
    try:
        ws = await cm.__aenter__()
    except Exception as exc:
        raise WebSocketClosed(f"cannot connect to {url}: {exc!r}") from exc
    try:
        yield _WebsocketsConn(ws)
    except BaseException as exc:
        await _aexit_quietly(cm, exc)
        raise
    else:
        await _aexit_quietly(cm, None)


def require_extra(module: str) -> None:
    """Streams need the ``streams`` extra; say so rather than fail deep inside a connect."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"WebSocket streams need {module}, from the 'streams' extra: "
            "pip install 'aiocea-trio[streams]'"
        )


async def _aexit_quietly(cm: Any, exc: BaseException | None) -> None:
    import trio

    # Closing must not hang on a dead peer, nor turn a cancellation into something else.
    with trio.move_on_after(2, shield=True):
        with suppress(Exception):
            await cm.__aexit__(None, None, None)


@asynccontextmanager
async def _connect_asgi(url: str, app: Any) -> AsyncIterator[WebSocket]:
    from ._asgi import AsgiWebSocketClosed, connect_asgi

    try:
        async with connect_asgi(url, app) as conn:
            yield _AsgiConn(conn)
    except AsgiWebSocketClosed as exc:
        raise WebSocketClosed(str(exc)) from exc


class _AsgiConn:
    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def send_text(self, text: str) -> None:
        from ._asgi import AsgiWebSocketClosed

        try:
            await self._conn.send_text(text)
        except AsgiWebSocketClosed as exc:
            raise WebSocketClosed(str(exc)) from exc

    async def receive(self) -> str:
        from ._asgi import AsgiWebSocketClosed

        try:
            return str(await self._conn.receive())
        except AsgiWebSocketClosed as exc:
            raise WebSocketClosed(str(exc)) from exc
