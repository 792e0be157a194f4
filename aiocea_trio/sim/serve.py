"""Serving the simulator on a real socket with hypercorn's trio worker."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import SimulatedDisconnect

__all__ = ["serve", "socket_app"]


def socket_app(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` for hypercorn: a simulated disconnect ends the ASGI call after the
    response has started, so hypercorn closes the connection mid-response (the client sees a
    dropped connection) without logging an application error."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
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
    wrapped: Any = socket_app(app)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(
                hypercorn_serve, wrapped, _config(host, port), shutdown_trigger=trio.sleep_forever
            )
        )
        task_status.started(binds[0])
