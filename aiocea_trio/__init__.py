"""aiocea_trio: drive Binance REST APIs as composable trio tasks.

The names below are the public API. The simulator (``SimExchange`` and its
demo credentials) needs the ``sim`` extra and is imported on first use, so a
plain install stays small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import BinanceClient as BinanceClient
from .errors import BinanceAPIError as BinanceAPIError
from .errors import BinanceBanError as BinanceBanError
from .errors import BinanceError as BinanceError
from .errors import BinanceRateLimitError as BinanceRateLimitError
from .errors import BinanceResponseError as BinanceResponseError
from .errors import BinanceServerError as BinanceServerError
from .errors import BinanceTimeoutError as BinanceTimeoutError
from .errors import BinanceTransportError as BinanceTransportError
from .errors import ClientNotOpenError as ClientNotOpenError
from .errors import InsecureTransportError as InsecureTransportError
from .markets import Market as Market
from .signing import Ed25519Signer as Ed25519Signer
from .signing import HmacSigner as HmacSigner
from .signing import RsaSigner as RsaSigner
from .signing import Signer as Signer

if TYPE_CHECKING:
    from .sim import DEMO_API_KEY as DEMO_API_KEY
    from .sim import DEMO_API_SECRET as DEMO_API_SECRET
    from .sim import SimExchange as SimExchange

__version__ = "0.1.0"

_LAZY_SIM = frozenset({"DEMO_API_KEY", "DEMO_API_SECRET", "SimExchange"})


def __getattr__(name: str) -> Any:
    if name in _LAZY_SIM:
        from . import sim

        return getattr(sim, name)
    raise AttributeError(f"module 'aiocea_trio' has no attribute {name!r}")


__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "BinanceAPIError",
    "BinanceBanError",
    "BinanceClient",
    "BinanceError",
    "BinanceRateLimitError",
    "BinanceResponseError",
    "BinanceServerError",
    "BinanceTimeoutError",
    "BinanceTransportError",
    "ClientNotOpenError",
    "Ed25519Signer",
    "HmacSigner",
    "InsecureTransportError",
    "Market",
    "RsaSigner",
    "Signer",
    "SimExchange",
    "__version__",
]
