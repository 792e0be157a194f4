"""The endpoint registry is the one source of truth: every catalog task points at an entry,
and for each task the weight the task reports, the weight the client reserves and the
weight the simulator charges are the same number."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import httpx
import pytest
import trio
import trio.testing

import aiocea_trio.tasks as catalog
from aiocea_trio import RateLimiter, SimExchange
from aiocea_trio.endpoints import ENDPOINTS, KLINE_INTERVALS, Endpoint, OrderAction, find
from aiocea_trio.markets import Market
from aiocea_trio.tasks import BinanceTask

CATALOG = sorted(
    (
        cls
        for name in catalog.__all__
        if isinstance(cls := getattr(catalog, name), type)
        and issubclass(cls, BinanceTask)
        and "endpoint" in vars(cls)
    ),
    key=lambda cls: cls.__name__,
)


def test_the_catalog_is_there() -> None:
    assert len(CATALOG) >= 55


@pytest.mark.parametrize("cls", CATALOG, ids=lambda cls: cls.__name__)
def test_every_catalog_task_points_at_a_registry_entry(cls: type[BinanceTask]) -> None:
    endpoint = cls.endpoint
    assert endpoint in ENDPOINTS
    assert find(cls.market, cls.method, cls.path) is endpoint
    assert (endpoint.market, endpoint.method, endpoint.path) == (cls.market, cls.method, cls.path)
    assert cls.signed is endpoint.signed


def test_the_registry_lists_each_endpoint_once_and_orders_consistently() -> None:
    keys = [(e.market, e.method, e.path) for e in ENDPOINTS]
    assert len(keys) == len(set(keys))
    for e in ENDPOINTS:
        if e.order is OrderAction.PLACE:
            assert (e.method, e.counts_as_order, e.signed) == ("POST", True, True)
        if e.order is OrderAction.CANCEL:
            assert (e.method, e.counts_as_order, e.signed) == ("DELETE", False, True)
    placing = {e.market for e in ENDPOINTS if e.order is OrderAction.PLACE}
    assert placing == set(Market)


def test_an_unknown_endpoint_costs_the_default_and_is_no_order() -> None:
    e = find("spot", "get", "/api/v3/somethingNew")
    assert e not in ENDPOINTS
    assert (e.request_weight({}), e.order, e.signed) == (1, None, False)


def test_intervals_are_listed_once_per_market() -> None:
    assert KLINE_INTERVALS[Market.SPOT][0] == "1s"
    assert "1s" not in KLINE_INTERVALS[Market.USDM]
    assert KLINE_INTERVALS[Market.USDM] == KLINE_INTERVALS[Market.COINM]


# -- the three numbers agree -------------------------------------------------------------

ORDER = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1"}
SAMPLES: list[Callable[[], BinanceTask]] = [
    lambda: catalog.SpotPing(),
    lambda: catalog.SpotServerTime(),
    lambda: catalog.SpotFetchExchangeInfo(),
    lambda: catalog.SpotFetchOrderBook(symbol="BTCUSDT", limit=5000),
    lambda: catalog.SpotFetchOrderBook(symbol="BTCUSDT", limit=100),
    lambda: catalog.SpotFetchTrades(symbol="BTCUSDT"),
    lambda: catalog.SpotFetchAggTrades(symbol="BTCUSDT", limit=10),
    lambda: catalog.SpotFetchKline(symbol="BTCUSDT", interval="1m", limit=1000),
    lambda: catalog.SpotFetchTicker(symbol="BTCUSDT"),
    lambda: catalog.SpotFetchTicker(),
    lambda: catalog.SpotFetchTicker24h(symbols=["BTCUSDT", "ETHUSDT"]),
    lambda: catalog.SpotFetchTicker24h(),
    lambda: catalog.SpotFetchBookTicker(),
    lambda: catalog.SpotFetchAvgPrice(symbol="BTCUSDT"),
    lambda: catalog.SpotFetchAccount(),
    lambda: catalog.SpotFetchOpenOrders(),
    lambda: catalog.SpotFetchOpenOrders(symbol="BTCUSDT"),
    lambda: catalog.SpotNewOrder(symbol="BTCUSDT", price="1000", **ORDER),
    lambda: catalog.SpotTestOrder(symbol="BTCUSDT", price="1000", **ORDER),
    lambda: catalog.UsdMFetchOrderBook(symbol="BTCUSDT", limit=1000),
    lambda: catalog.UsdMFetchKline(symbol="BTCUSDT", interval="1h", limit=1500),
    lambda: catalog.UsdMFetchKline(symbol="BTCUSDT", interval="1h", limit=99),
    lambda: catalog.UsdMFetchTicker24h(),
    lambda: catalog.UsdMFetchPremiumIndex(symbol="BTCUSDT"),
    lambda: catalog.UsdMFetchFundingRate(symbol="BTCUSDT"),
    lambda: catalog.UsdMFetchOpenInterest(symbol="BTCUSDT"),
    lambda: catalog.UsdMFetchAccount(),
    lambda: catalog.UsdMFetchBalances(),
    lambda: catalog.UsdMFetchPositionRisk(),
    lambda: catalog.UsdMFetchOpenOrders(),
    lambda: catalog.UsdMNewOrder(symbol="BTCUSDT", price="1000", **ORDER),
    lambda: catalog.CoinMFetchOrderBook(symbol="BTCUSD_PERP", limit=50),
    lambda: catalog.CoinMFetchKline(symbol="BTCUSD_PERP", interval="1d", limit=200),
    lambda: catalog.CoinMFetchTicker(),
    lambda: catalog.CoinMFetchPremiumIndex(symbol="BTCUSD_PERP"),
    lambda: catalog.CoinMFetchAccount(),
    lambda: catalog.CoinMFetchBalances(),
    lambda: catalog.CoinMFetchPositionRisk(),
    lambda: catalog.CoinMFetchOpenOrders(symbol="BTCUSD_PERP"),
    lambda: catalog.CoinMNewOrder(symbol="BTCUSD_PERP", price="1000", **ORDER),
]


@attrs.define
class _UsedWeight(httpx.AsyncBaseTransport):
    """Keeps the exchange's own count of used weight from each answer."""

    inner: httpx.AsyncBaseTransport
    used: list[int] = attrs.field(factory=list)
    in_process = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        header = next(
            (v for k, v in response.headers.items() if k.lower().startswith("x-mbx-used-weight-")),
            None,
        )
        if header is not None:
            self.used.append(int(header))
        return response


@pytest.mark.parametrize("make", SAMPLES, ids=lambda make: type(make()).__name__)
async def test_task_weight_equals_reserved_equals_charged(
    make: Callable[[], BinanceTask], autojump_clock: trio.testing.MockClock
) -> None:
    task = make()
    sim = SimExchange(seed=3)
    wire = _UsedWeight(sim.transport())
    limiter = RateLimiter(learn_limits=False)
    async with sim.client(transport=wire, limiter=limiter, auto_sync_time=False) as client:
        await task.execute(client)
        reserved = client.statistics().used_weight(task.market)
    charged = wire.used[-1]
    expected = task.weight
    if task.endpoint.free_on_success:
        expected = 0  # reserved before the answer, refunded on success (spot orders)
    assert (charged, reserved) == (expected, expected), task
    assert isinstance(task.endpoint, Endpoint)


@pytest.mark.parametrize("cls", CATALOG, ids=lambda cls: cls.__name__)
def test_a_tasks_limit_rule_is_its_endpoints(cls: type[BinanceTask]) -> None:
    if "limit" in attrs.fields_dict(cls):
        assert cls.endpoint.limit is not None, cls
        assert cls.limit_rule is cls.endpoint.limit


def test_history_pages_as_large_as_the_registry_allows() -> None:
    from aiocea_trio.endpoints import KLINES
    from aiocea_trio.history import best_kline_page_size

    for market in Market:
        rule = KLINES[market].limit
        assert rule is not None
        assert 1 <= best_kline_page_size(market) <= rule.largest
    with pytest.raises(ValueError, match="page_size"):
        trio.run(_download_with_page, KLINES[Market.SPOT].limit.largest + 1)  # type: ignore[union-attr]


async def _download_with_page(page: int) -> None:
    from aiocea_trio import download_klines

    async with SimExchange().client() as client:
        await download_klines(client, "BTCUSDT", "1m", "2024-01-01", "2024-01-02", page_size=page)
