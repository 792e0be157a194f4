"""The simulator for tests, without pytest: fixed options, a client, a served URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import trio

if TYPE_CHECKING:
    from ..client import BinanceClient
    from ..sim import SimExchange

__all__ = ["DEFAULT_SIM_OPTIONS", "make_sim", "open_sim_client", "open_sim_url", "sim_class"]

#: What `make_sim` and the ``binance_sim`` fixture pass to `SimExchange` unless told
#: otherwise: seed 0 and a clock starting at 2025-01-01 00:00:00 UTC, so that every run
#: sees the same prices, symbols and timestamps.
DEFAULT_SIM_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType(
    {"seed": 0, "start_time_ms": 1_735_689_600_000}
)

_MISSING_EXTRA = (
    "the simulator needs the 'sim' extra (starlette, hypercorn): "
    "pip install 'aiocea-trio[sim]' ({error})"
)


def sim_class() -> type[SimExchange]:
    """`SimExchange`, imported now; a clear ImportError naming the extra if it is missing."""
    try:
        from ..sim import SimExchange
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA.format(error=exc)) from exc
    return SimExchange


def make_sim(**options: Any) -> SimExchange:
    """A `SimExchange` with `DEFAULT_SIM_OPTIONS`, ``options`` (`SimConfig`'s keywords) winning.

    Raises:
        ImportError: the ``sim`` extra is not installed.
    """
    return sim_class()(**{**DEFAULT_SIM_OPTIONS, **options})


@asynccontextmanager
async def open_sim_client(
    sim: SimExchange | None = None, **client_options: Any
) -> AsyncIterator[BinanceClient]:
    """An open `BinanceClient` for the demo account of ``sim`` (default: `make_sim()`),
    wired in-process (no sockets); ``client_options`` go to the client.

    Entering and leaving are checkpoints.
    """
    sim = make_sim() if sim is None else sim
    async with sim.client(**client_options) as client:
        yield client


@asynccontextmanager
async def open_sim_url(
    sim: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``sim`` (default: `make_sim()`) over HTTP while the block runs; yield its URL.

    Port 0 picks a free port. For any HTTP client (python-binance, ccxt, your own httpx),
    all three markets at one base URL. The server runs in a nursery of its own, cancelled
    when the block ends.
    """
    sim = make_sim() if sim is None else sim
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(sim.serve, host, port)
        try:
            yield url
        finally:
            nursery.cancel_scope.cancel()
