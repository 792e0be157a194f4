"""The pytest plugin: simulator fixtures (loaded only when pytest is installed).

Fixture names start with ``binance_`` so that they do not clash with a project's own
``sim`` or ``client`` fixtures (a conftest fixture of the same name would shadow these).
The async fixtures need an async test runner for trio: pytest-trio (``trio_mode = true``,
or ``@pytest.mark.trio``), whose ``autojump_clock`` makes every wait of the simulator and
the client instant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from ._helpers import DEFAULT_SIM_OPTIONS, sim_class

if TYPE_CHECKING:
    import trio

    from ..client import BinanceClient
    from ..sim import SimExchange

__all__ = [
    "binance_client",
    "binance_sim",
    "binance_sim_options",
    "binance_sim_url",
    "pytest_configure",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "binance_sim(**options): SimExchange options for the binance_sim fixture "
        "(aiocea_trio.testing), over binance_sim_options",
    )


@pytest.fixture
def binance_sim_options() -> dict[str, Any]:
    """The `SimExchange` options of ``binance_sim``: override this fixture to change them
    for a module or a directory (``@pytest.mark.binance_sim(...)`` wins over it)."""
    return dict(DEFAULT_SIM_OPTIONS)


@pytest.fixture
def binance_sim(request: pytest.FixtureRequest, binance_sim_options: dict[str, Any]) -> SimExchange:
    """A fresh simulator: seed 0, clock from 2025-01-01 UTC, unless options say otherwise.

    Its clock starts when first read inside the test's trio run, so it follows the test's
    clock (``autojump_clock`` included).
    """
    options = dict(binance_sim_options)
    for marker in reversed(list(request.node.iter_markers("binance_sim"))):
        if marker.args:
            raise pytest.UsageError("@pytest.mark.binance_sim takes keyword arguments only")
        options.update(marker.kwargs)  # the closest marker (the test's own) is applied last
    try:
        exchange = sim_class()
    except ImportError as exc:
        pytest.fail(f"binance_sim: {exc}", pytrace=False)
    return exchange(**options)


@pytest.fixture
async def binance_client(binance_sim: SimExchange) -> AsyncIterator[BinanceClient]:
    """A `BinanceClient` for ``binance_sim``'s demo account (in-process), open during the test."""
    async with binance_sim.client() as client:
        yield client


@pytest.fixture
async def binance_sim_url(binance_sim: SimExchange, nursery: trio.Nursery) -> str:
    """``binance_sim`` served on ``127.0.0.1`` (a free port) in pytest-trio's ``nursery``,
    which is cancelled after the test; the base URL of all three markets."""
    url: str = await nursery.start(binance_sim.serve, "127.0.0.1", 0)
    return url
