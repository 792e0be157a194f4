"""History downloads: paging, order, continuity, resume, page-size choice, time parsing.

The simulator is the exchange where correctness against Binance's semantics matters
(tests/test_history_sim.py); here a tiny fake exchange with holes in its data shows
that gaps are reported and never filled in.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import trio

from aiocea_trio.history import (
    Gap,
    Progress,
    best_kline_page_size,
    download_klines,
    interval_ms,
    open_kline_stream,
    to_ms,
)

MINUTE = 60_000
T0 = to_ms("2024-03-01")


class HoleyExchange:
    """Serves 1m klines like Binance, except inside ``holes`` (no trading there)."""

    def __init__(self, holes: list[tuple[int, int]], listed: int = 0) -> None:
        self.holes = holes
        self.listed = listed
        self.calls: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak = 0

    async def request(self, method: str, path: str, params: Any = None, *, signed: bool = False) -> Any:
        self.calls.append(dict(params))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await trio.sleep(0.01 * (len(self.calls) % 3))  # answers arrive out of order
        finally:
            self.in_flight -= 1
        start, end, limit = params["startTime"], params["endTime"], params["limit"]
        rows = []
        t = start - start % MINUTE
        while t <= end and len(rows) < limit:
            if t >= self.listed and not any(a <= t < b for a, b in self.holes):
                rows.append([t, "1", "1", "1", "1", "1", t + MINUTE - 1, "1", 1, "1", "1", "0"])
            t += MINUTE
        return rows


async def test_rows_are_complete_ordered_and_unique(autojump_clock: trio.testing.MockClock) -> None:
    exchange = HoleyExchange([])
    rows = await download_klines(
        exchange, "BTCUSDT", "1m", T0, T0 + 10_000 * MINUTE, page_size=333, source="rest"
    )
    opens = [r[0] for r in rows]
    assert opens == list(range(T0, T0 + 10_000 * MINUTE, MINUTE))
    assert rows.gaps == []
    assert len(exchange.calls) == 31  # ceil(10000 / 333)
    assert exchange.peak > 1  # pages really were fetched concurrently


async def test_gaps_are_reported_not_filled(autojump_clock: trio.testing.MockClock) -> None:
    hole = (T0 + 500 * MINUTE, T0 + 1_200 * MINUTE)  # spans a page boundary
    exchange = HoleyExchange([hole], listed=T0 + 10 * MINUTE)
    rows = await download_klines(
        exchange, "BTCUSDT", "1m", T0, T0 + 2_000 * MINUTE, page_size=400, source="rest"
    )
    assert rows.gaps == [Gap(T0, T0 + 10 * MINUTE), Gap(*hole)]
    assert len(rows) == 2_000 - 10 - 700
    assert all(b[0] - a[0] == MINUTE for a, b in itertools.pairwise(rows) if b[0] != hole[1])


async def test_stream_is_bounded_and_can_stop_early(autojump_clock: trio.testing.MockClock) -> None:
    exchange = HoleyExchange([])
    progress = Progress()
    seen = 0
    async with open_kline_stream(
        exchange,
        "BTCUSDT",
        "1m",
        T0,
        T0 + 100_000 * MINUTE,
        page_size=100,
        max_concurrency=4,
        progress=progress,
        source="rest",
    ) as batches:
        async for batch in batches:
            seen += len(batch)
            if seen >= 1_000:
                break
    assert seen == 1_000
    assert progress.pages_total == 1_000
    # Stopping early stops the fetching: only the pages in flight were requested.
    assert len(exchange.calls) <= 10 + 4 + 2
    assert exchange.peak <= 4


async def test_errors_come_out_as_themselves(autojump_clock: trio.testing.MockClock) -> None:
    class Broken(HoleyExchange):
        async def request(self, method: str, path: str, params: Any = None, *, signed: bool = False) -> Any:
            if params["startTime"] > T0:
                raise KeyError("boom")
            return await super().request(method, path, params)

    with pytest.raises(KeyError, match="boom"):
        await download_klines(
            Broken([]), "BTCUSDT", "1m", T0, T0 + 5_000 * MINUTE, page_size=1000,
            max_concurrency=1, source="rest",
        )


def test_page_size_buys_most_rows_per_weight() -> None:
    # Spot klines weigh 2 whatever the limit: the largest page. Futures weigh 1/2/5/10
    # by limit: 499 rows for 2 beats 1000 for 5 and 1500 for 10.
    assert best_kline_page_size("spot") == 1000
    assert best_kline_page_size("usdm") == 499
    assert best_kline_page_size("coinm") == 499


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000_000, 1_700_000_000_000),
        ("1700000000000", 1_700_000_000_000),
        ("2024-03-01", T0),
        ("2024-03-01T00:00:00Z", T0),
        ("2024-03-01T02:00:00+02:00", T0),
        (dt.datetime(2024, 3, 1), T0),
        (dt.datetime(2024, 3, 1, tzinfo=dt.UTC), T0),
        (dt.date(2024, 3, 1), T0),
    ],
)
def test_times_in_every_form(value: Any, expected: int) -> None:
    assert to_ms(value) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "-5"])
def test_bad_times_are_clear_errors(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not a time|before 1970"):
        to_ms(bad)


def test_intervals() -> None:
    assert interval_ms("1w") == 7 * 86_400_000
    assert interval_ms("1M") is None
    with pytest.raises(ValueError, match="interval must be one of"):
        interval_ms("2m")


async def test_bad_arguments_are_refused_before_any_request() -> None:
    exchange = HoleyExchange([])
    with pytest.raises(ValueError, match="after end"):
        await download_klines(exchange, "BTCUSDT", "1m", T0 + 1, T0)
    with pytest.raises(ValueError, match="symbol"):
        await download_klines(exchange, "", "1m", T0, T0 + 1)
    with pytest.raises(ValueError, match="page_size"):
        await download_klines(exchange, "BTCUSDT", "1m", T0, T0 + 1, page_size=5000)
    with pytest.raises(ValueError, match="source"):
        await download_klines(exchange, "BTCUSDT", "1m", T0, T0 + 1, source="ftp")
    assert exchange.calls == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_concurrency": True}, TypeError, r"max_concurrency must be an int; got True"),
        ({"max_concurrency": 2.0}, TypeError, r"max_concurrency must be an int"),
        ({"max_concurrency": 0}, ValueError, r"max_concurrency must be at least 1; got 0"),
        ({"page_size": float("nan")}, TypeError, r"page_size must be an int"),
        ({"page_size": 0}, ValueError, r"page_size must be at least 1"),
    ],
)
async def test_loose_types_are_refused_naming_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    exchange = HoleyExchange([])
    with pytest.raises(error, match=match):
        await download_klines(exchange, "BTCUSDT", "1m", T0, T0 + MINUTE, **kwargs)
    assert exchange.calls == []


def test_kline_capacity_counts_the_candles_a_frame_preallocates() -> None:
    from aiocea_trio.history import HistoryQuery
    from aiocea_trio.history.klines import kline_capacity

    class NoClock:
        async def request(self, method: str, path: str, params: Any = None, *, signed: bool = False) -> Any:
            raise AssertionError("no request")

    def capacity(interval: str, start: str, end: str) -> int:
        return kline_capacity(NoClock(), HistoryQuery.check("spot", "BTCUSDT", start, end, interval))

    assert capacity("1m", "2024-01-01", "2024-01-02") == 1440
    assert capacity("1m", "2024-01-01T00:00:30Z", "2024-01-01T00:10:00Z") == 9  # opens 00:01..09
    assert capacity("1M", "2024-01-15", "2024-04-01") == 2  # February and March
    assert capacity("1d", "2024-01-01", "2024-01-01T00:00:01Z") == 1
