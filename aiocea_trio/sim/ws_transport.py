"""httpx-ws's ASGI WebSocket transport, with the simulator's ping extension and a bounded
queue: in-process streams that ping, see pongs and feel a slow consumer.

httpx-ws's own transport (0.9) raises on a client's Ping frame, cannot carry a server's ping
(ASGI has none) and queues without bound. This subclass translates ``aiocea.websocket.ping``
messages to Ping frames and the client's Pong / Ping frames back to messages (see
``streams.py``), and bounds the server-to-client queue, so a client that stops reading makes
the simulator's own bounded queue fill, as a socket's buffers would.
"""

from __future__ import annotations

from typing import Any

import anyio
import wsproto
import wsproto.events
from anyio.streams.stapled import StapledObjectStream
from httpx_ws.transport import ASGIWebSocketAsyncNetworkStream, ASGIWebSocketTransport
from starlette.types import ASGIApp

from .streams import PING_EXTENSION

__all__ = ["SimWebSocketTransport"]

#: Messages in flight from the simulator to an in-process client (a socket's buffers).
WIRE_BUFFER = 64


class _Stream(ASGIWebSocketAsyncNetworkStream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = {**self.scope, "extensions": {PING_EXTENSION: {}}}
        self._send_queue.send_stream.close()  # (replaced by a bounded one)
        self._send_queue.receive_stream.close()
        self._send_queue = StapledObjectStream(
            *anyio.create_memory_object_stream[dict[str, Any]](max_buffer_size=WIRE_BUFFER)
        )

    # (the signatures are httpcore's network stream's, timeouts included)
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        message = await self.receive(timeout=timeout)
        kind = message["type"]
        if kind == "_raw":  # a frame already encoded (a pong to the client)
            return bytes(message["bytes"])
        event: wsproto.events.Event
        if kind == "aiocea.websocket.ping":
            event = wsproto.events.Ping(bytes(message.get("bytes", b"")))
        elif kind == "websocket.close":  # (httpx-ws fails on a close without a reason)
            event = wsproto.events.CloseConnection(message["code"], message.get("reason"))
        elif kind != "websocket.send":
            raise RuntimeError(f"unexpected ASGI message {kind}")
        elif message.get("text") is not None:
            event = wsproto.events.TextMessage(message["text"])
        else:
            event = wsproto.events.BytesMessage(message.get("bytes") or b"")
        return self.connection.send(event)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.connection.receive_data(buffer)
        for event in self.connection.events():
            if isinstance(event, wsproto.events.Pong):
                await self.send({"type": "aiocea.websocket.pong", "bytes": bytes(event.payload)})
            elif isinstance(event, wsproto.events.Ping):
                # answered as a socket server would, and counted by the simulator
                pong = self.connection.send(event.response())
                await self._send_queue.send({"type": "_raw", "bytes": pong})
                await self.send({"type": "aiocea.websocket.ping", "bytes": bytes(event.payload)})
            elif isinstance(event, wsproto.events.CloseConnection):
                await self.send(
                    {"type": "websocket.disconnect", "code": event.code, "reason": event.reason}
                )
            elif isinstance(event, wsproto.events.TextMessage):
                await self.send({"type": "websocket.receive", "text": event.data})
            elif isinstance(event, wsproto.events.BytesMessage):
                await self.send({"type": "websocket.receive", "bytes": bytes(event.data)})


class SimWebSocketTransport(ASGIWebSocketTransport):
    """In-process transport for REST and streams: ``async with sim.ws_transport() as t:``,
    then ``httpx.AsyncClient(transport=t)`` and ``httpx_ws.aconnect_ws(url, client)``."""

    def __init__(self, app: ASGIApp, client_ip: str = "127.0.0.1") -> None:
        super().__init__(app=app, client=(client_ip, 50000))

    async def _create_asgi_websocket_async_network_stream(self, *, task_status: Any) -> None:
        stream = _Stream(self.app, self.scope, self._task_group, self._initial_receive_timeout)
        assert self._exit_stack is not None
        result = await self._exit_stack.enter_async_context(stream)
        task_status.started(result)
