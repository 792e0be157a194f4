"""Where a market's streams live and the limits of a connection (Binance's WebSocket docs)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..markets import Market

__all__ = ["LIMITS", "MarketLimits", "asgi_app_of", "route_of", "stream_base", "stream_url"]


@attrs.frozen
class MarketLimits:
    #: Streams one connection may carry.
    streams_per_connection: int
    #: Incoming messages per second Binance allows (pings, pongs and JSON all count).
    messages_per_second: float
    #: How often the server pings (s): a reader answering within it is never dropped.
    ping_interval: float


LIMITS = {
    Market.SPOT: MarketLimits(1024, 5, 20),
    Market.USDM: MarketLimits(1024, 10, 180),
    Market.COINM: MarketLimits(200, 10, 180),
}

_HOSTS = {
    (Market.SPOT, False): "wss://stream.binance.com:9443",
    (Market.USDM, False): "wss://fstream.binance.com",
    (Market.COINM, False): "wss://dstream.binance.com",
    (Market.SPOT, True): "wss://stream.testnet.binance.vision",
    (Market.USDM, True): "wss://fstream.binancefuture.com",
    (Market.COINM, True): "wss://dstream.binancefuture.com",
}
#: Where the simulator (a ``base_url``) serves each market's streams.
_SIM_PREFIX = {Market.SPOT: "", Market.USDM: "/fstream", Market.COINM: "/dstream"}
_PUBLIC = re.compile(r"(bookticker|@depth|@rpidepth)", re.IGNORECASE)


def stream_base(client: Any, market: Market) -> str:
    """The stream host for ``market``: Binance's (or its testnet's), or the client's
    ``base_url`` with ``ws``/``wss`` and the market's prefix."""
    base = getattr(client, "base_url", None)
    if base:
        parts = urlsplit(base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{_SIM_PREFIX[market]}"
    return _HOSTS[market, bool(getattr(client, "testnet", False))]


def route_of(market: Market, stream: str) -> str:
    """USDⓈ-M splits streams by route: ``/public`` (book tickers, depth) or ``/market``
    (the rest); a route carries only its own kind. Other markets have one route, ``""``."""
    if market is not Market.USDM:
        return ""
    return "/public" if _PUBLIC.search(stream) else "/market"


def stream_url(base: str, route: str, streams: list[str]) -> str:
    """A combined-stream URL: frames arrive as ``{"stream": name, "data": payload}``."""
    return f"{base}{route}/stream?streams={'/'.join(streams)}"


def asgi_app_of(client: Any) -> Any:
    """The ASGI app behind an in-process transport (the simulator's), else ``None``.

    ``SimExchange.client()`` gives the client a transport that calls the app directly; its
    streams must then reach the same app in-process, not a socket.
    """
    transport = getattr(client, "transport", None)
    if transport is None or not getattr(transport, "in_process", True):
        return None
    for holder in (transport, getattr(transport, "_inner", None)):
        app = getattr(holder, "app", None)
        if app is not None:
            return app
    return None
