"""The endpoint registry: everything the library knows about a Binance REST endpoint, once.

An `Endpoint` says which market serves it, its method and path, the request weight Binance
charges (a number, or a rule reading the parameters), whether it is signed, and whether it
is an order (counted against the per-account ORDERS limits, placed or cancelled exactly
once). The client reserves weights from here, the catalog's tasks point at their entry, the
history downloader takes its paths from here, and the simulator serves and charges the same
entries, so a route it serves and a weight the client reserves cannot disagree.

Source for the numbers: Binance's API documentation for spot, USDⓈ-M and COIN-M futures
(endpoint pages, "Limits" and "Rate limits" sections); where its figures and the live
exchange's headers disagree, the exchange's headers win at run time.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from .markets import Market

__all__ = [
    "AGG_TRADES",
    "CANCEL_ORDER",
    "DEFAULT_ORDER_LIMITS",
    "DEFAULT_WEIGHT",
    "DEFAULT_WEIGHT_LIMITS",
    "ENDPOINTS",
    "EXCHANGE_INFO",
    "FUNDING_RATE",
    "INTERVAL_MS",
    "KLINES",
    "KLINE_INTERVALS",
    "NEW_ORDER",
    "PING",
    "QUERY_ORDER",
    "SERVER_TIME",
    "UNIT_SECONDS",
    "Endpoint",
    "LimitRule",
    "OrderAction",
    "WeightRule",
    "find",
    "interval_ms",
]

WeightRule = Callable[[Mapping[str, str]], int]
"""A weight that depends on the request's parameters (``limit``, ``symbol``...)."""

#: Weight of an endpoint that is not in the registry: a cheap guess that keeps an unknown
#: request accounted for rather than free.
DEFAULT_WEIGHT: Final = 1

#: REQUEST_WEIGHT limits per IP per minute (spot since 2023-08-25; futures per exchangeInfo).
DEFAULT_WEIGHT_LIMITS: Final[Mapping[Market, int]] = {
    Market.SPOT: 6000,
    Market.USDM: 2400,
    Market.COINM: 2400,
}

#: ORDERS limits per account, ``(window seconds, limit)``. Binance publishes the real values
#: in exchangeInfo only; these are the common ones (spot 100/10s + 200000/1d, futures
#: 300/10s + 1200/1min), unverified for the 10 s futures counter.
DEFAULT_ORDER_LIMITS: Final[Mapping[Market, tuple[tuple[int, int], ...]]] = {
    Market.SPOT: ((10, 100), (86400, 200000)),
    Market.USDM: ((10, 300), (60, 1200)),
    Market.COINM: ((10, 300), (60, 1200)),
}

#: Seconds per unit letter of Binance's interval names (``1m``, ``4h``, ``1d``) and of the
#: ``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-10S`` headers (upper case there).
UNIT_SECONDS: Final[Mapping[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

#: Kline intervals in milliseconds; ``1M`` (a calendar month) has no fixed length.
INTERVAL_MS: Final[Mapping[str, int]] = {
    name: int(name[:-1]) * UNIT_SECONDS[name[-1]] * 1000
    for name in (
        *("1s", "1m", "3m", "5m", "15m", "30m"),
        *("1h", "2h", "4h", "6h", "8h", "12h"),
        *("1d", "3d", "1w"),
    )
}

_FUTURES_INTERVALS: Final = (*(i for i in INTERVAL_MS if i != "1s"), "1M")
#: The kline intervals each market serves (spot alone has ``1s``).
KLINE_INTERVALS: Final[Mapping[Market, tuple[str, ...]]] = {
    Market.SPOT: ("1s", *_FUTURES_INTERVALS),
    Market.USDM: _FUTURES_INTERVALS,
    Market.COINM: _FUTURES_INTERVALS,
}


def interval_ms(interval: str) -> int | None:
    """Milliseconds in one candle of ``interval``; None for ``1M`` (months vary)."""
    return INTERVAL_MS.get(interval)


@attrs.frozen
class LimitRule:
    """The values an endpoint's ``limit`` parameter may take: a range, or a fixed set
    (futures depth), and what Binance does with a ``limit`` above the largest.

    Attributes:
        oversized: ``"cap"``: the exchange answers as if sent the largest (spot
            market data: ``aggTrades?limit=12000`` answers 1000 rows); ``"reject"``: it
            answers -1130 (the futures markets). A value below ``low`` is always -1130.
            The catalog refuses out-of-range values before sending either way.
    """

    low: int = 1
    high: int = 1000
    choices: tuple[int, ...] = ()
    oversized: Literal["cap", "reject"] = "reject"

    def allows(self, value: int) -> bool:
        if self.choices:
            return value in self.choices
        return self.low <= value <= self.high

    def served(self, value: int) -> int | None:
        """The page size the exchange serves for ``value``; None: it answers -1130."""
        if value > self.largest and self.oversized == "cap":
            return self.largest
        if self.choices:
            return value if value in self.choices else None
        return value if self.low <= value <= self.high else None

    @property
    def largest(self) -> int:
        """The largest page this endpoint serves."""
        return max(self.choices) if self.choices else self.high

    def __str__(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        return f"between {self.low} and {self.high}"


class OrderAction(enum.Enum):
    """What the client's exactly-once layer does for an order endpoint."""

    PLACE = "place"
    """A new order: sent with a ``newClientOrderId``; after an ambiguous failure, looked
    up by it and sent again only if the exchange does not have it."""
    CANCEL = "cancel"
    """A cancel: after an ambiguous failure the order is queried before cancelling again."""


@attrs.frozen
class Endpoint:
    """One REST endpoint of one market.

    Attributes:
        market: which market's host serves it.
        method: the HTTP method (upper case).
        path: the path, e.g. ``/api/v3/depth``.
        weight: the REQUEST_WEIGHT it costs, or a rule computing it from the parameters.
        signed: needs the API key and a signature.
        order: placed or cancelled exactly once by the client (None: not an order call).
        counts_as_order: counts toward the per-account ORDERS limits (order placement,
            not test orders).
        free_on_success: costs weight 0 when the exchange accepts it (spot order
            placement and cancellation since 2026-04-02); the weight is reserved anyway.
        limit: the values its ``limit`` parameter may take (None: it has none, or the
            library does not check it).
    """

    market: Market
    method: str
    path: str
    weight: int | WeightRule = DEFAULT_WEIGHT
    signed: bool = False
    order: OrderAction | None = None
    counts_as_order: bool = False
    free_on_success: bool = False
    limit: LimitRule | None = None

    def request_weight(self, params: Mapping[str, str], *, success: bool = False) -> int:
        """The weight charged for one request with these (string) parameters.

        ``success=False`` (the default) is what to reserve before the outcome is known.
        """
        if success and self.free_on_success:
            return 0
        weight = self.weight
        return weight if isinstance(weight, int) else weight(params)


# -- weight rules -------------------------------------------------------------------------


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        return default


def _symbol_count(params: Mapping[str, str]) -> int | None:
    """Number of symbols in ``symbols`` (a JSON array), or None when absent or malformed."""
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return len(value) if isinstance(value, list) else None


def _spot_depth(params: Mapping[str, str]) -> int:
    limit = _int_param(params, "limit", 100)
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _spot_ticker_24hr(params: Mapping[str, str]) -> int:
    if "symbol" in params:
        return 2
    n = _symbol_count(params)
    if n is None:
        return 80
    if n <= 20:
        return 2
    if n <= 100:
        return 40
    return 80


def _one_or_all(one: int, many: int) -> WeightRule:
    """``one`` for a single symbol, ``many`` for all symbols."""
    return lambda params: one if "symbol" in params else many


def _spot_rolling_ticker(params: Mapping[str, str]) -> int:
    n = _symbol_count(params) or 1
    return min(4 * n, 200)


def _spot_order_test(params: Mapping[str, str]) -> int:
    return 20 if params.get("computeCommissionRates", "").lower() == "true" else 1


def _spot_my_trades(params: Mapping[str, str]) -> int:
    return 5 if "orderId" in params else 20


def _futures_depth(params: Mapping[str, str]) -> int:
    limit = _int_param(params, "limit", 500)
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def _futures_klines(params: Mapping[str, str]) -> int:
    limit = _int_param(params, "limit", 500)
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


# -- the table ----------------------------------------------------------------------------

_PLACE, _CANCEL = OrderAction.PLACE, OrderAction.CANCEL


def _market(market: Market, rows: Iterable[tuple[Any, ...]]) -> list[Endpoint]:
    """Entries from ``(method, path, weight[, flags])`` rows: compact, one line each."""
    out = []
    for row in rows:
        method, path, weight = row[:3]
        options: Mapping[str, Any] = row[3] if len(row) > 3 else {}
        out.append(Endpoint(market, method, path, weight, **options))
    return out


_SIGNED = {"signed": True}
_PAGE_1000 = {"limit": LimitRule(1, 1000)}
_SPOT_PAGE_1000 = {"limit": LimitRule(1, 1000, oversized="cap")}
_PAGE_1500 = {"limit": LimitRule(1, 1500)}
_FUTURES_DEPTH = {"limit": LimitRule(choices=(5, 10, 20, 50, 100, 500, 1000))}
_SPOT_PLACE = {"signed": True, "order": _PLACE, "counts_as_order": True, "free_on_success": True}
_SPOT_FREE = {"signed": True, "free_on_success": True}
_SPOT_ORDER_LIST = {"signed": True, "counts_as_order": True, "free_on_success": True}

_SPOT = _market(
    Market.SPOT,
    [
        ("GET", "/api/v3/ping", 1),
        ("GET", "/api/v3/time", 1),
        ("GET", "/api/v3/exchangeInfo", 20),
        ("GET", "/api/v3/depth", _spot_depth, {"limit": LimitRule(1, 5000, oversized="cap")}),
        ("GET", "/api/v3/trades", 25, _SPOT_PAGE_1000),
        ("GET", "/api/v3/historicalTrades", 25, _SPOT_PAGE_1000),
        ("GET", "/api/v3/aggTrades", 4, _SPOT_PAGE_1000),
        ("GET", "/api/v3/klines", 2, _SPOT_PAGE_1000),
        ("GET", "/api/v3/uiKlines", 2, _SPOT_PAGE_1000),
        ("GET", "/api/v3/avgPrice", 2),
        ("GET", "/api/v3/ticker/24hr", _spot_ticker_24hr),
        ("GET", "/api/v3/ticker/price", _one_or_all(2, 4)),
        ("GET", "/api/v3/ticker/bookTicker", _one_or_all(2, 4)),
        ("GET", "/api/v3/ticker", _spot_rolling_ticker),
        ("POST", "/api/v3/order", 1, _SPOT_PLACE),
        ("POST", "/api/v3/order/test", _spot_order_test, _SIGNED),
        ("GET", "/api/v3/order", 4, _SIGNED),
        ("DELETE", "/api/v3/order", 1, {**_SPOT_FREE, "order": _CANCEL}),
        ("POST", "/api/v3/order/cancelReplace", 1, {**_SPOT_ORDER_LIST}),
        ("GET", "/api/v3/openOrders", _one_or_all(6, 80), _SIGNED),
        ("DELETE", "/api/v3/openOrders", 1, _SPOT_FREE),
        ("GET", "/api/v3/allOrders", 20, _SIGNED),
        ("GET", "/api/v3/account", 20, _SIGNED),
        ("GET", "/api/v3/myTrades", _spot_my_trades, {**_SIGNED, **_PAGE_1000}),
        ("GET", "/api/v3/account/commission", 20, _SIGNED),
        ("GET", "/sapi/v1/system/status", 1),
        ("GET", "/sapi/v1/asset/tradeFee", 1, _SIGNED),
        ("GET", "/api/v3/rateLimit/order", 40, _SIGNED),
        ("POST", "/api/v3/sor/order", 1, _SPOT_ORDER_LIST),
        ("POST", "/api/v3/orderList/oco", 1, _SPOT_ORDER_LIST),
        ("POST", "/api/v3/orderList/oto", 1, _SPOT_ORDER_LIST),
        ("POST", "/api/v3/orderList/otoco", 1, _SPOT_ORDER_LIST),
        ("POST", "/api/v3/orderList/opo", 1, _SPOT_FREE),
        ("POST", "/api/v3/orderList/opoco", 1, _SPOT_FREE),
        ("DELETE", "/api/v3/orderList", 1, _SPOT_FREE),
    ],
)

_FUTURES_PLACE = {"signed": True, "order": _PLACE, "counts_as_order": True}
_FUTURES_BATCH = {"signed": True, "counts_as_order": True}


def _futures(market: Market, prefix: str, overrides: Mapping[str, object]) -> list[Endpoint]:
    """USDⓈ-M and COIN-M share most of their endpoints; ``overrides`` holds where they differ."""

    def w(path: str, default: int | WeightRule) -> Any:
        return overrides.get(path, default)

    p = prefix
    return _market(
        market,
        [
            ("GET", f"/{p}/v1/ping", 1),
            ("GET", f"/{p}/v1/time", 1),
            ("GET", f"/{p}/v1/exchangeInfo", 1),
            ("GET", f"/{p}/v1/depth", _futures_depth, _FUTURES_DEPTH),
            ("GET", f"/{p}/v1/trades", 5, _PAGE_1000),
            ("GET", f"/{p}/v1/historicalTrades", 20, _PAGE_1000),
            ("GET", f"/{p}/v1/aggTrades", 20, _PAGE_1000),
            ("GET", f"/{p}/v1/klines", _futures_klines, _PAGE_1500),
            ("GET", f"/{p}/v1/continuousKlines", _futures_klines, _PAGE_1500),
            ("GET", f"/{p}/v1/indexPriceKlines", _futures_klines, _PAGE_1500),
            ("GET", f"/{p}/v1/markPriceKlines", _futures_klines, _PAGE_1500),
            ("GET", f"/{p}/v1/ticker/price", _one_or_all(1, 2)),
            ("GET", f"/{p}/v1/ticker/24hr", _one_or_all(1, 40)),
            ("GET", f"/{p}/v1/ticker/bookTicker", _one_or_all(2, 5)),
            ("GET", f"/{p}/v1/premiumIndex", w("premiumIndex", 1)),
            ("GET", f"/{p}/v1/fundingRate", 1, _PAGE_1000),
            ("GET", f"/{p}/v1/openInterest", 1),
            ("POST", f"/{p}/v1/order", w("order", 1), _FUTURES_PLACE),
            ("POST", f"/{p}/v1/order/test", w("order", 1), _SIGNED),
            ("POST", f"/{p}/v1/batchOrders", 5, _FUTURES_BATCH),
            ("GET", f"/{p}/v1/order", 1, _SIGNED),
            ("DELETE", f"/{p}/v1/order", 1, {**_SIGNED, "order": _CANCEL}),
            ("GET", f"/{p}/v1/openOrders", w("openOrders", _one_or_all(1, 40)), _SIGNED),
            ("DELETE", f"/{p}/v1/allOpenOrders", 1, _SIGNED),
            ("GET", f"/{p}/v1/allOrders", w("allOrders", 5), _SIGNED),
            ("GET", f"/{p}/v1/userTrades", w("userTrades", 5), {**_SIGNED, **_PAGE_1000}),
            ("GET", f"/{p}/v1/commissionRate", 20, _SIGNED),
            ("POST", f"/{p}/v1/leverage", 1, _SIGNED),
            ("POST", f"/{p}/v1/marginType", 1, _SIGNED),
            ("GET", f"/{p}/v1/income", w("income", 30), {**_SIGNED, **_PAGE_1000}),
        ],
    )


_USDM = [
    *_futures(Market.USDM, "fapi", {"order": 0}),
    *_market(
        Market.USDM,
        [
            ("GET", "/fapi/v2/ticker/price", _one_or_all(1, 2)),
            ("GET", "/fapi/v2/balance", 5, _SIGNED),
            ("GET", "/fapi/v3/balance", 5, _SIGNED),
            ("GET", "/fapi/v2/positionRisk", 5, _SIGNED),
            ("GET", "/fapi/v3/positionRisk", 5, _SIGNED),
            ("GET", "/fapi/v2/account", 5, _SIGNED),
            ("GET", "/fapi/v3/account", 5, _SIGNED),
            ("GET", "/fapi/v1/leverageBracket", 1, _SIGNED),
            # Binance: weight 0, IP limit 1000 requests / 5 min; the latest 30 days only.
            ("GET", "/futures/data/openInterestHist", 0, {"limit": LimitRule(1, 500)}),
        ],
    ),
]

_COINM = [
    *_futures(
        Market.COINM,
        "dapi",
        {
            "premiumIndex": 10,
            "openOrders": _one_or_all(1, 5),
            "allOrders": 20,
            "userTrades": 20,
            "income": 20,
        },
    ),
    *_market(
        Market.COINM,
        [
            ("GET", "/dapi/v1/balance", 1, _SIGNED),
            ("GET", "/dapi/v1/account", 5, _SIGNED),
            ("GET", "/dapi/v1/positionRisk", 1, _SIGNED),
            ("GET", "/dapi/v2/leverageBracket", 1, _SIGNED),
        ],
    ),
]

#: Every endpoint the library knows, in one table.
ENDPOINTS: Final[tuple[Endpoint, ...]] = (*_SPOT, *_USDM, *_COINM)

_BY_KEY: Final[dict[tuple[Market, str, str], Endpoint]] = {
    (e.market, e.method, e.path): e for e in ENDPOINTS
}
if len(_BY_KEY) != len(ENDPOINTS):  # pragma: no cover - a table edit gone wrong
    raise RuntimeError("the endpoint registry lists an endpoint twice")


def find(market: Market | str, method: str, path: str) -> Endpoint:
    """The registry's entry, or an unsigned, non-order one of ``DEFAULT_WEIGHT`` if absent.

    Unknown endpoints still go through (Binance adds endpoints faster than any table): they
    are charged the default weight and get no order treatment.
    """
    try:
        market = Market(market)
    except ValueError:
        known = ", ".join(m.value for m in Market)
        raise ValueError(f"unknown market {market!r}; expected one of {known}") from None
    method = method.upper()
    found = _BY_KEY.get((market, method, path))
    return found if found is not None else Endpoint(market, method, path)


def _named(method: str, suffix: str) -> Mapping[Market, Endpoint]:
    prefixes = {Market.SPOT: "/api/v3", Market.USDM: "/fapi/v1", Market.COINM: "/dapi/v1"}
    return {m: _BY_KEY[(m, method, f"{p}/{suffix}")] for m, p in prefixes.items()}


#: The endpoints the library itself calls, per market.
PING: Final = _named("GET", "ping")
SERVER_TIME: Final = _named("GET", "time")
EXCHANGE_INFO: Final = _named("GET", "exchangeInfo")
KLINES: Final = _named("GET", "klines")
AGG_TRADES: Final = _named("GET", "aggTrades")
NEW_ORDER: Final = _named("POST", "order")
QUERY_ORDER: Final = _named("GET", "order")
CANCEL_ORDER: Final = _named("DELETE", "order")
#: Funding rates exist on the futures markets only.
FUNDING_RATE: Final[Mapping[Market, Endpoint]] = {
    Market.USDM: _BY_KEY[(Market.USDM, "GET", "/fapi/v1/fundingRate")],
    Market.COINM: _BY_KEY[(Market.COINM, "GET", "/dapi/v1/fundingRate")],
}
