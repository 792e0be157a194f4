"""Times, ranges and the kline grid: what a history download asks for, checked.

Every entry point turns its ``symbol``, ``start`` and ``end`` (and ``interval``) into a
``HistoryQuery`` here, before any request or file write. Pages of klines are computed
from the range as they are fetched, never listed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterator
from typing import Final

import attrs

from ..endpoints import INTERVAL_MS, KLINE_INTERVALS
from ..markets import Market
from ..symbols import check_symbol

__all__ = [
    "EARLIEST_MS",
    "LATEST_MS",
    "HistoryQuery",
    "KlinePages",
    "TimeLike",
    "check_time",
    "grid_start",
    "interval_ms",
    "kline_pages",
    "next_open",
    "time_range",
    "to_ms",
]

#: A point in time: epoch ms, a datetime or date (naive ones are UTC), or an ISO 8601 text.
TimeLike = int | float | str | dt.datetime | dt.date

#: Times outside these are refused: Binance has no data before 2017, and a time after 2100
#: is a unit slip (microseconds or nanoseconds where milliseconds are meant).
EARLIEST_MS: Final = 1_483_228_800_000  # 2017-01-01T00:00Z
LATEST_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00Z
_WEEK_OFFSET_MS: Final = 4 * 86_400_000  # 1970-01-01 was a Thursday; Binance weeks start Monday
#: Every kline interval Binance has (spot's list: futures lack ``1s``).
_ALL_INTERVALS: Final = KLINE_INTERVALS[Market.SPOT]


def to_ms(value: TimeLike) -> int:
    """Epoch milliseconds from epoch ms, a datetime, a date or an ISO 8601 text.

    Naive datetimes and dates are taken as UTC (Binance's time zone).

    Raises:
        ValueError: a text that is not a date, or a negative time.
    """
    if isinstance(value, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        ms = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            ms = int(text)
        else:
            try:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"not a time: {value!r} (use epoch ms or ISO 8601, e.g. 2024-01-31 or "
                    "2024-01-31T12:00:00Z)"
                ) from None
            return to_ms(parsed)
    elif isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        ms = int(aware.timestamp() * 1000)
    elif isinstance(value, dt.date):
        ms = calendar.timegm(value.timetuple()) * 1000
    else:
        raise TypeError(f"not a time: {value!r}")
    if ms < 0:
        raise ValueError(f"a time must not be before 1970: {value!r}")
    return ms


def interval_ms(interval: str) -> int | None:
    """Length of a kline interval in ms; None for ``1M`` (calendar months).

    Raises:
        ValueError: not one of Binance's kline intervals.
    """
    size = INTERVAL_MS.get(interval)
    if size is None and interval != "1M":
        allowed = " ".join(_ALL_INTERVALS)
        raise ValueError(f"interval must be one of {allowed}; got {interval!r}")
    return size


def grid_start(interval: str, t: int) -> int:
    """The first candle open time at or after ``t``."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
        month = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
        if month.timestamp() * 1000 < t:
            month = _add_month(month)
        return int(month.timestamp() * 1000)
    size = interval_ms(interval)
    assert size is not None  # only 1M has no fixed length
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    return -(-(t - offset) // size) * size + offset


def _add_month(when: dt.datetime) -> dt.datetime:
    return when.replace(year=when.year + when.month // 12, month=when.month % 12 + 1)


def next_open(interval: str, t: int) -> int:
    """The open time of the candle after the one opening at ``t``."""
    size = interval_ms(interval)
    if size is not None:
        return t + size
    return int(_add_month(dt.datetime.fromtimestamp(t / 1000, dt.UTC)).timestamp() * 1000)


def candle_fits(interval: str, open_time: int, close_time: int) -> bool:
    """True when a row with these times is a candle of ``interval``."""
    return grid_start(interval, open_time) == open_time and (
        close_time == next_open(interval, open_time) - 1
    )


def interval_of(open_time: int, close_time: int) -> str:
    """The interval a candle with these times belongs to (or its length, when none)."""
    for name in _ALL_INTERVALS:
        if candle_fits(name, open_time, close_time):
            return name
    return f"{close_time - open_time + 1} ms"


def _month_index(t: int) -> int:
    """Months since 0000-01 of the month holding ``t`` (UTC)."""
    day = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
    return day.year * 12 + day.month - 1


def _month_open(index: int) -> int:
    return calendar.timegm((index // 12, index % 12 + 1, 1, 0, 0, 0)) * 1000


class KlinePages:
    """``(startTime, endTime, limit)`` per page covering open times in ``[start, end)``.

    Computed page by page, never listed: memory is the same for a day and for a
    century (a unit slip once planned 30 million pages up front).
    """

    def __init__(self, interval: str, start: int, end: int, page: int) -> None:
        self.interval, self.end, self.page = interval, end, page
        self.size = interval_ms(interval)
        self.first = grid_start(interval, start)
        if self.size is not None:
            self.rows = max(0, -(-(end - self.first) // self.size))
        else:
            first, last = _month_index(self.first), _month_index(end)
            self.rows = max(0, last - first + (_month_open(last) < end))
        self.count = -(-self.rows // page)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        skip = index * self.page
        n = min(self.page, self.rows - skip)
        if self.size is not None:
            lo = self.first + skip * self.size
            return lo, min(lo + n * self.size, self.end) - 1, n
        month = _month_index(self.first) + skip
        return _month_open(month), min(_month_open(month + n), self.end) - 1, n

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return (self[i] for i in range(self.count))


def kline_pages(interval: str, start: int, end: int, page: int) -> KlinePages:
    """The pages covering open times in ``[start, end)``, computed lazily."""
    return KlinePages(interval, start, end, page)


def check_time(name: str, value: TimeLike) -> int:
    """``to_ms(value)``, refused outside 2017..2100 with a hint at the unit it looks like."""
    try:
        ms = to_ms(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    if EARLIEST_MS <= ms <= LATEST_MS:
        return ms
    hint = ""
    for factor, unit in ((1_000, "microseconds"), (1_000_000, "nanoseconds")):
        if EARLIEST_MS <= ms // factor <= LATEST_MS:
            hint = f": looks like {unit}; pass milliseconds (e.g. {ms // factor})"
            break
    else:
        if EARLIEST_MS <= ms * 1000 <= LATEST_MS:
            hint = f": looks like seconds; pass milliseconds (e.g. {ms * 1000})"
    raise ValueError(
        f"{name} must be an epoch time in milliseconds between 2017-01-01 and 2100-01-01 "
        f"(Binance has no data before 2017); got {value!r}{hint}"
    )


def time_range(symbol: str, start: TimeLike, end: TimeLike) -> tuple[int, int]:
    """The checks every history entry point makes before any request or file write.

    The range is half-open, ``[start, end)``: an empty one (``start == end``) can hold
    no row and is refused like a reversed one, as a mistake rather than a no-op.
    """
    check_symbol(symbol)
    lo, hi = check_time("start", start), check_time("end", end)
    if lo > hi:
        raise ValueError(f"start ({lo}) is after end ({hi}): nothing to download")
    if lo == hi:
        raise ValueError(f"start equals end ({lo}): the range [start, end) is empty")
    return lo, hi


@attrs.frozen
class HistoryQuery:
    """What one download asks for, checked: a market's symbol over ``[start, end)`` (ms).

    ``interval`` is the kline interval ("" for trades and funding rates).
    """

    market: Market
    symbol: str
    start: int
    end: int
    interval: str = ""

    @classmethod
    def check(
        cls,
        market: Market | str,
        symbol: str,
        start: TimeLike,
        end: TimeLike,
        interval: str | None = None,
    ) -> HistoryQuery:
        """The query, or the ``ValueError`` naming what is wrong (market, symbol, times,
        range, interval: in that order)."""
        market = Market(market)
        lo, hi = time_range(symbol, start, end)
        if interval is None:
            return cls(market, symbol, lo, hi)
        interval_ms(interval)  # validates
        return cls(market, symbol, lo, hi, interval)

    def over(self, start: int, end: int) -> HistoryQuery:
        """The same query over ``[start, end)``."""
        return attrs.evolve(self, start=start, end=end)
