"""Simulator market data: shapes, kline semantics, determinism and consistency (in-process)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiocea_trio.endpoints import KLINE_INTERVALS
from aiocea_trio.markets import Market
from aiocea_trio.sim import SimExchange
from aiocea_trio.sim.market import interval_bounds

START = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


@pytest.fixture
def sim() -> SimExchange:
    return SimExchange(seed=3, start_time_ms=START + 12 * HOUR_MS + 30 * MINUTE_MS + 15_250)


@pytest.fixture
async def http(sim: SimExchange) -> Any:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        yield client


async def get(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await http.get(path, params={k: str(v) for k, v in params.items()})
    assert r.status_code == 200, r.text
    return r.json()


async def error(http: httpx.AsyncClient, path: str, **params: Any) -> tuple[int, int, str]:
    r = await http.get(path, params={k: str(v) for k, v in params.items()})
    body = r.json()
    return r.status_code, body["code"], body["msg"]


def D(text: str) -> Decimal:
    assert isinstance(text, str)
    return Decimal(text)


# -- general -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v3", "/fapi/v1", "/dapi/v1"])
async def test_ping_and_time(http: httpx.AsyncClient, sim: SimExchange, prefix: str) -> None:
    assert await get(http, f"{prefix}/ping") == {}
    body = await get(http, f"{prefix}/time")
    assert set(body) == {"serverTime"}
    assert 0 <= sim.now_ms() - body["serverTime"] < 1000


async def test_time_follows_trio_clock(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    t0 = (await get(http, "/api/v3/time"))["serverTime"]
    await trio.sleep(90)
    t1 = (await get(http, "/api/v3/time"))["serverTime"]
    assert t1 - t0 == 90_000


async def test_spot_exchange_info(http: httpx.AsyncClient) -> None:
    info = await get(http, "/api/v3/exchangeInfo")
    assert info["timezone"] == "UTC"
    assert {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    } in info["rateLimits"]
    names = [s["symbol"] for s in info["symbols"]]
    assert names == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    btc = info["symbols"][0]
    assert btc["status"] == "TRADING"
    assert (btc["baseAsset"], btc["quoteAsset"]) == ("BTC", "USDT")
    assert btc["permissionSets"] == [["SPOT"]]
    assert "LIMIT" in btc["orderTypes"]
    assert "MARKET" in btc["orderTypes"]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    one = await get(http, "/api/v3/exchangeInfo", symbol="ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    two = await get(http, "/api/v3/exchangeInfo", symbols=json.dumps(["BNBUSDT", "BTCUSDT"]))
    assert [s["symbol"] for s in two["symbols"]] == ["BNBUSDT", "BTCUSDT"]
    assert await error(http, "/api/v3/exchangeInfo", symbol="NOPE") == (
        400,
        -1121,
        "Invalid symbol.",
    )


async def test_futures_exchange_info(http: httpx.AsyncClient, sim: SimExchange) -> None:
    usdm = await get(http, "/fapi/v1/exchangeInfo")
    assert [s["symbol"] for s in usdm["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    btc = usdm["symbols"][0]
    assert btc["contractType"] == "PERPETUAL"
    assert btc["marginAsset"] == "USDT"
    assert btc["deliveryDate"] == 4133404800000
    assert {f["filterType"]: f for f in btc["filters"]}["MIN_NOTIONAL"]["notional"] == "100"
    assert usdm["rateLimits"][0]["limit"] == 2400
    coinm = await get(http, "/dapi/v1/exchangeInfo")
    names = [s["symbol"] for s in coinm["symbols"]]
    assert names == ["BTCUSD_PERP", "ETHUSD_PERP", sim.quarterly_symbol]
    quarterly = coinm["symbols"][2]
    assert quarterly["contractType"] == "CURRENT_QUARTER"
    assert quarterly["deliveryDate"] > START
    assert quarterly["contractSize"] == 100
    assert quarterly["pair"] == "BTCUSD"
    assert sim.quarterly_symbol == "BTCUSD_260327"  # last Friday of March 2026


async def test_configured_limits_appear_in_exchange_info() -> None:
    sim = SimExchange(weight_window=10, weight_limits={"spot": 50})
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        info = await get(http, "/api/v3/exchangeInfo")
    weight = info["rateLimits"][0]
    assert weight == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "SECOND",
        "intervalNum": 10,
        "limit": 50,
    }


async def test_unknown_path_and_method(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v3/nothing")).status_code == 404
    assert (await http.get("/elsewhere")).status_code == 404
    assert (await http.put("/api/v3/klines")).status_code == 405


# -- klines --------------------------------------------------------------------------------


async def test_kline_shape(http: httpx.AsyncClient, sim: SimExchange) -> None:
    rows = await get(http, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=3)
    assert len(rows) == 3
    for row in rows:
        assert len(row) == 12
        assert isinstance(row[0], int)
        assert isinstance(row[6], int)
        assert isinstance(row[8], int)
        assert row[6] == row[0] + MINUTE_MS - 1
        o, h, low, c = (D(x) for x in row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h
        assert D(row[9]) <= D(row[5])
        assert row[11] == "0"
    # the last row is the open candle containing "now"
    assert rows[-1][0] <= sim.now_ms() < rows[-1][6]
    assert rows[1][0] - rows[0][0] == MINUTE_MS


async def test_klines_default_and_maximum_limits(http: httpx.AsyncClient) -> None:
    rows = await get(http, "/api/v3/klines", symbol="BTCUSDT", interval="1m")
    assert len(rows) == 500
    rows = await get(http, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1500)
    assert len(rows) == 1500
    rows = await get(http, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1001)
    assert len(rows) == 1000  # spot caps an oversized limit (the registry's LimitRule)
    code = await error(http, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1501)
    assert code[:2] == (400, -1130)


async def test_klines_start_end_semantics(http: httpx.AsyncClient) -> None:
    start = START + 2 * HOUR_MS + 30_000  # inside a minute: first row opens at the next one
    rows = await get(
        http, "/api/v3/klines", symbol="ETHUSDT", interval="1m", startTime=start, limit=5
    )
    assert [r[0] for r in rows] == [START + 2 * HOUR_MS + (i + 1) * MINUTE_MS for i in range(5)]
    end = START + 3 * HOUR_MS + 30_000  # newest rows up to endTime (open time <= endTime)
    rows = await get(http, "/api/v3/klines", symbol="ETHUSDT", interval="1m", endTime=end, limit=3)
    assert [r[0] for r in rows] == [
        START + 3 * HOUR_MS - 2 * MINUTE_MS + i * MINUTE_MS for i in range(3)
    ]
    rows = await get(
        http,
        "/api/v3/klines",
        symbol="ETHUSDT",
        interval="1h",
        startTime=START,
        endTime=START + 5 * HOUR_MS,
        limit=100,
    )
    assert len(rows) == 6
    assert (
        await get(
            http,
            "/api/v3/klines",
            symbol="ETHUSDT",
            interval="1h",
            startTime=START + HOUR_MS,
            endTime=START,
        )
        == []
    )
    code = await error(
        http,
        "/fapi/v1/klines",
        symbol="ETHUSDT",
        interval="1h",
        startTime=START + HOUR_MS,
        endTime=START,
    )
    assert code[:2] == (400, -1023)


async def test_klines_never_show_the_future(http: httpx.AsyncClient, sim: SimExchange) -> None:
    rows = await get(
        http,
        "/api/v3/klines",
        symbol="BTCUSDT",
        interval="1h",
        startTime=sim.now_ms() - 2 * HOUR_MS,
        limit=10,
    )
    assert len(rows) == 2
    assert rows[-1][0] <= sim.now_ms()


async def test_klines_do_not_predate_listing(http: httpx.AsyncClient) -> None:
    rows = await get(http, "/api/v3/klines", symbol="BNBUSDT", interval="1d", startTime=0, limit=2)
    assert rows[0][0] == 1509926400000  # listing day


async def test_coinm_200_day_range(http: httpx.AsyncClient) -> None:
    day = 86_400_000
    code = await error(
        http,
        "/dapi/v1/klines",
        symbol="BTCUSD_PERP",
        interval="1d",
        startTime=START - 300 * day,
        endTime=START,
    )
    assert code[:2] == (400, -4088)  # Binance: "Maximum time interval is 200 days."
    rows = await get(
        http,
        "/dapi/v1/klines",
        symbol="BTCUSD_PERP",
        interval="1d",
        startTime=START - 300 * day,
        limit=1000,
    )
    assert len(rows) == 201  # startTime + 200 days, inclusive
    rows = await get(
        http,
        "/dapi/v1/klines",
        symbol="BTCUSD_PERP",
        interval="1d",
        startTime=START - 10 * day,
        endTime=START,
        limit=3,
    )
    assert [r[0] for r in rows] == [START - 2 * day, START - day, START]  # latest rows


@pytest.mark.parametrize("interval", list(KLINE_INTERVALS[Market.SPOT]))
async def test_every_interval(http: httpx.AsyncClient, sim: SimExchange, interval: str) -> None:
    rows = await get(http, "/api/v3/klines", symbol="BTCUSDT", interval=interval, limit=3)
    assert len(rows) == 3
    for prev, row in itertools.pairwise(rows):
        assert row[0] == prev[6] + 1
    if interval == "1M":
        assert rows[-1][0] == 1767225600000  # 2026-01-01: calendar month
    if interval == "1w":
        assert (rows[-1][0] // 86_400_000 - 4) % 7 == 0  # Mondays


async def test_bad_interval_and_symbol(http: httpx.AsyncClient) -> None:
    assert (await error(http, "/api/v3/klines", symbol="BTCUSDT", interval="7m"))[:2] == (
        400,
        -1120,
    )
    assert (await error(http, "/fapi/v1/klines", symbol="BTCUSDT", interval="1s"))[:2] == (
        400,
        -1120,
    )
    assert (await error(http, "/api/v3/klines", symbol="BTCUSDT"))[:2] == (400, -1102)
    assert (await error(http, "/api/v3/klines", symbol="btc$", interval="1m"))[:2] == (400, -1100)
    assert (await error(http, "/api/v3/klines", symbol="BTCUSDT", interval="1m", foo=1))[:2] == (
        400,
        -1104,
    )


async def test_same_closed_candle_twice_and_across_instances(http: httpx.AsyncClient) -> None:
    params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": START, "limit": 5}
    first = await get(http, "/api/v3/klines", **params)
    second = await get(http, "/api/v3/klines", **params)
    other = SimExchange(seed=3)
    async with httpx.AsyncClient(transport=other.transport(), base_url="http://s") as h2:
        third = await get(h2, "/api/v3/klines", **params)
    assert first == second == third
    different = SimExchange(seed=4)
    async with httpx.AsyncClient(transport=different.transport(), base_url="http://s") as h3:
        fourth = await get(h3, "/api/v3/klines", **params)
    assert fourth != first


def _aggregate(rows: list[list[Any]]) -> tuple[str, Decimal, Decimal, str, Decimal, int]:
    return (
        rows[0][1],
        max(D(r[2]) for r in rows),
        min(D(r[3]) for r in rows),
        rows[-1][4],
        sum((D(r[5]) for r in rows), Decimal(0)),
        sum(r[8] for r in rows),
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hour=st.integers(min_value=0, max_value=24 * 400),
    symbol=st.sampled_from(
        [("spot", "BTCUSDT"), ("spot", "BNBUSDT"), ("usdm", "ETHUSDT"), ("coinm", "BTCUSD_PERP")]
    ),
)
def test_hour_equals_its_sixty_minutes(hour: int, symbol: tuple[str, str]) -> None:
    """A 1h candle is exactly the aggregate of its sixty 1m candles (and a 1m of its 1s)."""
    sim = SimExchange(seed=11, start_time_ms=START)
    series = sim.market_data.get(*symbol)
    assert series is not None
    now_s = START // 1000
    open_s = now_s - (hour + 1) * 3600
    open_s -= open_s % 3600
    md = sim.market_data
    h = md.kline_row(series, "1h", open_s, now_s)
    minutes = [md.kline_row(series, "1m", open_s + 60 * i, now_s) for i in range(60)]
    agg = _aggregate(minutes)
    assert (h[1], D(h[2]), D(h[3]), h[4], D(h[5]), h[8]) == agg
    assert D(h[9]) == sum((D(r[9]) for r in minutes), Decimal(0))
    seconds = [md.kline_row(series, "1s", open_s + i, now_s) for i in range(60)]
    m = minutes[0]
    assert (m[1], D(m[2]), D(m[3]), m[4], D(m[5]), m[8]) == _aggregate(seconds)
    # consecutive candles join: each opens at the previous close
    assert all(a[4] == b[1] for a, b in itertools.pairwise(minutes))


async def test_day_and_month_agree_with_hours_via_the_api(http: httpx.AsyncClient) -> None:
    yesterday = START - 24 * HOUR_MS
    day = await get(
        http, "/api/v3/klines", symbol="ETHUSDT", interval="1d", startTime=yesterday, limit=1
    )
    hours = await get(
        http,
        "/api/v3/klines",
        symbol="ETHUSDT",
        interval="1h",
        startTime=yesterday,
        endTime=yesterday + 23 * HOUR_MS,
    )
    assert len(hours) == 24
    d = day[0]
    assert (d[1], D(d[2]), D(d[3]), d[4], D(d[5]), d[8]) == _aggregate(hours)
    dec = 1764547200000  # 2025-12-01
    month = await get(
        http, "/api/v3/klines", symbol="ETHUSDT", interval="1M", startTime=dec, limit=1
    )
    days = await get(
        http, "/api/v3/klines", symbol="ETHUSDT", interval="1d", startTime=dec, limit=31
    )
    assert month[0][6] == START - 1
    m = month[0]
    assert (m[1], D(m[2]), D(m[3]), m[4], D(m[5]), m[8]) == _aggregate(days)


async def test_open_candle_moves_with_the_clock(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    before = (await get(http, "/api/v3/klines", symbol="BTCUSDT", interval="1h", limit=1))[0]
    await trio.sleep(600)
    after = (await get(http, "/api/v3/klines", symbol="BTCUSDT", interval="1h", limit=1))[0]
    assert before[0] == after[0]
    assert before[1] == after[1]  # same open
    assert D(after[5]) > D(before[5])  # more volume traded
    assert after[8] > before[8]
    assert D(after[2]) >= D(before[2])
    assert D(after[3]) <= D(before[3])
    price = await get(http, "/api/v3/ticker/price", symbol="BTCUSDT")
    assert price["price"] == after[4]  # the open candle closes at the last price


async def test_a_year_of_minutes_is_fast(http: httpx.AsyncClient, sim: SimExchange) -> None:
    """A year of 1m klines: 526 requests of 1000 rows; a sample of them must be quick."""
    series = sim.market_data.get("spot", "BTCUSDT")
    assert series is not None
    year_ago = sim.now_ms() - 365 * 86_400_000
    t0 = trio.current_time()
    import time

    wall = time.perf_counter()
    for k in range(0, 526, 50):
        rows = await get(
            http,
            "/api/v3/klines",
            symbol="BTCUSDT",
            interval="1m",
            startTime=year_ago + k * 1000 * MINUTE_MS,
            limit=1000,
        )
        assert len(rows) == 1000
    assert time.perf_counter() - wall < 5.0
    assert trio.current_time() >= t0


# -- trades, book, tickers -----------------------------------------------------------------


async def test_trades_agree_with_the_last_second(http: httpx.AsyncClient, sim: SimExchange) -> None:
    trades = await get(http, "/api/v3/trades", symbol="BTCUSDT", limit=50)
    assert len(trades) == 50
    ids = [t["id"] for t in trades]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50
    times = [t["time"] for t in trades]
    assert times == sorted(times)
    assert times[-1] < sim.now_ms()
    for t in trades:
        assert D(t["quoteQty"]) == D(t["price"]) * D(t["qty"])
        assert t["isBestMatch"] is True
    price = await get(http, "/api/v3/ticker/price", symbol="BTCUSDT")
    assert trades[-1]["price"] == price["price"]
    # the trades of one closed second sum to its 1s candle's volume and span its range
    second = trades[-1]["time"] // 1000 * 1000
    candle = (
        await get(
            http, "/api/v3/klines", symbol="BTCUSDT", interval="1s", startTime=second, limit=1
        )
    )[0]
    agg = await get(
        http,
        "/api/v3/aggTrades",
        symbol="BTCUSDT",
        startTime=second,
        endTime=second + 999,
        limit=1000,
    )
    assert len(agg) == candle[8]
    assert sum((D(a["q"]) for a in agg), Decimal(0)) == D(candle[5])
    assert agg[0]["p"] == candle[1]
    assert agg[-1]["p"] == candle[4]
    assert max(D(a["p"]) for a in agg) <= D(candle[2])
    assert min(D(a["p"]) for a in agg) >= D(candle[3])


async def test_historical_and_agg_trades_by_id(http: httpx.AsyncClient) -> None:
    recent = await get(http, "/api/v3/trades", symbol="ETHUSDT", limit=20)
    from_id = recent[5]["id"]
    hist = await get(http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=from_id, limit=10)
    assert [t["id"] for t in hist] == [t["id"] for t in recent[5:15]]
    agg = await get(http, "/api/v3/aggTrades", symbol="ETHUSDT", fromId=from_id, limit=3)
    assert [a["a"] for a in agg] == [t["id"] for t in recent[5:8]]
    assert set(agg[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    fut = await get(http, "/fapi/v1/aggTrades", symbol="ETHUSDT", limit=2)
    assert "M" not in fut[0]
    code = await error(
        http, "/fapi/v1/aggTrades", symbol="ETHUSDT", startTime=START, endTime=START + 2 * HOUR_MS
    )
    assert code[:2] == (400, -1127)


async def test_depth_shapes_and_weights(http: httpx.AsyncClient, sim: SimExchange) -> None:
    book = await get(http, "/api/v3/depth", symbol="BTCUSDT", limit=10)
    assert set(book) == {"lastUpdateId", "bids", "asks"}
    bids = [D(p) for p, _ in book["bids"]]
    asks = [D(p) for p, _ in book["asks"]]
    assert len(bids) == len(asks) == 10
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    last = D((await get(http, "/api/v3/ticker/price", symbol="BTCUSDT"))["price"])
    assert bids[0] <= last <= asks[0]
    r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "1000"})
    assert len(r.json()["bids"]) == 1000
    fut = await get(http, "/fapi/v1/depth", symbol="BTCUSDT", limit=5)
    assert {"E", "T"} <= set(fut)
    coin = await get(http, "/dapi/v1/depth", symbol="BTCUSD_PERP", limit=5)
    assert coin["symbol"] == "BTCUSD_PERP"
    assert coin["pair"] == "BTCUSD"


async def test_tickers(http: httpx.AsyncClient, sim: SimExchange) -> None:
    t = await get(http, "/api/v3/ticker/24hr", symbol="BTCUSDT")
    assert t["closeTime"] - t["openTime"] == 86_400_000
    assert 0 <= sim.now_ms() - t["closeTime"] < 1000
    assert D(t["lowPrice"]) <= D(t["lastPrice"]) <= D(t["highPrice"])
    assert D(t["priceChange"]) == D(t["lastPrice"]) - D(t["openPrice"])
    assert D(t["lowPrice"]) <= D(t["weightedAvgPrice"]) <= D(t["highPrice"])
    assert isinstance(t["count"], int)
    assert t["count"] > 0
    mini = await get(http, "/api/v3/ticker/24hr", symbol="BTCUSDT", type="MINI")
    assert "priceChange" not in mini
    assert mini["lastPrice"] == t["lastPrice"]
    several = await get(http, "/api/v3/ticker/24hr", symbols='["BTCUSDT","ETHUSDT"]')
    assert [x["symbol"] for x in several] == ["BTCUSDT", "ETHUSDT"]
    prices = await get(http, "/api/v3/ticker/price")
    assert [p["symbol"] for p in prices] == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    book = await get(http, "/api/v3/ticker/bookTicker", symbol="ETHUSDT")
    assert D(book["bidPrice"]) < D(book["askPrice"])
    avg = await get(http, "/api/v3/avgPrice", symbol="BTCUSDT")
    assert avg["mins"] == 5
    assert D(avg["price"]) > 0
    fut = await get(http, "/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert "prevClosePrice" not in fut
    assert "bidPrice" not in fut
    fprice = await get(http, "/fapi/v1/ticker/price", symbol="BTCUSDT")
    assert 0 <= sim.now_ms() - fprice["time"] < 1000
    cprice = await get(http, "/dapi/v1/ticker/price", symbol="BTCUSD_PERP")
    assert isinstance(cprice, list)
    assert cprice[0]["ps"] == "BTCUSD"
    by_pair = await get(http, "/dapi/v1/ticker/price", pair="BTCUSD")
    assert {x["symbol"] for x in by_pair} == {"BTCUSD_PERP", sim.quarterly_symbol}
    # prices are plausible and distinct
    levels = {p["symbol"]: D(p["price"]) for p in prices}
    assert levels["BTCUSDT"] > levels["ETHUSDT"] > levels["BNBUSDT"] > 10


async def test_futures_premium_funding_open_interest(
    http: httpx.AsyncClient, sim: SimExchange
) -> None:
    p = await get(http, "/fapi/v1/premiumIndex", symbol="BTCUSDT")
    assert set(p) == {
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    }
    assert p["nextFundingTime"] % 28_800_000 == 0
    assert p["nextFundingTime"] > sim.now_ms()
    rates = await get(http, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=3)
    assert len(rates) == 3
    assert [r["fundingTime"] for r in rates] == sorted(r["fundingTime"] for r in rates)
    assert rates[-1]["fundingTime"] <= sim.now_ms()
    ranged = await get(
        http, "/fapi/v1/fundingRate", symbol="BTCUSDT", startTime=START - 86_400_000, limit=2
    )
    assert [r["fundingTime"] for r in ranged] == [START - 86_400_000, START - 57_600_000]
    oi = await get(http, "/fapi/v1/openInterest", symbol="BTCUSDT")
    assert D(oi["openInterest"]) > 0
    coin = await get(http, "/dapi/v1/premiumIndex", symbol=sim.quarterly_symbol)
    assert coin[0]["lastFundingRate"] == ""
    assert coin[0]["nextFundingTime"] == 0
    assert await get(http, "/dapi/v1/fundingRate", symbol=sim.quarterly_symbol) == []
    assert (await error(http, "/dapi/v1/fundingRate"))[:2] == (400, -1102)
    coi = await get(http, "/dapi/v1/openInterest", symbol="BTCUSD_PERP")
    assert coi["contractType"] == "PERPETUAL"
    assert coi["pair"] == "BTCUSD"


async def test_spot_and_perpetual_prices_track_each_other(http: httpx.AsyncClient) -> None:
    spot = D((await get(http, "/api/v3/ticker/price", symbol="BTCUSDT"))["price"])
    perp = D((await get(http, "/fapi/v1/ticker/price", symbol="BTCUSDT"))["price"])
    assert abs(spot - perp) / spot < Decimal("0.01")


def test_interval_bounds_for_months() -> None:
    assert interval_bounds("1M", 1709251200) == (1709251200, 1711929600)  # March 2024
    assert interval_bounds("1M", 1709251199)[0] == 1706745600  # Feb 2024 (leap year)
