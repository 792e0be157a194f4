"""Absurd and reversed time ranges (issue 12, classes 7 and 8).

An ``end`` in microseconds used to block the event loop for 20 s and eat 3 GB planning
pages; an ``end`` in the future spent weight on pages that cannot have rows; a reversed
range raised in ``download_klines`` but returned nothing from the others. Now every entry
point refuses times outside 2017..2100 (suggesting the unit) and empty or reversed ranges
with a ``ValueError`` before any request or file write, pages are computed lazily, and
nothing is asked past the exchange's now.
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from aiocea_trio import (
    Progress,
    download_agg_trades,
    download_funding_rates,
    download_klines,
    download_klines_to_file,
    open_kline_stream,
)
from aiocea_trio.history import interval_ms, to_ms
from aiocea_trio.history.times import kline_pages as _kline_pages
from aiocea_trio.parquet import download_klines_to_parquet
from aiocea_trio.sim import SimExchange

T0 = to_ms("2024-03-01")
DAY = 86_400_000


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class NoRequests:
    """A client that must never be asked anything (it has a clock, as BinanceClient does)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def server_time_ms(self) -> int:
        return to_ms("2025-01-01")

    async def request(self, method: str, path: str, params: Any = None, *, signed: bool = False) -> Any:
        self.calls.append((method, path, params))
        raise AssertionError(f"a request was sent: {method} {path} {params}")


async def _stream(client: Any, start: Any, end: Any, _: Path) -> None:
    async with open_kline_stream(client, "BTCUSDT", "1m", start, end) as batches:
        async for _batch in batches:
            pass


ENTRY_POINTS: dict[str, Callable[[Any, Any, Any, Path], Awaitable[Any]]] = {
    "download_klines": lambda c, a, b, d: download_klines(c, "BTCUSDT", "1m", a, b),
    "open_kline_stream": _stream,
    "download_klines_to_file": lambda c, a, b, d: download_klines_to_file(
        c, d / "out.csv", "BTCUSDT", "1m", a, b
    ),
    "download_klines_to_parquet": lambda c, a, b, d: download_klines_to_parquet(
        c, d / "out.parquet", "BTCUSDT", "1m", a, b
    ),
    "download_agg_trades": lambda c, a, b, d: download_agg_trades(c, "BTCUSDT", a, b),
    "download_funding_rates": lambda c, a, b, d: download_funding_rates(c, "BTCUSDT", a, b),
}


async def _refused(entry: str, start: Any, end: Any, tmp_path: Path, match: str) -> None:
    client = NoRequests()
    began = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        await ENTRY_POINTS[entry](client, start, end, tmp_path)
    assert time.perf_counter() - began < 0.5  # at once: nothing planned, nothing blocked
    assert client.calls == []
    assert _listing(tmp_path) == []  # no output file, no .part, no sidecar


# -- class 8: reversed and empty ranges --------------------------------------------------


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
async def test_a_reversed_range_is_refused_everywhere(entry: str, tmp_path: Path) -> None:
    await _refused(entry, T0 + DAY, T0, tmp_path, r"start \(\d+\) is after end \(\d+\)")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
async def test_an_empty_range_is_refused_everywhere(entry: str, tmp_path: Path) -> None:
    # [start, end) with start == end holds nothing: a mistake, not a silent "0 rows".
    await _refused(entry, "2024-03-01", "2024-03-01", tmp_path, r"start equals end .* empty")


# -- class 7: absurd times ----------------------------------------------------------------


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
async def test_an_end_in_microseconds_is_refused_at_once_with_the_unit(
    entry: str, tmp_path: Path
) -> None:
    await _refused(entry, T0, T0 * 1000, tmp_path, r"^end .*looks like microseconds; pass milliseconds")


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (T0 // 1000, T0, r"^start .*looks like seconds; pass milliseconds"),
        (T0, T0 * 1_000_000, r"^end .*looks like nanoseconds"),
        ("2016-12-31", T0, r"^start must be .*between 2017-01-01 and 2100-01-01"),
        (0, T0, r"^start must be"),
        (T0, "2100-01-02", r"^end must be"),
        (T0, float("inf"), r"^end: not a time"),
        (float("nan"), T0, r"^start: not a time"),
        ("yesterday", T0, r"^start: not a time"),
    ],
)
async def test_times_outside_2017_to_2100_are_refused_naming_the_parameter(
    start: Any, end: Any, match: str, tmp_path: Path
) -> None:
    await _refused("download_klines_to_file", start, end, tmp_path, match)


async def test_a_future_end_spends_no_weight_past_now(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange()
    progress = Progress()
    async with sim.client() as client:
        now = client.server_time_ms()
        rows = await download_klines(
            client, "BTCUSDT", "1m", now - 2 * 3_600_000, now + 365 * DAY, progress=progress,
        )
    # Two hours of 1m candles fit in one page; a year past now would have been 526 more.
    assert progress.pages_total == progress.pages_done == 1
    assert progress.weight == 2
    # The candle open now is the last row. The exchange's now and the client's estimate
    # of it differ by a few ms (the clamp allows 5 s), so at a minute's edge the last row
    # may be the candle just before or just after.
    assert now - 65_000 < rows[-1][0] <= now + 5_000
    # The future is still reported as having no rows (as before), not fetched.
    assert rows.gaps[-1].end == now + 365 * DAY


async def test_a_future_end_asks_no_hour_of_trades_past_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimExchange()
    progress = Progress()
    async with sim.client() as client:
        now = client.server_time_ms()
        trades = await download_agg_trades(
            client, "BTCUSDT", now - 3_600_000 // 2, now + 30 * DAY, progress=progress
        )
    assert progress.pages_total <= 2  # not 721 hours
    assert all(t["T"] <= now for t in trades)


# -- lazy pages ---------------------------------------------------------------------------


def _reference_pages(interval: str, start: int, end: int, page: int) -> list[tuple[int, int, int]]:
    """The eager plan the lazy one replaced (small ranges only)."""
    opens: list[int] = []
    size = interval_ms(interval)
    if size is None:
        day = dt.datetime.fromtimestamp(start / 1000, dt.UTC)
        t = calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
        if t < start:
            t = calendar.timegm((day.year + day.month // 12, day.month % 12 + 1, 1, 0, 0, 0)) * 1000
        while t < end:
            opens.append(t)
            d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
            t = calendar.timegm((d.year + d.month // 12, d.month % 12 + 1, 1, 0, 0, 0)) * 1000
    else:
        offset = 4 * DAY if interval == "1w" else 0
        t = -(-(start - offset) // size) * size + offset
        opens = list(range(t, end, size))
    nexts = [*opens[1:], None]
    out = []
    for i in range(0, len(opens), page):
        chunk = opens[i : i + page]
        after = nexts[i + len(chunk) - 1]
        if after is None:
            after = opens[-1] + size if size is not None else _month_after(opens[-1])
        out.append((chunk[0], min(after, end) - 1, len(chunk)))
    return out


def _month_after(t: int) -> int:
    d = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
    return calendar.timegm((d.year + d.month // 12, d.month % 12 + 1, 1, 0, 0, 0)) * 1000


@pytest.mark.parametrize("interval", ["1s", "1m", "15m", "1h", "1d", "3d", "1w", "1M"])
@pytest.mark.parametrize(
    ("start", "end", "page"),
    [
        (to_ms("2023-01-01T00:00:00.5Z"), to_ms("2023-01-01T00:20:00Z"), 7),
        (to_ms("2023-02-15T13:07:00Z"), to_ms("2023-09-02T00:00:00Z"), 100),
        (to_ms("2022-12-31"), to_ms("2024-03-01T00:00:01Z"), 5),
        (to_ms("2024-01-31T23:59:59Z"), to_ms("2024-02-01"), 3),
    ],
)
def test_lazy_pages_are_the_eager_plan(interval: str, start: int, end: int, page: int) -> None:
    if interval == "1s" and end - start > 40 * DAY:
        end = start + 2 * DAY
    lazy = _kline_pages(interval, start, end, page)
    assert not isinstance(lazy, list)
    assert list(lazy) == _reference_pages(interval, start, end, page)
    assert len(lazy) == len(_reference_pages(interval, start, end, page))


def test_planning_a_century_of_seconds_costs_nothing() -> None:
    began = time.perf_counter()
    pages = _kline_pages("1s", to_ms("2017-01-01"), to_ms("2100-01-01"), 1000)
    assert len(pages) == -(-(to_ms("2100-01-01") - to_ms("2017-01-01")) // 1_000_000)
    assert pages[len(pages) - 1][1] == to_ms("2100-01-01") - 1
    assert time.perf_counter() - began < 0.1
