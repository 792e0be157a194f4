"""download_klines against the simulator: every market, every interval, resume, the other histories."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
import trio
import trio.testing

from aiocea_trio.history import (
    Progress,
    download_agg_trades,
    download_funding_rates,
    download_klines,
    download_klines_to_file,
    interval_ms,
    to_ms,
)
from aiocea_trio.sim import SimExchange

SPOT_INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                  "1d", "3d", "1w", "1M"]
SYMBOLS = {"spot": "BTCUSDT", "usdm": "ETHUSDT", "coinm": "BTCUSD_PERP"}
START = to_ms("2023-03-01")


def _span(interval: str, candles: int) -> int:
    size = interval_ms(interval)
    return START + (size * candles if size is not None else 0)


def _expected_opens(interval: str, lo: int, hi: int) -> list[int]:
    size = interval_ms(interval)
    if size is None:
        opens, day = [], dt.datetime.fromtimestamp(lo / 1000, dt.UTC)
        while (t := int(day.timestamp() * 1000)) < hi:
            opens.append(t)
            day = day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)
        return opens
    offset = 4 * 86_400_000 if interval == "1w" else 0
    first = -(-(lo - offset) // size) * size + offset
    return list(range(first, hi, size))


@pytest.mark.parametrize(
    ("interval", "market"),
    [
        (interval, market)
        for interval in SPOT_INTERVALS
        for market in ("spot", "usdm", "coinm")
        if market == "spot" or interval != "1s"  # futures have no 1s klines
    ],
)
async def test_every_market_and_interval(
    market: str, interval: str, autojump_clock: trio.testing.MockClock
) -> None:
    # A few pages of each, never reaching into the future (weeks: 90; months: 22).
    hi = _span(interval, 90 if interval == "1w" else 250) if interval != "1M" else to_ms("2025-01-01")
    sim = SimExchange()
    async with sim.client() as client:
        rows = await download_klines(
            client, SYMBOLS[market], interval, START, hi, market=market, page_size=7 if interval in ("1w", "1M") else 97,
            source="rest",
        )
        mid = len(rows) // 2
        # Spot-check against one plain request: the same candles, byte for byte.
        path = {"spot": "/api/v3/klines", "usdm": "/fapi/v1/klines", "coinm": "/dapi/v1/klines"}
        direct = await client.request(
            "GET", path[market],
            {"symbol": SYMBOLS[market], "interval": interval, "startTime": rows[mid][0],
             "limit": 3},
        )
    assert [r[0] for r in rows] == _expected_opens(interval, START, hi)
    assert rows.gaps == []
    assert all(len(r) == 12 for r in rows)
    assert rows[mid : mid + 3] == direct


async def test_two_months_of_1m_in_order_without_gaps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # (A whole year is the benchmark's job: benchmarks/bench_download.py.)
    sim = SimExchange()
    progress = Progress()
    async with sim.client() as client:
        rows = await download_klines(
            client, "BTCUSDT", "1m", "2024-01-01", "2024-03-01", progress=progress, source="rest"
        )
    assert len(rows) == 60 * 1440
    assert all(b[0] - a[0] == 60_000 for a, b in itertools.pairwise(rows))
    assert progress.pages_done == progress.pages_total == 87  # 1000 rows per page
    assert progress.weight == 87 * 2


async def test_futures_pages_are_the_cheapest_per_row(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimExchange()
    progress = Progress()
    async with sim.client() as client:
        rows = await download_klines(
            client, "BTCUSDT", "1m", "2024-01-01", "2024-01-08", market="usdm",
            progress=progress, source="rest",
        )
    assert len(rows) == 7 * 1440
    # 10,080 rows in pages of 499 at weight 2: 21 pages, 42 weight (1500-row pages: 70).
    assert (progress.pages_done, progress.weight) == (21, 42)


async def test_resume_into_an_existing_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    target = tmp_path / "eth.csv"
    sim = SimExchange()
    async with sim.client() as client:
        first = await download_klines_to_file(
            client, target, "ETHUSDT", "5m", "2024-02-01", "2024-02-02", source="rest"
        )
        again = await download_klines_to_file(
            client, target, "ETHUSDT", "5m", "2024-02-01", "2024-02-02", source="rest"
        )
        more = await download_klines_to_file(
            client, target, "ETHUSDT", "5m", "2024-02-01", "2024-02-03", source="rest"
        )
        whole = await download_klines(
            client, "ETHUSDT", "5m", "2024-02-01", "2024-02-03", source="rest"
        )
    assert (first, again, more) == (288, 0, 288)
    lines = target.read_text().splitlines()[1:]
    assert [line.split(",") for line in lines] == [[str(v) for v in row] for row in whole]


async def test_the_open_candle_is_the_last_row(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange()
    async with sim.client() as client:
        now = client.server_time_ms()
        rows = await download_klines(client, "BNBUSDT", "1h", now - 5 * 3_600_000, now + 1)
    assert len(rows) in (5, 6)
    assert rows[-1][0] <= now < rows[-1][6] + 1  # still open: it closes in the future


async def test_agg_trades_across_hours(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange()
    lo, hi = to_ms("2024-05-01T10:45:00Z"), to_ms("2024-05-01T11:15:00Z")
    async with sim.client() as client:
        trades = await download_agg_trades(client, "BTCUSDT", lo, hi, market="usdm")
    ids = [t["a"] for t in trades]
    assert ids == sorted(set(ids))
    assert all(lo <= t["T"] < hi for t in trades)
    assert len(trades) > 1000  # needed more than one page


async def test_funding_rate_history(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange()
    async with sim.client() as client:
        rows = await download_funding_rates(
            client, "BTCUSDT", "2022-01-01", "2024-01-01", market="usdm"
        )
    times = [r["fundingTime"] for r in rows]
    assert times == sorted(times)
    assert len(times) == len(set(times))
    assert 2_000 < len(rows) < 2_300  # every 8 hours for two years: more than one page
