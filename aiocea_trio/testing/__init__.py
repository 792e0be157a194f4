"""Test your own trio code that uses aiocea_trio (see docs/testing.md).

Against the embedded simulator:

- pytest fixtures, registered by the ``pytest11`` entry point when aiocea-trio is installed
  (``-p aiocea_trio.testing`` loads them explicitly): ``binance_sim`` (a `SimExchange` with
  a fixed seed and start time; options from the ``binance_sim_options`` fixture and the
  ``@pytest.mark.binance_sim(**options)`` marker), ``binance_client`` (a `BinanceClient` for
  the demo account, wired in-process, open during the test) and ``binance_sim_url`` (the
  simulator served on ``127.0.0.1``; needs pytest-trio's ``nursery``);
- the same without pytest: `make_sim`, `open_sim_client`, `open_sim_url`.

Against respx: `mock_exchange_info` answers the requests the client makes on its own (each
market's exchangeInfo, read once for its rate limits, and the server time before signed
requests), so a test mocks only the endpoints it is about.

Importing this module is cheap: the simulator (the ``sim`` extra: starlette, hypercorn) is
imported only when a fixture or helper needs it, and pytest only when it is installed, so
the plugin is harmless in every pytest session.
"""

from __future__ import annotations

import importlib.util

from ._helpers import DEFAULT_SIM_OPTIONS as DEFAULT_SIM_OPTIONS
from ._helpers import make_sim as make_sim
from ._helpers import open_sim_client as open_sim_client
from ._helpers import open_sim_url as open_sim_url
from ._respx import mock_exchange_info as mock_exchange_info

__all__ = [
    "DEFAULT_SIM_OPTIONS",
    "make_sim",
    "mock_exchange_info",
    "open_sim_client",
    "open_sim_url",
]

if importlib.util.find_spec("pytest") is not None:
    # The plugin's hooks and fixtures must be attributes of this module (the entry point).
    from ._plugin import binance_client as binance_client
    from ._plugin import binance_sim as binance_sim
    from ._plugin import binance_sim_options as binance_sim_options
    from ._plugin import binance_sim_url as binance_sim_url
    from ._plugin import pytest_configure as pytest_configure
