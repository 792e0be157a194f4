"""In-process transport: httpx talks to the simulator's ASGI app without sockets."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from .errors import SimulatedDisconnect

__all__ = ["SimTransport"]


def _is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, SimulatedDisconnect):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_disconnect(e) for e in exc.exceptions)
    return False


class SimTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` that turns simulated dropped connections into the transport
    error a real socket gives (``httpx.RemoteProtocolError``), not an app exception.

    Args:
        app: the simulator's ASGI app.
        client_ip: the address the simulator sees (rate limits are per IP).
    """

    #: No network is involved: the client may send keys over plain http to it.
    in_process = True

    def __init__(self, app: ASGIApp, client_ip: str = "127.0.0.1") -> None:
        self._inner = httpx.ASGITransport(app=app, client=(client_ip, 50000))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except Exception as exc:
            if _is_disconnect(exc):
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a complete response.", request=request
                ) from None
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()
