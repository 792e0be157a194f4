"""Binance's endpoint request weights: one table for the simulator and the client's limiter.

Both sides read the same numbers so that the limiter reserves exactly what the simulator charges
(and what Binance charges; sources and caveats are in ``/work/shared/binance-api.md`` §2-§5).

Conventions:

- ``request_weight`` returns the weight charged against the per-IP ``REQUEST_WEIGHT`` limit.
  Weights that depend on parameters (``limit``, ``symbol``/``symbols``, ...) are computed from
  ``params`` (the request's string parameters).
- Spot order placement and cancellation cost weight **0 when they succeed** (Binance change of
  2026-04-02); failed ones pay the documented weight. ``request_weight(..., success=False)``
  (the default) is the weight to *reserve* before the outcome is known; pass ``success=True``
  once the exchange accepted the request. ``free_on_success`` tells which endpoints do this.
- An endpoint missing from the table costs ``DEFAULT_WEIGHT`` (1): a cheap guess that keeps an
  unknown request accounted for rather than free.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

__all__ = [
    "DEFAULT_ORDER_LIMITS",
    "DEFAULT_WEIGHT",
    "DEFAULT_WEIGHT_LIMITS",
    "MARKETS",
    "counts_as_order",
    "free_on_success",
    "market_for_path",
    "request_weight",
]

MARKETS = ("spot", "usdm", "coinm")

#: REQUEST_WEIGHT limits per IP per minute (spot since 2023-08-25; futures per fapi exchangeInfo).
DEFAULT_WEIGHT_LIMITS: dict[str, int] = {"spot": 6000, "usdm": 2400, "coinm": 2400}

#: ORDERS limits per account: ``(window seconds, limit)`` pairs. Binance publishes the real values
#: in exchangeInfo only; these are the common ones (spot 100/10s + 200000/1d, futures
#: 300/10s + 1200/1min), unverified for the 10 s futures counter.
DEFAULT_ORDER_LIMITS: dict[str, tuple[tuple[int, int], ...]] = {
    "spot": ((10, 100), (86400, 200000)),
    "usdm": ((10, 300), (60, 1200)),
    "coinm": ((10, 300), (60, 1200)),
}

#: Weight of an endpoint that is not in the table.
DEFAULT_WEIGHT = 1

_Weight = int | Callable[[Mapping[str, str]], int]


def market_for_path(path: str) -> str:
    """Which market a request path belongs to, by its prefix (as the client routes them)."""
    if path.startswith(("/api/", "/sapi/")):
        return "spot"
    if path.startswith(("/fapi/", "/futures/")):
        return "usdm"
    if path.startswith("/dapi/"):
        return "coinm"
    raise ValueError(f"not a Binance REST path: {path!r}")


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


def _spot_one_or_all(one: int, many: int) -> _Weight:
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


_SPOT: dict[tuple[str, str], _Weight] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): _spot_depth,
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/historicalTrades"): 25,
    ("GET", "/api/v3/aggTrades"): 4,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2,
    ("GET", "/api/v3/avgPrice"): 2,
    ("GET", "/api/v3/ticker/24hr"): _spot_ticker_24hr,
    ("GET", "/api/v3/ticker/price"): _spot_one_or_all(2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): _spot_one_or_all(2, 4),
    ("GET", "/api/v3/ticker"): _spot_rolling_ticker,
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): _spot_order_test,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("GET", "/api/v3/openOrders"): _spot_one_or_all(6, 80),
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): _spot_my_trades,
    ("GET", "/api/v3/rateLimit/order"): 40,
}

_USDM: dict[tuple[str, str], _Weight] = {
    ("GET", "/fapi/v1/ping"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/depth"): _futures_depth,
    ("GET", "/fapi/v1/trades"): 5,
    ("GET", "/fapi/v1/historicalTrades"): 20,
    ("GET", "/fapi/v1/aggTrades"): 20,
    ("GET", "/fapi/v1/klines"): _futures_klines,
    ("GET", "/fapi/v1/continuousKlines"): _futures_klines,
    ("GET", "/fapi/v1/indexPriceKlines"): _futures_klines,
    ("GET", "/fapi/v1/markPriceKlines"): _futures_klines,
    ("GET", "/fapi/v1/ticker/price"): _spot_one_or_all(1, 2),
    ("GET", "/fapi/v2/ticker/price"): _spot_one_or_all(1, 2),
    ("GET", "/fapi/v1/ticker/24hr"): _spot_one_or_all(1, 40),
    ("GET", "/fapi/v1/ticker/bookTicker"): _spot_one_or_all(2, 5),
    ("GET", "/fapi/v1/premiumIndex"): 1,
    ("GET", "/fapi/v1/fundingRate"): 1,
    ("GET", "/fapi/v1/openInterest"): 1,
    ("POST", "/fapi/v1/order"): 0,
    ("POST", "/fapi/v1/order/test"): 0,
    ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/openOrders"): _spot_one_or_all(1, 40),
    ("DELETE", "/fapi/v1/allOpenOrders"): 1,
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("POST", "/fapi/v1/leverage"): 1,
}

_COINM: dict[tuple[str, str], _Weight] = {
    ("GET", "/dapi/v1/ping"): 1,
    ("GET", "/dapi/v1/time"): 1,
    ("GET", "/dapi/v1/exchangeInfo"): 1,
    ("GET", "/dapi/v1/depth"): _futures_depth,
    ("GET", "/dapi/v1/trades"): 5,
    ("GET", "/dapi/v1/historicalTrades"): 20,
    ("GET", "/dapi/v1/aggTrades"): 20,
    ("GET", "/dapi/v1/klines"): _futures_klines,
    ("GET", "/dapi/v1/continuousKlines"): _futures_klines,
    ("GET", "/dapi/v1/indexPriceKlines"): _futures_klines,
    ("GET", "/dapi/v1/markPriceKlines"): _futures_klines,
    ("GET", "/dapi/v1/ticker/price"): lambda p: 1 if "symbol" in p else 2,
    ("GET", "/dapi/v1/ticker/24hr"): lambda p: 1 if "symbol" in p else 40,
    ("GET", "/dapi/v1/ticker/bookTicker"): lambda p: 2 if "symbol" in p else 5,
    ("GET", "/dapi/v1/premiumIndex"): 10,
    ("GET", "/dapi/v1/fundingRate"): 1,
    ("GET", "/dapi/v1/openInterest"): 1,
    ("POST", "/dapi/v1/order"): 1,
    ("POST", "/dapi/v1/order/test"): 1,
    ("GET", "/dapi/v1/order"): 1,
    ("DELETE", "/dapi/v1/order"): 1,
    ("GET", "/dapi/v1/openOrders"): _spot_one_or_all(1, 5),
    ("DELETE", "/dapi/v1/allOpenOrders"): 1,
    ("GET", "/dapi/v1/allOrders"): 20,
    ("GET", "/dapi/v1/balance"): 1,
    ("GET", "/dapi/v1/account"): 5,
    ("GET", "/dapi/v1/positionRisk"): 1,
    ("GET", "/dapi/v1/userTrades"): 20,
    ("POST", "/dapi/v1/leverage"): 1,
}

_TABLES: dict[str, dict[tuple[str, str], _Weight]] = {
    "spot": _SPOT,
    "usdm": _USDM,
    "coinm": _COINM,
}

# Spot requests that cost weight 0 when they succeed (CHANGELOG 2026-04-02).
_FREE_ON_SUCCESS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("spot", "POST", "/api/v3/order"),
        ("spot", "DELETE", "/api/v3/order"),
        ("spot", "DELETE", "/api/v3/openOrders"),
        ("spot", "POST", "/api/v3/order/cancelReplace"),
        ("spot", "POST", "/api/v3/sor/order"),
        ("spot", "POST", "/api/v3/orderList/oco"),
        ("spot", "POST", "/api/v3/orderList/oto"),
        ("spot", "POST", "/api/v3/orderList/otoco"),
        ("spot", "POST", "/api/v3/orderList/opo"),
        ("spot", "POST", "/api/v3/orderList/opoco"),
        ("spot", "DELETE", "/api/v3/orderList"),
    }
)

# Requests that count toward the per-account ORDERS limits (order placement, not tests).
_ORDER_ENDPOINTS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("spot", "POST", "/api/v3/order"),
        ("spot", "POST", "/api/v3/order/cancelReplace"),
        ("spot", "POST", "/api/v3/sor/order"),
        ("spot", "POST", "/api/v3/orderList/oco"),
        ("spot", "POST", "/api/v3/orderList/oto"),
        ("spot", "POST", "/api/v3/orderList/otoco"),
        ("usdm", "POST", "/fapi/v1/order"),
        ("usdm", "POST", "/fapi/v1/batchOrders"),
        ("coinm", "POST", "/dapi/v1/order"),
        ("coinm", "POST", "/dapi/v1/batchOrders"),
    }
)


def free_on_success(market: str, method: str, path: str) -> bool:
    """True for the spot order placement/cancel requests that cost weight 0 when they succeed."""
    return (market, method.upper(), path) in _FREE_ON_SUCCESS


def request_weight(
    market: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    *,
    success: bool = False,
) -> int:
    """The request weight Binance charges for one request.

    Args:
        market: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        method: the HTTP method (any case).
        path: the request path, e.g. ``"/api/v3/depth"``.
        params: the request's parameters (their values matter for limit-dependent weights).
        success: whether the request succeeded. Only spot order placement/cancel requests
            depend on it (free on success); the default ``False`` gives the weight to reserve
            before the outcome is known.

    Raises:
        ValueError: for an unknown market.
    """
    try:
        table = _TABLES[market]
    except KeyError:
        raise ValueError(f"unknown market {market!r}; expected one of {MARKETS}") from None
    method = method.upper()
    if success and (market, method, path) in _FREE_ON_SUCCESS:
        return 0
    weight = table.get((method, path), DEFAULT_WEIGHT)
    if isinstance(weight, int):
        return weight
    return weight(params)


def counts_as_order(market: str, method: str, path: str) -> bool:
    """True when the request counts toward the per-account ORDERS (unfilled order) limits."""
    return (market, method.upper(), path) in _ORDER_ENDPOINTS
