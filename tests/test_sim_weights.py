"""The endpoint registry's weights (aiocea_trio.endpoints), read by the simulator and the limiter."""

from __future__ import annotations

import pytest

from aiocea_trio.endpoints import DEFAULT_WEIGHT, DEFAULT_WEIGHT_LIMITS, find
from aiocea_trio.markets import market_for_path


def request_weight(
    market: str, method: str, path: str, params: dict[str, str], *, success: bool = False
) -> int:
    return find(market, method, path).request_weight(params, success=success)


def counts_as_order(market: str, method: str, path: str) -> bool:
    return find(market, method, path).counts_as_order


def free_on_success(market: str, method: str, path: str) -> bool:
    return find(market, method, path).free_on_success


@pytest.mark.parametrize(
    ("path", "market"),
    [
        ("/api/v3/klines", "spot"),
        ("/sapi/v1/capital/config/getall", "spot"),
        ("/fapi/v1/klines", "usdm"),
        ("/dapi/v1/klines", "coinm"),
    ],
)
def test_market_for_path(path: str, market: str) -> None:
    assert market_for_path(path) == market


@pytest.mark.parametrize("path", ["/eapi/v1/time", "api/v3/time", "/", ""])
def test_market_for_path_rejects_others(path: str) -> None:
    with pytest.raises(ValueError, match="cannot tell the market"):
        market_for_path(path)


def test_limits() -> None:
    assert DEFAULT_WEIGHT_LIMITS == {"spot": 6000, "usdm": 2400, "coinm": 2400}


@pytest.mark.parametrize(
    ("market", "method", "path", "params", "weight"),
    [
        ("spot", "GET", "/api/v3/ping", {}, 1),
        ("spot", "GET", "/api/v3/exchangeInfo", {}, 20),
        ("spot", "GET", "/api/v3/depth", {"limit": "100"}, 5),
        ("spot", "GET", "/api/v3/depth", {}, 5),
        ("spot", "GET", "/api/v3/depth", {"limit": "101"}, 25),
        ("spot", "GET", "/api/v3/depth", {"limit": "1000"}, 50),
        ("spot", "GET", "/api/v3/depth", {"limit": "5000"}, 250),
        ("spot", "GET", "/api/v3/trades", {}, 25),
        ("spot", "GET", "/api/v3/aggTrades", {}, 4),
        ("spot", "GET", "/api/v3/klines", {"limit": "1000"}, 2),
        ("spot", "GET", "/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
        ("spot", "GET", "/api/v3/ticker/24hr", {"symbols": '["A","B"]'}, 2),
        (
            "spot",
            "GET",
            "/api/v3/ticker/24hr",
            {"symbols": str([f"S{i}" for i in range(21)]).replace("'", '"')},
            40,
        ),
        ("spot", "GET", "/api/v3/ticker/24hr", {}, 80),
        ("spot", "GET", "/api/v3/ticker/price", {"symbol": "X"}, 2),
        ("spot", "GET", "/api/v3/ticker/price", {}, 4),
        ("spot", "GET", "/api/v3/ticker", {"symbols": '["A","B","C"]'}, 12),
        ("spot", "GET", "/api/v3/account", {}, 20),
        ("spot", "GET", "/api/v3/openOrders", {"symbol": "X"}, 6),
        ("spot", "GET", "/api/v3/openOrders", {}, 80),
        ("spot", "GET", "/api/v3/order", {}, 4),
        ("spot", "POST", "/api/v3/order", {}, 1),
        ("spot", "post", "/api/v3/order/test", {"computeCommissionRates": "true"}, 20),
        ("usdm", "GET", "/fapi/v1/exchangeInfo", {}, 1),
        ("usdm", "GET", "/fapi/v1/depth", {"limit": "50"}, 2),
        ("usdm", "GET", "/fapi/v1/depth", {}, 10),
        ("usdm", "GET", "/fapi/v1/depth", {"limit": "1000"}, 20),
        ("usdm", "GET", "/fapi/v1/klines", {"limit": "99"}, 1),
        ("usdm", "GET", "/fapi/v1/klines", {}, 5),
        ("usdm", "GET", "/fapi/v1/klines", {"limit": "1500"}, 10),
        ("usdm", "GET", "/fapi/v1/ticker/24hr", {}, 40),
        ("usdm", "POST", "/fapi/v1/order", {}, 0),
        ("usdm", "GET", "/fapi/v2/positionRisk", {}, 5),
        ("coinm", "GET", "/dapi/v1/premiumIndex", {}, 10),
        ("coinm", "GET", "/dapi/v1/klines", {"limit": "200"}, 2),
        ("coinm", "GET", "/dapi/v1/openOrders", {}, 5),
        ("coinm", "GET", "/dapi/v1/unknownThing", {}, DEFAULT_WEIGHT),
    ],
)
def test_request_weight(
    market: str, method: str, path: str, params: dict[str, str], weight: int
) -> None:
    assert request_weight(market, method, path, params) == weight


def test_spot_orders_free_on_success() -> None:
    assert request_weight("spot", "POST", "/api/v3/order", {}, success=True) == 0
    assert request_weight("spot", "DELETE", "/api/v3/order", {}, success=True) == 0
    assert request_weight("spot", "DELETE", "/api/v3/order", {}) == 1
    assert request_weight("spot", "GET", "/api/v3/order", {}, success=True) == 4
    assert free_on_success("spot", "post", "/api/v3/order")
    assert not free_on_success("usdm", "DELETE", "/fapi/v1/order")


def test_counts_as_order() -> None:
    assert counts_as_order("spot", "POST", "/api/v3/order")
    assert counts_as_order("usdm", "post", "/fapi/v1/order")
    assert counts_as_order("coinm", "POST", "/dapi/v1/order")
    assert not counts_as_order("spot", "POST", "/api/v3/order/test")
    assert not counts_as_order("spot", "DELETE", "/api/v3/order")
    assert not counts_as_order("spot", "GET", "/api/v3/order")


def test_unknown_market() -> None:
    with pytest.raises(ValueError, match="unknown market"):
        request_weight("options", "GET", "/eapi/v1/time", {})
