"""Bulk history: klines, aggregate trades and funding rates over any time range.

Pages are fetched concurrently, each inside the client's rate limiter, and
handed on strictly in time order. The page size is the one that buys the most
rows per unit of request weight (on futures the largest page is not the
cheapest per row). Adjacent pages are checked for continuity: a real gap in
the exchange's data (no trading, an outage, a symbol not yet listed) is
reported, never filled in, and no row is ever duplicated.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import functools
import io
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence, Sized
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, TypeVar

import attrs
import trio

from ._groups import collapse_groups, open_nursery
from .archives import (
    DEFAULT_ARCHIVE_URL,
    ArchiveFile,
    ArchiveNotFoundError,
    KlineBlock,
    collector_paused,
    load_agg_trades,
    load_kline_block,
    load_klines,
    plan_agg_trade_archives,
    plan_kline_archives,
)
from .endpoints import find
from .errors import BinanceResponseError
from .markets import Market
from .symbols import check_symbol

__all__ = [
    "Gap",
    "HistoryRows",
    "Progress",
    "TimeLike",
    "best_kline_page_size",
    "download_agg_trades",
    "download_funding_rates",
    "download_klines",
    "download_klines_to_file",
    "interval_ms",
    "open_kline_stream",
    "to_ms",
]

logger = logging.getLogger("aiocea_trio.history")

Row = list[Any]
T = TypeVar("T")
A = TypeVar("A", bound=Sized)
#: A point in time: epoch ms, a datetime or date (naive ones are UTC), or an ISO 8601 text.
TimeLike = int | float | str | dt.datetime | dt.date

_INTERVAL_MS: Final = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
_WEEK_OFFSET_MS: Final = 4 * 86_400_000  # 1970-01-01 was a Thursday; Binance weeks start Monday
_KLINE_PATHS: Final = {
    Market.SPOT: "/api/v3/klines",
    Market.USDM: "/fapi/v1/klines",
    Market.COINM: "/dapi/v1/klines",
}
_MAX_KLINE_LIMIT: Final = {Market.SPOT: 1000, Market.USDM: 1500, Market.COINM: 1500}
_AGG_PATHS: Final = {
    Market.SPOT: "/api/v3/aggTrades",
    Market.USDM: "/fapi/v1/aggTrades",
    Market.COINM: "/dapi/v1/aggTrades",
}
_FUNDING_PATHS: Final = {Market.USDM: "/fapi/v1/fundingRate", Market.COINM: "/dapi/v1/fundingRate"}
_HOUR_MS: Final = 3_600_000
_COINM_MAX_SPAN_MS: Final = 200 * 86_400_000
_COINM_MAX_MONTHS: Final = 6  # six months never exceed 200 days
#: Times outside these are refused: Binance has no data before 2017, and a time after 2100
#: is a unit slip (microseconds or nanoseconds where milliseconds are meant).
EARLIEST_MS: Final = 1_483_228_800_000  # 2017-01-01T00:00Z
LATEST_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00Z
#: How far past the client's estimate of the exchange's clock a download still asks: the
#: estimate may lag the exchange by a little, never by seconds.
_CLOCK_SLACK_MS: Final = 5_000


class _Requester(Protocol):
    async def request(
        self, method: str, path: str, params: Any = None, *, signed: bool = False
    ) -> Any: ...


@attrs.frozen
class Gap:
    """Open times ``[start, end)`` in which the exchange has no rows."""

    start: int
    end: int


class HistoryRows(list[Any]):
    """The rows, in time order, plus the gaps the exchange's data has in the range."""

    gaps: list[Gap]

    def __init__(self, rows: Sequence[Any] = (), gaps: Sequence[Gap] = ()) -> None:
        super().__init__(rows)
        self.gaps = list(gaps)


@attrs.define
class Progress:
    """Updated in place while a download runs (a progress bar reads it)."""

    pages_total: int = 0
    pages_done: int = 0
    rows: int = 0
    weight: int = 0
    archives_total: int = 0
    archives_done: int = 0
    archive_rows: int = 0


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
    """Length of a kline interval in ms; None for ``1M`` (calendar months)."""
    if interval == "1M":
        return None
    try:
        return _INTERVAL_MS[interval]
    except KeyError:
        allowed = " ".join([*_INTERVAL_MS, "1M"])
        raise ValueError(f"interval must be one of {allowed}; got {interval!r}") from None


def _grid_start(interval: str, t: int) -> int:
    """The first candle open time at or after ``t``."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
        month = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
        if month.timestamp() * 1000 < t:
            month = _add_month(month)
        return int(month.timestamp() * 1000)
    size = _INTERVAL_MS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    return -(-(t - offset) // size) * size + offset


def _add_month(when: dt.datetime) -> dt.datetime:
    return when.replace(year=when.year + when.month // 12, month=when.month % 12 + 1)


def _next_open(interval: str, t: int) -> int:
    size = interval_ms(interval)
    if size is not None:
        return t + size
    return int(_add_month(dt.datetime.fromtimestamp(t / 1000, dt.UTC)).timestamp() * 1000)


@functools.cache
def best_kline_page_size(market: Market | str) -> int:
    """The ``limit`` that buys the most kline rows per unit of weight (ties: the larger)."""
    market = Market(market)
    path = _KLINE_PATHS[market]

    def rows_per_weight(limit: int) -> float:
        weight = find(market, "GET", path).request_weight({"limit": str(limit)})
        return limit / max(weight, 1)

    return max(range(1, _MAX_KLINE_LIMIT[market] + 1), key=lambda n: (rows_per_weight(n), n))


def _month_index(t: int) -> int:
    """Months since 0000-01 of the month holding ``t`` (UTC)."""
    day = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
    return day.year * 12 + day.month - 1


def _month_open(index: int) -> int:
    return calendar.timegm((index // 12, index % 12 + 1, 1, 0, 0, 0)) * 1000


class _KlinePages:
    """``(startTime, endTime, limit)`` per page covering open times in ``[start, end)``.

    Computed page by page, never listed: memory is the same for a day and for a
    century (a unit slip once planned 30 million pages up front).
    """

    def __init__(self, interval: str, start: int, end: int, page: int) -> None:
        self.interval, self.end, self.page = interval, end, page
        self.size = interval_ms(interval)
        self.first = _grid_start(interval, start)
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


def _kline_pages(interval: str, start: int, end: int, page: int) -> _KlinePages:
    """The pages covering open times in ``[start, end)``, computed lazily."""
    return _KlinePages(interval, start, end, page)


def _time_arg(name: str, value: TimeLike) -> int:
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


def _time_range(symbol: str, start: TimeLike, end: TimeLike) -> tuple[int, int]:
    """The checks every history entry point makes before any request or file write.

    The range is half-open, ``[start, end)``: an empty one (``start == end``) can hold
    no row and is refused like a reversed one, as a mistake rather than a no-op.
    """
    check_symbol(symbol)
    lo, hi = _time_arg("start", start), _time_arg("end", end)
    if lo > hi:
        raise ValueError(f"start ({lo}) is after end ({hi}): nothing to download")
    if lo == hi:
        raise ValueError(f"start equals end ({lo}): the range [start, end) is empty")
    return lo, hi


def _server_now(client: object) -> int | None:
    """The exchange's time as the client estimates it, when the client has a clock."""
    now = getattr(client, "server_time_ms", None)
    return int(now()) if callable(now) else None


def _kline_fetch_end(client: object, interval: str, hi: int) -> int:
    """``hi``, or the close of the candle open now when ``hi`` is later: no row can be there."""
    now = _server_now(client)
    if now is None:
        return hi
    return min(hi, _grid_start(interval, now + _CLOCK_SLACK_MS + 1))


def _fetch_end(client: object, hi: int) -> int:
    """``hi``, or the exchange's now (and a little) when ``hi`` is later."""
    now = _server_now(client)
    return hi if now is None else min(hi, now + _CLOCK_SLACK_MS + 1)


def _check_kline_args(
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    market: Market | str,
    source: str,
    max_concurrency: int,
) -> tuple[Market, int, int]:
    """All the checks of a kline download, made before any request or file write."""
    market = Market(market)
    lo, hi = _time_range(symbol, start, end)
    interval_ms(interval)  # validates
    if source not in ("auto", "rest", "archive"):
        raise ValueError(f"source must be 'auto', 'rest' or 'archive'; got {source!r}")
    _check_count("max_concurrency", max_concurrency)
    return market, lo, hi


def _check_count(name: str, value: object) -> int:
    """An int >= 1 (``True``, ``2.0`` or NaN are refused here, not deep inside trio)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1; got {value!r}")
    return value


def _check_kline_page(rows: object, market: Market, path: str) -> list[Row]:
    """A klines answer is a list of 12-field lists; anything else is the server's fault."""
    if isinstance(rows, list) and all(isinstance(r, list) and len(r) == 12 for r in rows):
        return rows
    excerpt = " ".join(repr(rows)[:200].split())
    raise BinanceResponseError(200, excerpt, market=market.value, method="GET", path=path)


async def _ordered_pages(
    fetch: Callable[[int], Awaitable[T]],
    count: int,
    send: trio.MemorySendChannel[T],
    *,
    max_concurrency: int,
) -> None:
    """Fetch pages ``0..count-1`` concurrently; send each result in page order.

    At most ``max_concurrency`` pages are fetched or waiting to be sent at once,
    so memory stays bounded however long the history.
    """
    slots = trio.Semaphore(max_concurrency)
    done: dict[int, trio.Event] = {}
    results: dict[int, T] = {}

    async def one(index: int) -> None:
        results[index] = await fetch(index)
        done[index].set()

    async with trio.open_nursery() as nursery:

        async def emit() -> None:
            for index in range(count):
                await done_event(index).wait()
                rows = results.pop(index)
                done.pop(index)
                slots.release()
                await send.send(rows)

        def done_event(index: int) -> trio.Event:
            return done.setdefault(index, trio.Event())

        nursery.start_soon(emit)
        for index in range(count):
            await slots.acquire()
            done_event(index)
            nursery.start_soon(one, index)
    # Closed only when every page was sent: a failure or a cancel (Ctrl-C) must not
    # look like the end of the range to the consumer, which would report the rest as
    # a gap. The failure reaches the consumer's nursery and cancels it instead.
    send.close()


@attrs.frozen
class _ArchivePlan:
    http: Any  # httpx.AsyncClient, or None when archives are not used
    root: str
    files: list[ArchiveFile]
    rest_from: int | None


def _archive_plan(
    client: _Requester,
    source: str,
    archive_url: str | None,
    plan: Callable[[int], tuple[list[ArchiveFile], int]],
    hi: int,
    what: str,
) -> _ArchivePlan:
    """Which archive files serve a range, and where the REST API takes over."""
    if source not in ("auto", "rest", "archive"):
        raise ValueError(f"source must be 'auto', 'rest' or 'archive'; got {source!r}")
    http = getattr(client, "http_client", None) if source != "rest" else None
    if source == "archive" and http is None:
        raise ValueError("source='archive' needs a BinanceClient (archives are fetched over HTTP)")
    if http is None:
        return _ArchivePlan(None, "", [], None)
    today = client.server_time_ms()  # type: ignore[attr-defined]
    files, rest_from = plan(today - today % 86_400_000)
    if source == "archive" and rest_from < hi:
        raise ArchiveNotFoundError(f"{what} from {rest_from} (today's data is not archived yet)")
    root = archive_url or getattr(client, "base_url", None) or DEFAULT_ARCHIVE_URL
    return _ArchivePlan(http, root, files, rest_from)


@asynccontextmanager
async def open_kline_stream(
    client: _Requester,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.SPOT,
    page_size: int | None = None,
    max_concurrency: int = 8,
    progress: Progress | None = None,
    gaps: list[Gap] | None = None,
    source: str = "auto",
    archive_url: str | None = None,
    cache_dir: str | Path | None = None,
) -> AsyncIterator[trio.MemoryReceiveChannel[list[Row]]]:
    """Stream klines with open time in ``[start, end)`` as batches of rows, in order.

    ``async with open_kline_stream(...) as batches: async for rows in batches:``.
    Leaving the block early cancels the fetches still running. Gaps found in the
    exchange's data are appended to ``gaps`` (and logged) as they are found.

    Args:
        page_size: rows per request; by default the cheapest per row for the market.
        max_concurrency: pages and archive files in flight (and buffered) at most.
        source: ``"auto"`` takes every complete month, then every complete day,
            before today from Binance's zip archives (no request weight) and the
            rest from the REST API; ``"rest"`` and ``"archive"`` force one path.
            A missing archive falls back to REST for exactly its span (``"archive"``
            raises ``ArchiveNotFoundError`` instead).
        archive_url: the archive root; by default the client's ``base_url`` when it
            has one (the simulator serves archives too), else data.binance.vision.
        cache_dir: keep verified archives here; a cached file is never downloaded again.
    """
    async with _kline_batches(
        client,
        symbol,
        interval,
        start,
        end,
        market=market,
        page_size=page_size,
        max_concurrency=max_concurrency,
        progress=progress,
        gaps=gaps,
        source=source,
        archive_url=archive_url,
        cache_dir=cache_dir,
        blocks=False,
    ) as batches:
        yield batches  # type: ignore[misc]  # without blocks, every batch is a list of rows


@asynccontextmanager
async def _kline_batches(
    client: _Requester,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str,
    page_size: int | None,
    max_concurrency: int,
    progress: Progress | None,
    gaps: list[Gap] | None,
    source: str,
    archive_url: str | None,
    cache_dir: str | Path | None,
    blocks: bool,
) -> AsyncIterator[trio.MemoryReceiveChannel[list[Row] | KlineBlock]]:
    """``open_kline_stream``; with ``blocks``, whole archive files come as ``KlineBlock``."""
    market, lo, hi = _check_kline_args(
        symbol, interval, start, end, market, source, max_concurrency
    )
    limit = best_kline_page_size(market) if page_size is None else page_size
    _check_count("page_size", limit)
    if not 1 <= limit <= _MAX_KLINE_LIMIT[market]:
        raise ValueError(f"page_size must be in 1..{_MAX_KLINE_LIMIT[market]}; got {limit}")
    # Nothing is asked past the candle open now: a future ``end`` costs no weight.
    stop = _kline_fetch_end(client, interval, hi)
    plan = _archive_plan(
        client,
        source,
        archive_url,
        lambda today: plan_kline_archives(market, symbol, interval, lo, max(lo, stop), today),
        stop,
        f"{symbol} {interval}",
    )
    http, root, files, rest_from = plan.http, plan.root, plan.files, plan.rest_from
    if market is Market.COINM:
        # COIN-M refuses a kline query spanning more than 200 days (-1127).
        size = interval_ms(interval)
        limit = min(limit, _COINM_MAX_SPAN_MS // size if size else _COINM_MAX_MONTHS)
    pages = _kline_pages(interval, lo if rest_from is None else rest_from, stop, limit)
    progress = progress if progress is not None else Progress()
    progress.pages_total += len(pages)
    progress.archives_total += len(files)
    found = gaps if gaps is not None else []
    path = _KLINE_PATHS[market]
    cache = Path(cache_dir) if cache_dir is not None else None

    async def load(file: ArchiveFile) -> list[Row] | KlineBlock | None:
        assert http is not None
        if blocks:
            return await load_kline_block(http, root, file, cache_dir=cache)
        return await load_klines(http, root, file, cache_dir=cache)

    async def rest_span(file: ArchiveFile, child: Progress) -> list[Row]:
        return await download_klines(
            client, symbol, interval, file.start, file.end, market=market,
            page_size=page_size, max_concurrency=max_concurrency, progress=child, source="rest",
        )

    async def fetch_archive_file(file: ArchiveFile) -> list[Row] | KlineBlock:
        return await _archive_or_rest(file, load, rest_span, source=source, progress=progress)

    async def fetch(index: int) -> list[Row] | KlineBlock:
        if index < len(files):
            return await fetch_archive_file(files[index])
        page_start, page_end, n = pages[index - len(files)]
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": page_start,
            "endTime": page_end,
            "limit": n,
        }
        answer = await client.request("GET", path, params)
        progress.weight += find(market, "GET", path).request_weight({"limit": str(n)})
        rows = _check_kline_page(answer, market, path)
        progress.pages_done += 1
        return [r for r in rows if page_start <= int(r[0]) <= page_end and int(r[0]) < stop]

    send, receive = trio.open_memory_channel[list[Row] | KlineBlock](0)
    checked_send, checked_receive = trio.open_memory_channel[list[Row] | KlineBlock](0)

    async def check() -> None:
        """Continuity across the whole stream: report gaps, drop duplicates."""
        expected = _grid_start(interval, lo)
        size = interval_ms(interval)
        with checked_send, receive:
            async for batch in receive:
                if isinstance(batch, KlineBlock):
                    if size is not None and _is_whole_block(batch, expected, size):
                        expected = batch.last + size
                        progress.rows += batch.count
                        await checked_send.send(batch)
                        continue
                    rows = await trio.to_thread.run_sync(batch.rows)
                else:
                    rows = batch
                if size is not None and _is_whole_run(rows, expected, size):
                    # The usual case, checked in O(1): the batch starts where the last
                    # one ended and spans exactly its length (rows come sorted).
                    expected = rows[-1][0] + size
                    progress.rows += len(rows)
                    await checked_send.send(rows)
                    continue
                out: list[Row] = []
                for row in rows:
                    open_time = int(row[0])
                    if open_time < expected:
                        continue  # a duplicate of a row already sent
                    if open_time > expected:
                        _report(found, Gap(expected, open_time), symbol, interval)
                    out.append(row)
                    expected = _next_open(interval, open_time)
                progress.rows += len(out)
                await checked_send.send(out)
            if expected < hi:
                _report(found, Gap(expected, hi), symbol, interval, trailing=True)

    # The caller's block runs inside: open_nursery gives back its exception as it was.
    async with open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(
                _ordered_pages,
                fetch,
                len(files) + len(pages),
                send,
                max_concurrency=max_concurrency,
            )
        )
        nursery.start_soon(check)
        with checked_receive:
            yield checked_receive
        nursery.cancel_scope.cancel()


async def _archive_or_rest(
    file: ArchiveFile,
    load: Callable[[ArchiveFile], Awaitable[A | None]],
    rest_span: Callable[[ArchiveFile, Progress], Awaitable[Sequence[Any]]],
    *,
    source: str,
    progress: Progress,
) -> A | list[Any]:
    """One archive file's rows, or the REST API's for its span when it is not published."""
    got = await load(file)
    if got is not None:
        progress.archive_rows += len(got)
        progress.archives_done += 1
        return got
    if source == "archive":
        raise ArchiveNotFoundError(file.name)
    logger.info("%s not published: the REST API serves its span", file.name)
    child = Progress()
    rest = list(await rest_span(file, child))
    progress.pages_total += child.pages_total
    progress.pages_done += child.pages_done
    progress.weight += child.weight
    progress.archives_done += 1
    return rest


def _is_whole_block(block: KlineBlock, first: int, size: int) -> bool:
    """``_is_whole_run`` for a block: archive files are sorted and unique too."""
    return block.first == first and block.last == first + (block.count - 1) * size


def _is_whole_run(rows: list[Row], first: int, size: int) -> bool:
    """True when ``rows`` are exactly the candles ``first, first + size, ...``.

    Binance returns the rows of one response sorted and unique, so matching ends
    and count mean no gap and no duplicate inside.
    """
    return bool(rows) and rows[0][0] == first and rows[-1][0] == first + (len(rows) - 1) * size


def _report(
    found: list[Gap], gap: Gap, symbol: str, interval: str, *, trailing: bool = False
) -> None:
    found.append(gap)
    logger.warning(
        "%s %s: no klines from %d to %d%s",
        symbol,
        interval,
        gap.start,
        gap.end,
        " (end of range: not traded yet, or the candle has not opened)" if trailing else "",
    )


async def download_klines(
    client: _Requester,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.SPOT,
    page_size: int | None = None,
    max_concurrency: int = 8,
    progress: Progress | None = None,
    source: str = "auto",
    archive_url: str | None = None,
    cache_dir: str | Path | None = None,
) -> HistoryRows:
    """All klines (Binance's 12-field rows) with open time in ``[start, end)``, in order.

    ``start``/``end`` take epoch ms, datetimes, dates or ISO texts (UTC unless
    they say otherwise). The result's ``gaps`` lists stretches with no rows.
    ``source``, ``archive_url`` and ``cache_dir`` are as in ``open_kline_stream``:
    by default whole past months and days come from Binance's zip archives.
    Nothing is asked past the exchange's now; the rest of the range is a trailing gap.

    Raises:
        ValueError: before any request: a symbol outside Binance's alphabet, a time
            outside 2017..2100 (the message suggests the unit), ``start >= end``.
    """
    gaps: list[Gap] = []
    rows: list[Row] = []
    progress = progress if progress is not None else Progress()
    # Rows built from archives come fast and by the million: the cyclic collector
    # is paused until the archive part has been received (see archives.py).
    paused = source != "rest"
    if paused:
        collector_paused.begin()
    try:
        async with open_kline_stream(
            client,
            symbol,
            interval,
            start,
            end,
            market=market,
            page_size=page_size,
            max_concurrency=max_concurrency,
            progress=progress,
            gaps=gaps,
            source=source,
            archive_url=archive_url,
            cache_dir=cache_dir,
        ) as batches:
            async for batch in batches:
                rows.extend(batch)
                if paused and progress.archives_done >= progress.archives_total:
                    paused = False
                    collector_paused.end()
    finally:
        if paused:
            collector_paused.end()
    return HistoryRows(rows, gaps)


async def download_klines_to_file(
    client: _Requester,
    path: str | Path,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.SPOT,
    max_concurrency: int = 8,
    progress: Progress | None = None,
    source: str = "auto",
    archive_url: str | None = None,
    cache_dir: str | Path | None = None,
) -> int:
    """Append klines to a CSV file, resuming after the last row already in it.

    The file holds Binance's 12 columns with a header line and ``\\n`` line ends,
    as Binance's archives do. Writing happens in a worker thread, batch by batch,
    so memory stays flat. Whole archive files are written as the bytes they hold,
    never turned into Python rows (the bytes are the ones REST rows make), which
    makes an archive download to a file many times faster than one into memory.
    Returns the number of rows written by this call.

    What the file holds (market, symbol, interval) is kept beside it in
    ``<name>.meta.json``, written before the first row. Resuming checks it and the
    last row, and drops a torn last line (a crash, a full disk) first.

    Raises:
        ValueError: a bad argument; or the file holds other klines (another symbol,
            interval or market), or is not a klines CSV: nothing is written then.
    """
    target = Path(path)
    market, lo, hi = _check_kline_args(
        symbol, interval, start, end, market, source, max_concurrency
    )
    identity = _FileIdentity(market.value, symbol, interval)
    last = await trio.to_thread.run_sync(_prepare_csv, target, identity)
    if last is not None:
        lo = max(lo, _next_open(interval, last))
    if lo >= hi:
        return 0
    written = 0
    handle = await trio.to_thread.run_sync(_open_csv, target)
    try:
        async with _kline_batches(
            client,
            symbol,
            interval,
            lo,
            hi,
            market=market,
            page_size=None,
            max_concurrency=max_concurrency,
            progress=progress,
            gaps=None,
            source=source,
            archive_url=archive_url,
            cache_dir=cache_dir,
            blocks=True,
        ) as batches:
            async for batch in batches:
                await trio.to_thread.run_sync(_write_rows, handle, batch)
                written += len(batch)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(handle.close)
    return written


KLINE_COLUMNS: Final = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)


_HEADER: Final = (",".join(KLINE_COLUMNS) + "\n").encode("ascii")
_SIDECAR_SUFFIX: Final = ".meta.json"
_SIDECAR_FORMAT: Final = "aiocea-trio klines csv"
_LONGEST_ROW: Final = 4096  # a kline row is under 200 bytes; anything longer is not one


@attrs.frozen
class _FileIdentity:
    """What a klines CSV holds: recorded beside it, checked before appending."""

    market: str
    symbol: str
    interval: str

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} klines ({self.market})"


def sidecar_path(path: str | Path) -> Path:
    """Where ``download_klines_to_file`` records what ``path`` holds: ``<name>.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _write_sidecar(path: Path, identity: _FileIdentity) -> None:
    """Write the sidecar atomically: a crash leaves the old one or the new one, whole."""
    meta = sidecar_path(path)
    body = {"format": _SIDECAR_FORMAT, "version": 1, **attrs.asdict(identity)}
    tmp = meta.with_name(meta.name + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(body, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, meta)


def _read_sidecar(path: Path) -> _FileIdentity | None:
    meta = sidecar_path(path)
    try:
        text = meta.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        body = json.loads(text)
        if body.get("format") != _SIDECAR_FORMAT:
            raise ValueError("another format")
        return _FileIdentity(str(body["market"]), str(body["symbol"]), str(body["interval"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(
            f"{meta} does not say what {path.name} holds (not a file this library wrote): "
            "refusing to append; delete it if the CSV is yours"
        ) from None


def _rfind_newline(f: BinaryIO, before: int, *, limit: int | None = None) -> int:
    """Offset of the last ``\\n`` before offset ``before`` (-1: none within ``limit``)."""
    chunk = 1 << 16
    pos = before
    floor = 0 if limit is None else max(0, before - limit)
    while pos > floor:
        begin = max(floor, pos - chunk)
        f.seek(begin)
        at = f.read(pos - begin).rfind(b"\n")
        if at >= 0:
            return begin + at
        pos = begin
    return -1


def _row_times(line: bytes) -> tuple[int, int] | None:
    """(open time, close time) of a well-formed kline CSV row, else None."""
    fields = line.split(b",")
    if len(fields) != 12 or not all(fields[i].isdigit() for i in (0, 6, 8)):
        return None
    try:
        for i in (1, 2, 3, 4, 5, 7, 9, 10, 11):
            float(fields[i])
    except ValueError:
        return None
    return int(fields[0]), int(fields[6])


def _candle_fits(interval: str, open_time: int, close_time: int) -> bool:
    """True when a row with these times is a candle of ``interval``."""
    return _grid_start(interval, open_time) == open_time and (
        close_time == _next_open(interval, open_time) - 1
    )


def _interval_of(open_time: int, close_time: int) -> str:
    for name in [*_INTERVAL_MS, "1M"]:
        if _candle_fits(name, open_time, close_time):
            return name
    return f"{close_time - open_time + 1} ms"


def _prepare_csv(path: Path, identity: _FileIdentity) -> int | None:
    """Make ``path`` ready to append ``identity``'s klines; the last open time in it. Blocking.

    A new or empty file gets its sidecar first (before any row). An existing one is
    checked (the sidecar names the same market, symbol and interval; the first line is
    the header; the last complete line is a candle of this interval) before anything
    is changed, then a torn last line (no ``\\n``) is cut off. A file from a version
    that kept no sidecar is taken when its rows are this interval's candles (its
    symbol and market cannot be checked: a warning says so) and gets a sidecar.

    Raises:
        ValueError: the file holds something else; it is left as it is.
    """
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        _write_sidecar(path, identity)
        return None
    recorded = _read_sidecar(path)
    if recorded is not None and recorded != identity:
        raise ValueError(
            f"{path} holds {recorded} (per {sidecar_path(path).name}), not {identity}: "
            "refusing to append; choose another file"
        )
    with path.open("r+b") as f:
        head = f.read(len(_HEADER))
        if head != _HEADER and not (len(head) == size and _HEADER.startswith(head)):
            first = head.partition(b"\n")[0][:80]
            raise ValueError(
                f"{path} is not a klines CSV written by aiocea-trio (its first line is "
                f"{first!r}, not the header): refusing to append"
            )
        end = _rfind_newline(f, size) + 1  # just past the last complete line
        last: int | None = None
        if end > len(_HEADER):
            begin = _rfind_newline(f, end - 1, limit=_LONGEST_ROW) + 1
            f.seek(begin)
            line = f.read(end - 1 - begin)
            times = _row_times(line) if begin >= len(_HEADER) else None
            if times is None:
                raise ValueError(
                    f"{path}: its last complete line is not a kline row ({line[:80]!r}): "
                    "refusing to append; remove that line, or the file"
                )
            if not _candle_fits(identity.interval, *times):
                raise ValueError(
                    f"{path} holds {_interval_of(*times)} candles, not {identity}: "
                    "refusing to append; choose another file"
                )
            last = times[0]
        if end < size:
            logger.warning(
                "%s: dropped a torn last line (%d bytes, from an interrupted write)",
                path,
                size - end,
            )
            f.truncate(end)
    if recorded is None:
        if last is not None:
            logger.warning(
                "%s has no %s (written by an older version): its rows are %s candles, but "
                "the symbol and market cannot be checked; taking it as %s",
                path,
                sidecar_path(path).name,
                identity.interval,
                identity,
            )
        _write_sidecar(path, identity)
    return last


def _open_csv(path: Path) -> Any:
    new = not path.exists() or path.stat().st_size == 0
    handle = path.open("ab")
    if new:
        handle.write(_HEADER)
        handle.flush()
    return handle


def _write_rows(handle: Any, rows: list[Row] | KlineBlock) -> None:
    """Append a batch in one write, then flush: rows reach the file whole, in order."""
    if not rows:
        return
    if isinstance(rows, KlineBlock):
        data = rows.data
    else:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        data = text.getvalue().encode("utf-8")
    if data.count(b",") != 11 * data.count(b"\n") or b'"' in data or not data.endswith(b"\n"):
        # Never a malformed row in the file (REST rows were checked when fetched).
        raise ValueError("refusing to write klines that are not plain 12-column rows")
    handle.write(data)
    handle.flush()


async def download_agg_trades(
    client: _Requester,
    symbol: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.SPOT,
    max_concurrency: int = 4,
    progress: Progress | None = None,
    source: str = "auto",
    archive_url: str | None = None,
    cache_dir: str | Path | None = None,
) -> HistoryRows:
    """Aggregate trades with time in ``[start, end)``, in order, each once.

    Whole past months and days come from Binance's aggTrades archives (as for
    klines: ``source``, ``archive_url``, ``cache_dir``). For the rest, Binance
    allows at most an hour per time-range query, so the range is cut in hours
    fetched concurrently; within an hour, pages follow by ``fromId``.

    Raises:
        ValueError: as ``download_klines``, before any request.
    """
    market = Market(market)
    lo, hi = _time_range(symbol, start, end)
    _check_count("max_concurrency", max_concurrency)
    path = _AGG_PATHS[market]
    hi = max(lo, _fetch_end(client, hi))  # no trade can be later than now
    plan = _archive_plan(
        client,
        source,
        archive_url,
        lambda today: plan_agg_trade_archives(market, symbol, lo, hi, today),
        hi,
        f"{symbol} aggTrades",
    )
    rest_from = lo if plan.rest_from is None else plan.rest_from
    files = plan.files
    # REST for a partial first day before the first archive file, and for the tail, an
    # hour a slice, computed when fetched (never listed up front).
    head_end = files[0].start if files else lo
    head = max(0, -(-(head_end - lo) // _HOUR_MS))
    tail = max(0, -(-(hi - rest_from) // _HOUR_MS))

    def hour_slice(index: int) -> tuple[int, int]:
        if index < head:
            t = lo + index * _HOUR_MS
            return t, min(t + _HOUR_MS, head_end)
        t = rest_from + (index - head) * _HOUR_MS
        return t, min(t + _HOUR_MS, hi)

    progress = progress if progress is not None else Progress()
    progress.pages_total += head + tail
    progress.archives_total += len(files)
    weight = find(market, "GET", path).request_weight({"limit": "1000"})
    cache = Path(cache_dir) if cache_dir is not None else None

    async def load(file: ArchiveFile) -> list[dict[str, Any]] | None:
        return await load_agg_trades(plan.http, plan.root, file, cache_dir=cache)

    async def rest_span(file: ArchiveFile, child: Progress) -> list[dict[str, Any]]:
        return await download_agg_trades(
            client, symbol, file.start, file.end, market=market,
            max_concurrency=max_concurrency, progress=child, source="rest",
        )

    async def fetch_archive_file(file: ArchiveFile) -> list[dict[str, Any]]:
        return await _archive_or_rest(file, load, rest_span, source=source, progress=progress)

    async def fetch(index: int) -> list[dict[str, Any]]:
        # Jobs in time order: the head's hours, the archive files, the tail's hours.
        if head <= index < head + len(files):
            return await fetch_archive_file(files[index - head])
        s_lo, s_hi = hour_slice(index if index < head else index - len(files))
        params: dict[str, object] = {
            "symbol": symbol,
            "startTime": s_lo,
            "endTime": s_hi - 1,
            "limit": 1000,
        }
        out: list[dict[str, Any]] = []
        while True:
            page: list[dict[str, Any]] = await client.request("GET", path, params)
            progress.weight += weight
            out.extend(t for t in page if s_lo <= int(t["T"]) < s_hi)
            if len(page) < 1000 or int(page[-1]["T"]) >= s_hi:
                break
            params = {"symbol": symbol, "fromId": int(page[-1]["a"]) + 1, "limit": 1000}
        progress.pages_done += 1
        return out

    rows: list[Any] = []
    send, receive = trio.open_memory_channel[list[dict[str, Any]]](0)
    with collapse_groups():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(
                    _ordered_pages,
                    fetch,
                    len(files) + head + tail,
                    send,
                    max_concurrency=max_concurrency,
                )
            )
            await _collect_trades(receive, rows, progress)
    return HistoryRows(rows)


async def _collect_trades(
    receive: trio.MemoryReceiveChannel[list[dict[str, Any]]],
    rows: list[Any],
    progress: Progress,
) -> None:
    """Keep each aggregate trade once, in id order, across hour boundaries."""
    last_id = -1
    with receive:
        async for batch in receive:
            for trade in batch:
                if int(trade["a"]) > last_id:
                    rows.append(trade)
                    last_id = int(trade["a"])
            progress.rows = len(rows)


async def download_funding_rates(
    client: _Requester,
    symbol: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.USDM,
    progress: Progress | None = None,
) -> HistoryRows:
    """Funding-rate history with ``fundingTime`` in ``[start, end)``, in order.

    Funding happens every few hours, so a page of 1000 covers most of a year:
    pages follow one another by time.

    Raises:
        ValueError: as ``download_klines``, before any request.
    """
    market = Market(market)
    if market not in _FUNDING_PATHS:
        raise ValueError("funding rates exist on the futures markets only (usdm, coinm)")
    lo, hi = _time_range(symbol, start, end)
    hi = _fetch_end(client, hi)  # no funding has happened later than now
    path = _FUNDING_PATHS[market]
    progress = progress if progress is not None else Progress()
    rows: list[Any] = []
    cursor = lo
    while cursor < hi:
        page: list[dict[str, Any]] = await client.request(
            "GET", path, {"symbol": symbol, "startTime": cursor, "endTime": hi - 1, "limit": 1000}
        )
        progress.pages_done += 1
        progress.weight += find(market, "GET", path).request_weight({"limit": "1000"})
        fresh = [r for r in page if cursor <= int(r["fundingTime"]) < hi]
        rows.extend(fresh)
        progress.rows = len(rows)
        if len(page) < 1000 or not fresh:
            break
        cursor = int(fresh[-1]["fundingTime"]) + 1
    return HistoryRows(rows)
