"""Serving the simulator on a real socket with hypercorn's trio worker.

Pings. Hypercorn answers a client's pings itself and drops its pongs, and ASGI has no message
for either, so the stream server's ping extension (``streams.PING_EXTENSION``) is provided by
a subclass of hypercorn's WebSocket stream, installed in ``hypercorn.protocol.h11`` (where
HTTP/1.1 upgrades create their streams) on the first ``serve``. It is inert unless the
serving ``Config`` carries ``_PING_FLAG``, so any other hypercorn server in the process keeps
hypercorn's behaviour. With it the app's ``aiocea.websocket.ping`` becomes a Ping frame, a
client's Pong comes back as ``aiocea.websocket.pong`` and a client's Ping (still answered by
hypercorn) is reported as ``aiocea.websocket.ping``, so it counts toward the message rate.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import hypercorn.protocol.h11
import trio
from hypercorn.config import Config
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import FrameTooLargeError, WSStream
from hypercorn.trio import serve as hypercorn_serve
from starlette.types import ASGIApp, Receive, Scope, Send
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Ping, Pong
from wsproto.events import Message as WSMessage
from wsproto.frame_protocol import CloseReason

from .errors import SimulatedDisconnect
from .streams import PING_EXTENSION

_PONG = "aiocea.websocket.pong"
_PING_FLAG = "aiocea_sim_pings"
"""Attribute set on a hypercorn ``Config`` whose WebSocket streams carry the ping extension."""


class _PingingWSStream(WSStream):
    """Hypercorn's WebSocket stream plus the simulator's ping extension (when enabled)."""

    def _pings(self) -> bool:
        return bool(getattr(self.config, _PING_FLAG, False))

    async def app_send(self, message: Any) -> None:
        if (
            message is not None
            and message["type"] == PING_EXTENSION
            and self._pings()
            and not self.closed
        ):
            await self._send_wsproto_event(Ping(bytes(message.get("bytes", b""))))
            return
        await super().app_send(message)

    async def _handle_events(self) -> None:
        """Hypercorn 0.18's loop (``WSStream._handle_events``) plus pongs and reported pings."""
        if not self._pings():
            await super()._handle_events()
            return
        assert self.app_put is not None
        for event in self.connection.events():
            if isinstance(event, Pong):
                await self.app_put({"type": _PONG, "bytes": bytes(event.payload)})
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
                await self.app_put({"type": PING_EXTENSION, "bytes": bytes(event.payload)})
            elif isinstance(event, WSMessage):
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    await self._send_wsproto_event(
                        CloseConnection(code=CloseReason.MESSAGE_TOO_BIG)
                    )
                    break
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(StreamClosed(stream_id=self.stream_id))


def _install_ping_stream() -> None:
    module = hypercorn.protocol.h11
    if getattr(module, "WSStream", None) is WSStream:
        module.WSStream = _PingingWSStream  # type: ignore[attr-defined]

__all__ = ["serve", "socket_app"]


def socket_app(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` for hypercorn: a simulated disconnect ends the ASGI call after the
    response has started, so hypercorn closes the connection mid-response (the client sees a
    dropped connection) without logging an application error."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # (``_PingingWSStream`` provides it)
            scope = {**scope, "extensions": {**scope.get("extensions", {}), PING_EXTENSION: {}}}
        try:
            await app(scope, receive, send)
        except SimulatedDisconnect:
            return

    return wrapped


def _config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 30.0
    setattr(config, _PING_FLAG, True)
    return config


async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled; ``task_status.started`` gets the base URL.

    ``SimExchange.serve`` calls it: ``url = await nursery.start(sim.serve, "127.0.0.1", 0)``
    (port 0 picks a free port).
    """
    _install_ping_stream()
    wrapped: Any = socket_app(app)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(
                hypercorn_serve, wrapped, _config(host, port), shutdown_trigger=trio.sleep_forever
            )
        )
        task_status.started(binds[0])
