"""The simulator's routes: each one an endpoint of the registry (``aiocea_trio.endpoints``)
answered by a handler, served by Starlette's router.

The weight a request is charged is the registry entry's, the entry's ``signed`` decides whether
the pipeline authenticates it, and its ``counts_as_order`` whether it is counted against the
ORDERS limits, so a route the simulator serves and a weight the client reserves cannot
disagree. The few routes the registry does not list are in ``SIMULATOR_ONLY``, each with its
reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from ..endpoints import ENDPOINTS, Endpoint, find
from ..markets import Market, market_for_path
from .archives import ArchiveServer
from .market_handlers import MarketHandlers, TickerHandlers
from .params import Handler
from .pipeline import Pipeline, Served
from .responses import reply
from .trading_handlers import TradingHandlers

__all__ = [
    "ARCHIVE_PATH",
    "SIMULATOR_ONLY",
    "Handlers",
    "IndexedRouter",
    "PathRoute",
    "build_app",
    "served",
]

#: The methods the simulator's routes accept (and HEAD, with GET); others get Starlette's 405.
METHODS: Final = ("GET", "POST", "PUT", "DELETE")
#: Binance's archive host (data.binance.vision), served on the simulator's own host.
ARCHIVE_PATH: Final = "/data/{path:path}"

#: Routes the simulator serves that the registry does not list, and why.
SIMULATOR_ONLY: Final[Mapping[tuple[str, str], str]] = {
    ("GET", "/sapi/v1/margin/allPairs"): (
        "ccxt's load_markets asks for it; no margin trading here, so the list is empty; "
        "charged the registry's default weight, as any unlisted endpoint"
    ),
    ("GET", "/sapi/v1/margin/isolated/allPairs"): (
        "as /sapi/v1/margin/allPairs: an empty list for ccxt's load_markets"
    ),
    ("GET", ARCHIVE_PATH): (
        "Binance's public archive host: no market, no weight, no key, no faults"
    ),
}

_REGISTRY: Final = {(e.market.value, e.method, e.path): e for e in ENDPOINTS}
_KLINES = ("symbol", "interval", "startTime", "endTime", "limit", "timeZone")
_AGG = ("symbol", "fromId", "startTime", "endTime", "limit")
_TICKER = ("symbol", "symbols", "symbolStatus")
_ANY = None  # signed routes (and the margin lists) read whatever they are sent: no -1104


@attrs.frozen
class Handlers:
    """The handlers a simulator's routes call."""

    market: MarketHandlers
    tickers: TickerHandlers
    trading: TradingHandlers


def _entry(market: str, method: str, path: str) -> Endpoint:
    """The registry's entry; an unlisted route must be in ``SIMULATOR_ONLY``."""
    found = _REGISTRY.get((market, method, path))
    if found is not None:
        return found
    if (method, path) not in SIMULATOR_ONLY:
        raise LookupError(f"{method} {path} is neither in the registry nor simulator-only")
    signed = path.endswith("/leverageBracket")
    return attrs.evolve(find(market, method, path), signed=signed)


Row = tuple[str, str, Handler, "tuple[str, ...] | None"]


def _shared_rows(h: Handlers) -> list[Row]:
    """What the three markets serve alike (below their own prefix)."""
    m, tr = h.market, h.trading
    return [
        ("GET", "ping", m.ping, ()),
        ("GET", "time", m.time, ()),
        ("GET", "trades", m.trades, ("symbol", "limit")),
        ("GET", "historicalTrades", m.historical_trades, ("symbol", "limit", "fromId")),
        ("GET", "aggTrades", m.agg_trades, _AGG),
        ("GET", "klines", m.klines, _KLINES),
        ("POST", "order", tr.new_order, _ANY),
        ("POST", "order/test", tr.test_order, _ANY),
        ("GET", "order", tr.query_order, _ANY),
        ("DELETE", "order", tr.cancel_order, _ANY),
        ("GET", "openOrders", tr.open_orders, _ANY),
        ("GET", "allOrders", tr.all_orders, _ANY),
    ]


def _spot_rows(h: Handlers) -> list[Row]:
    m, t, tr = h.market, h.tickers, h.trading
    info = (*_TICKER[:2], "permissions", "showPermissionSets", "symbolStatus")
    return [
        *_shared_rows(h),
        ("GET", "exchangeInfo", m.exchange_info, info),
        ("GET", "depth", m.depth, ("symbol", "limit", "symbolStatus")),
        ("GET", "uiKlines", m.klines, _KLINES),
        ("GET", "avgPrice", t.avg_price, ("symbol",)),
        ("GET", "ticker/24hr", t.ticker_24hr, (*_TICKER, "type")),
        ("GET", "ticker/price", t.ticker_price, _TICKER),
        ("GET", "ticker/bookTicker", t.book_ticker, _TICKER),
        ("DELETE", "openOrders", tr.cancel_open_orders, _ANY),
        ("GET", "account", tr.account, _ANY),
        ("GET", "myTrades", tr.my_trades, _ANY),
        ("GET", "account/commission", tr.account_commission, _ANY),
    ]


def _futures_rows(h: Handlers, market: str) -> list[Row]:
    m, t, tr = h.market, h.tickers, h.trading
    sym = ("symbol", "pair") if market == "coinm" else ("symbol",)
    return [
        *_shared_rows(h),
        ("GET", "exchangeInfo", m.exchange_info, ()),
        ("GET", "depth", m.depth, ("symbol", "limit")),
        ("GET", "ticker/price", t.ticker_price, sym),
        ("GET", "ticker/24hr", t.ticker_24hr, sym),
        ("GET", "ticker/bookTicker", t.book_ticker, sym),
        ("GET", "premiumIndex", t.premium_index, sym),
        ("GET", "fundingRate", t.funding_rate, ("symbol", "startTime", "endTime", "limit")),
        ("GET", "openInterest", t.open_interest, ("symbol",)),
        ("DELETE", "allOpenOrders", tr.cancel_open_orders, _ANY),
        ("GET", "userTrades", tr.my_trades, _ANY),
        ("GET", "commissionRate", tr.commission_rate, _ANY),
        ("POST", "leverage", tr.change_leverage, _ANY),
        ("POST", "marginType", tr.change_margin_type, _ANY),
        ("GET", "income", tr.income, _ANY),
    ]


def _versioned_rows(h: Handlers) -> list[tuple[str, Row]]:
    """Routes under other versions (``/fapi/v2``...) and the simulator-only ones."""
    m, t, tr = h.market, h.tickers, h.trading
    oi_hist = ("symbol", "period", "limit", "startTime", "endTime")
    return [
        ("spot", ("GET", "/sapi/v1/system/status", m.system_status, ())),
        ("spot", ("GET", "/sapi/v1/asset/tradeFee", tr.trade_fee, _ANY)),
        ("usdm", ("GET", "/futures/data/openInterestHist", t.open_interest_hist, oi_hist)),
        ("spot", ("GET", "/sapi/v1/margin/allPairs", lambda r: [], _ANY)),
        ("spot", ("GET", "/sapi/v1/margin/isolated/allPairs", lambda r: [], _ANY)),
        ("usdm", ("GET", "/fapi/v2/ticker/price", t.ticker_price, ("symbol",))),
        ("usdm", ("GET", "/fapi/v2/balance", tr.balance, _ANY)),
        ("usdm", ("GET", "/fapi/v3/balance", tr.balance, _ANY)),
        ("usdm", ("GET", "/fapi/v2/positionRisk", tr.position_risk, _ANY)),
        ("usdm", ("GET", "/fapi/v1/leverageBracket", tr.leverage_bracket, _ANY)),
        ("usdm", ("GET", "/fapi/v2/account", tr.futures_account, _ANY)),
        ("usdm", ("GET", "/fapi/v3/account", tr.futures_account, _ANY)),
        ("coinm", ("GET", "/dapi/v1/account", tr.futures_account, _ANY)),
        ("usdm", ("GET", "/fapi/v3/positionRisk", tr.position_risk, _ANY)),
        ("coinm", ("GET", "/dapi/v1/balance", tr.balance, _ANY)),
        ("coinm", ("GET", "/dapi/v1/positionRisk", tr.position_risk, _ANY)),
        ("coinm", ("GET", "/dapi/v2/leverageBracket", tr.leverage_bracket, _ANY)),
    ]


def served(h: Handlers) -> list[Served]:
    """Every (method, path) the simulator serves, as the registry's endpoint and its handler."""
    rows: list[tuple[str, Row]] = [
        ("spot", (method, f"/api/v3/{suffix}", fn, allowed))
        for method, suffix, fn, allowed in _spot_rows(h)
    ]
    for market, prefix in (("usdm", "/fapi/v1"), ("coinm", "/dapi/v1")):
        rows += [
            (market, (method, f"{prefix}/{suffix}", fn, allowed))
            for method, suffix, fn, allowed in _futures_rows(h, market)
        ]
    rows += _versioned_rows(h)
    return [
        Served(
            _entry(market, method, path),
            fn,
            None if allowed is None else frozenset(allowed),
        )
        for market, (method, path, fn, allowed) in rows
    ]


class PathRoute:
    """The ASGI app of one path: its endpoints by method, through the pipeline."""

    def __init__(self, pipeline: Pipeline, market: Market, by_method: Mapping[str, Served]):
        self.pipeline = pipeline
        self.market = market.value
        self.by_method = dict(by_method)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self.by_method.get(scope["method"])
        request = Request(scope, receive)
        response = await self.pipeline.respond(request, self.market, served, known_path=True)
        await response(scope, receive, send)


class _Unrouted:
    """Router's default: a market's unknown path is charged and answered 404, others 404."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is handled by the router
            return
        if scope["method"] not in (*METHODS, "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(METHODS)})
        try:
            market = market_for_path(scope["path"]).value
        except ValueError:
            response = reply(404, {"code": -1000, "msg": "Unknown path."}, {})
        else:
            request = Request(scope, receive)
            response = await self.pipeline.respond(request, market, None, known_path=False)
        await response(scope, receive, send)


class _Archives:
    """``/data/...``: the archive server, outside the pipeline."""

    def __init__(self, archives: ArchiveServer, pipeline: Pipeline) -> None:
        self.archives = archives
        self.clock = pipeline.clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        now = self.clock.now_ms()
        response = await self.archives.respond(scope["method"], scope["path"], now)
        await response(scope, receive, send)


def _path_routes(pipeline: Pipeline, routes: Iterable[Served]) -> list[BaseRoute]:
    by_path: dict[str, dict[str, Served]] = {}
    for s in routes:
        by_path.setdefault(s.endpoint.path, {})[s.endpoint.method] = s
    return [
        Route(
            path,
            PathRoute(pipeline, next(iter(methods.values())).endpoint.market, methods),
            methods=METHODS,
        )
        for path, methods in by_path.items()
    ]


class IndexedRouter(Router):
    """Starlette's router, finding a path without parameters by one dict lookup.

    Starlette matches a request against each route's regex in turn: over the simulator's ~80
    routes that costs tens of microseconds a request (the benchmarks count requests per
    second). Routes with path parameters (``/data/...``) and misses still take the scan.
    """

    def __init__(self, routes: list[BaseRoute], default: Any, websocket: Any = None) -> None:
        super().__init__(routes=routes, redirect_slashes=False, default=default)
        #: The WebSocket paths' app (the streams), kept apart from the REST routes.
        self.websocket = websocket
        self.exact = {
            r.path: r for r in routes if isinstance(r, Route) and not r.param_convertors
        }

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.websocket is not None:
            await self.websocket(scope, receive, send)
            return
        route = self.exact.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        await route.handle(scope, receive, send)


def build_app(
    pipeline: Pipeline, handlers: Handlers, archives: ArchiveServer, streams: Any = None
) -> Starlette:
    """The Starlette application: the registry's routes through ``pipeline``, the archives,
    and WebSocket connections to ``streams``."""
    routes = _path_routes(pipeline, served(handlers))
    routes.append(Route(ARCHIVE_PATH, _Archives(archives, pipeline), methods=METHODS))
    app = Starlette()
    app.router = IndexedRouter(routes, _Unrouted(pipeline), streams)
    return app
