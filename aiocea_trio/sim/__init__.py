"""The embedded Binance-compatible simulator (spot, USDⓈ-M and COIN-M REST on one host).

Quick use::

    sim = SimExchange(seed=1)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        r = await http.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"})

    async with trio.open_nursery() as nursery:
        url = await nursery.start(sim.serve, "127.0.0.1", 0)

See docs/simulator.md.
"""

from __future__ import annotations

from .accounts import AccountConfig as AccountConfig
from .config import DEMO_API_KEY as DEMO_API_KEY
from .config import DEMO_API_SECRET as DEMO_API_SECRET
from .config import DEMO_ED25519_API_KEY as DEMO_ED25519_API_KEY
from .config import DEMO_ED25519_PRIVATE_KEY as DEMO_ED25519_PRIVATE_KEY
from .config import DEMO_ED25519_PUBLIC_KEY as DEMO_ED25519_PUBLIC_KEY
from .config import SimConfig as SimConfig
from .config import demo_account as demo_account
from .exchange import SimExchange as SimExchange
from .faults import FaultConfig as FaultConfig
from .symbols import SymbolSpec as SymbolSpec
from .symbols import default_symbols as default_symbols
from .transport import SimTransport as SimTransport

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "DEMO_ED25519_API_KEY",
    "DEMO_ED25519_PRIVATE_KEY",
    "DEMO_ED25519_PUBLIC_KEY",
    "AccountConfig",
    "FaultConfig",
    "SimConfig",
    "SimExchange",
    "SimTransport",
    "SymbolSpec",
    "default_symbols",
    "demo_account",
]
