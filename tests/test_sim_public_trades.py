"""Simulator public trades: takers sweeping the book, consecutive ids, klines built from them."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio

from aiocea_trio.sim import SimExchange
from aiocea_trio.sim.market import MarketData
from aiocea_trio.sim.symbols import default_symbols

START = 1_767_225_600_000 + 5 * 3_600_000 + 17_250  # 2026-01-01 05:00:17.250 UTC
PREFIX = {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}
CASES = [("spot", "BTCUSDT"), ("spot", "ETHUSDT"), ("usdm", "BTCUSDT"), ("coinm", "BTCUSD_PERP")]


@pytest.fixture
def sim() -> SimExchange:
    return SimExchange(seed=11, start_time_ms=START)


@pytest.fixture
async def http(sim: SimExchange) -> Any:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        yield client


async def get(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await http.get(path, params={k: str(v) for k, v in params.items()})
    assert r.status_code == 200, r.text
    return r.json()


def check_sweeps(trades: list[dict[str, Any]]) -> None:
    """One taker per millisecond: one side, prices moving against it (a buy climbs)."""
    by_ms: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        by_ms[t["time"]].append(t)
    for group in by_ms.values():
        sides = {t["isBuyerMaker"] for t in group}
        assert len(sides) == 1, group
        prices = [Decimal(t["price"]) for t in group]
        if sides == {False}:  # the buyer took: it walks the asks up
            assert prices == sorted(prices), group
        else:
            assert prices == sorted(prices, reverse=True), group


async def pages(http: httpx.AsyncClient, market: str, symbol: str, count: int) -> list[Any]:
    """``count`` trades read by ``fromId`` pages of 1,000 from the newest ones backwards."""
    recent = await get(http, f"{PREFIX[market]}/trades", symbol=symbol, limit=1)
    first = recent[-1]["id"] - count
    out: list[Any] = []
    while len(out) < count:
        page = await get(
            http,
            f"{PREFIX[market]}/historicalTrades",
            symbol=symbol,
            fromId=first + len(out),
            limit=1000,
        )
        assert len(page) == 1000
        out += page
    return out


@pytest.mark.parametrize(("market", "symbol"), CASES)
async def test_sweeps_and_consecutive_ids(
    http: httpx.AsyncClient, market: str, symbol: str
) -> None:
    trades = await pages(http, market, symbol, 3000)
    ids = [t["id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + 3000))  # consecutive across fetches by fromId
    times = [t["time"] for t in trades]
    assert times == sorted(times)
    check_sweeps(trades)
    # aggTrades: one taker's fills at one price aggregate; ids follow the trades'
    aggs = await get(http, f"{PREFIX[market]}/aggTrades", symbol=symbol, fromId=ids[0], limit=1000)
    assert [a["a"] for a in aggs] == ids[:1000]
    for a, t in zip(aggs, trades, strict=False):
        assert (a["f"], a["l"], a["T"], a["m"], a["p"]) == (
            t["id"],
            t["id"],
            t["time"],
            t["isBuyerMaker"],
            t["price"],
        )


async def test_the_rule_over_10000_trades_and_klines_from_trades(http: httpx.AsyncClient) -> None:
    total = checked = 0
    for market, symbol in CASES:
        trades = await pages(http, market, symbol, 3000)
        check_sweeps(trades)
        total += len(trades)
        # every whole second: its 1s kline is the trades' open/high/low/close/volume/count
        by_s: dict[int, list[Any]] = defaultdict(list)
        for t in trades:
            by_s[t["time"] // 1000].append(t)
        seconds = sorted(by_s)[1:-1]  # the first and last may be cut by the page
        if market == "coinm":  # 1s klines are spot only; check 1m ones built from 1s-wide rows
            continue
        rows = (
            await get(
                http,
                f"{PREFIX[market]}/klines",
                symbol=symbol,
                interval="1s",
                startTime=seconds[0] * 1000,
                limit=len(seconds) + 5,
            )
            if market == "spot"
            else []
        )
        klines = {r[0] // 1000: r for r in rows}
        for s in seconds:
            if s not in klines:
                continue
            group = by_s[s]
            prices = [Decimal(t["price"]) for t in group]
            k = klines[s]
            assert Decimal(k[4]) == prices[-1]
            assert Decimal(k[3]) <= min(prices) <= max(prices) <= Decimal(k[2])
            if len(group) >= 4:  # fewer fills cannot always show a 1s candle's whole range
                assert Decimal(k[1]) == prices[0]
                assert Decimal(k[2]) == max(prices)
                assert Decimal(k[3]) == min(prices)
                checked += 1
            assert Decimal(k[5]) == sum(Decimal(t["qty"]) for t in group)
            assert k[8] == len(group)
            buy = sum(Decimal(t["qty"]) for t in group if not t["isBuyerMaker"])
            if 0 < buy < Decimal(k[5]):  # both sides took: the kline's taker buy volume is theirs
                assert Decimal(k[9]) == buy
    assert total >= 10_000
    assert checked > 100


@pytest.mark.parametrize(("market", "symbol"), CASES)
async def test_ticker_ids_agree_with_trades(
    http: httpx.AsyncClient, market: str, symbol: str
) -> None:
    t = await get(http, f"{PREFIX[market]}/ticker/24hr", symbol=symbol)
    if market == "coinm":
        (t,) = t
    window = t["openTime"] // 1000 * 1000  # the window is whole seconds
    assert t["count"] == t["lastId"] - t["firstId"] + 1 > 0
    first = await get(
        http, f"{PREFIX[market]}/historicalTrades", symbol=symbol, fromId=t["firstId"], limit=1
    )
    last = await get(
        http, f"{PREFIX[market]}/historicalTrades", symbol=symbol, fromId=t["lastId"], limit=5
    )
    assert first[0]["id"] == t["firstId"]
    assert first[0]["time"] >= window
    assert last[0]["id"] == t["lastId"]
    before = await get(
        http, f"{PREFIX[market]}/historicalTrades", symbol=symbol, fromId=t["firstId"] - 1, limit=1
    )
    assert before[0]["time"] < window


def test_ids_map_to_seconds_both_ways() -> None:
    md = MarketData(5, default_symbols(START))
    series = md.get("usdm", "ETHUSDT")
    assert series is not None
    for s in (
        series.onboard_s,
        series.onboard_s + 1,
        START // 1000 - 86400 * 400 + 3723,
        START // 1000,
    ):
        fid = series.first_id(s)
        found, first = series.second_of_id(fid)
        assert first <= fid
        assert series.first_id(found) == first
        trades = series.second_trades(found)
        assert fid in [t[0] for t in trades] or not trades


def test_klines_unchanged() -> None:
    """Klines of a fixed seed and time are those of before trades were built from sweeps."""
    now = 1_760_000_000
    specs = default_symbols(now * 1000)
    md = MarketData(7, specs)
    h = hashlib.sha256()
    for spec in specs:
        series = md.get(spec.market, spec.symbol)
        assert series is not None
        for interval, size in (("1s", 1), ("1m", 60), ("1h", 3600), ("1d", 86400)):
            start = (now - 300 * size) // size * size
            opens = list(range(start, start + 300 * size, size))
            h.update(md.kline_page(series, interval, opens, now).encode())
    assert h.hexdigest() == "b86e78342102a5e5fe71baa8a7b2e2c16126ff38564f92b10b6fb23b4a7d15ab"


@pytest.mark.parametrize(("market", "symbol"), CASES)
async def test_takers_sweep_the_book_depth_showed(
    http: httpx.AsyncClient, market: str, symbol: str, autojump_clock: Any
) -> None:
    """The book served at a second is the one its first taker then walks, level by level, and
    the last trade price sits inside its spread."""
    prefix = PREFIX[market]
    swept = inside = 0
    for _ in range(120):
        await trio.sleep(1 - (trio.current_time() % 1))  # the start of a second
        book = await get(http, f"{prefix}/depth", symbol=symbol, limit=50)
        bids = [(Decimal(p), Decimal(q)) for p, q in book["bids"]]
        asks = [(Decimal(p), Decimal(q)) for p, q in book["asks"]]
        assert bids[0][0] < asks[0][0]
        seen = await get(http, f"{prefix}/trades", symbol=symbol, limit=1)
        now_s = (await get(http, f"{prefix}/time"))["serverTime"] // 1000
        if seen and seen[-1]["time"] // 1000 == now_s - 1:  # traded up to the last second
            assert bids[0][0] <= Decimal(seen[-1]["price"]) <= asks[0][0]
            inside += 1
        await trio.sleep(1)
        recent = await get(http, f"{prefix}/trades", symbol=symbol, limit=300)
        second = [t for t in recent if t["time"] // 1000 == now_s]
        if not second:
            continue
        taker = [t for t in second if t["time"] == second[0]["time"]]
        levels = asks if not taker[0]["isBuyerMaker"] else bids
        assert [Decimal(t["price"]) for t in taker] == [p for p, _ in levels[: len(taker)]]
        qtys = [Decimal(t["qty"]) for t in taker]
        assert qtys[:-1] == [q for _, q in levels[: len(taker) - 1]]  # emptied on its way
        assert qtys[-1] <= levels[len(taker) - 1][1]
        swept += 1
    assert swept > 90
    assert inside > 90
