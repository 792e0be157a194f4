"""Serving the simulator on a real socket with hypercorn's trio worker."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import SimulatedDisconnect

if TYPE_CHECKING:
    from .exchange import SimExchange

__all__ = ["run_server", "serve", "socket_app"]


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
    sim: SimExchange,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``sim`` until cancelled; ``task_status.started`` gets the base URL.

    Use as ``url = await nursery.start(sim.serve, "127.0.0.1", 0)`` (port 0 picks a free port).
    """
    app: Any = socket_app(sim.app)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn_serve, app, _config(host, port), shutdown_trigger=trio.sleep_forever)
        )
        task_status.started(binds[0])


async def run_server(
    sim: SimExchange,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``sim`` until cancelled, calling ``on_ready(url)`` once listening (for the CLI)."""
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(partial(serve, sim, host, port))
        if on_ready is not None:
            on_ready(url)
