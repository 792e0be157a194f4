"""Klines over any range: the stream of batches, its continuity check, and rows in memory.

Pages are fetched concurrently, each inside the client's rate limiter, and handed on
strictly in time order. Adjacent batches are checked for continuity: a real gap in
the exchange's data is reported, never filled in, and no row is ever duplicated.
"""

from __future__ import annotations

import abc
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal, overload

import trio

from .._groups import open_nursery
from ..archives import ArchiveFile, ArchiveHost, KlineBlock, collector_pause, plan_kline_archives
from ..endpoints import KLINES
from ..errors import BinanceResponseError
from ..markets import Market
from .source import (
    CLOCK_SLACK_MS,
    ArchivePlan,
    Gap,
    HistoryClient,
    HistoryOptions,
    HistoryRows,
    Progress,
    Source,
    server_now,
)
from .times import HistoryQuery, KlinePages, TimeLike, grid_start, interval_ms, next_open

__all__ = [
    "Row",
    "best_kline_page_size",
    "download_klines",
    "open_kline_block_stream",
    "open_kline_stream",
]

logger = logging.getLogger("aiocea_trio.history")

#: One kline: Binance's 12 fields (ints for times and counts, strings for the rest).
Row = list[Any]


class KlineColumns(abc.ABC):
    """An archive file's klines already in columns (``frames.py`` reads a file with pyarrow
    in the worker that unzips it): continuity needs only the open times.

    ``first``/``last`` are the open times of the first and last row, ``count`` the rows.
    """

    first: int
    last: int
    count: int

    def __len__(self) -> int:
        return self.count

    @abc.abstractmethod
    def open_times(self) -> Sequence[int]:
        """Every row's open time in ms (only asked for a file that is not one whole run)."""

    @abc.abstractmethod
    def kept(self, keep: Sequence[bool]) -> KlineColumns | list[Row]:
        """These columns with only the rows whose ``keep`` is true (no rows: a list)."""


#: What a kline stream sends: rows, whole archive files as CSV bytes (a block stream), or
#: whole archive files already in columns (a column stream).
KlineBatch = list[Row] | KlineBlock | KlineColumns
#: What a block stream sends (``open_kline_block_stream``, the CSV file writer).
BlockBatch = list[Row] | KlineBlock
#: How a column stream loads an archive file (None: not published).
ColumnLoader = Callable[[ArchiveHost, ArchiveFile], Awaitable[list[Row] | KlineColumns | None]]
_Receive = trio.MemoryReceiveChannel

_COINM_MAX_SPAN_MS: Final = 200 * 86_400_000
_COINM_MAX_MONTHS: Final = 6  # six months never exceed 200 days


@functools.cache

def _max_page(market: Market) -> int:
    """The largest kline page the market serves (the registry's limit rule)."""
    rule = KLINES[market].limit
    assert rule is not None  # the registry gives every klines endpoint its limit
    return rule.largest

def best_kline_page_size(market: Market | str) -> int:
    """The ``limit`` that buys the most kline rows per unit of weight (ties: the larger)."""
    market = Market(market)
    endpoint = KLINES[market]

    def rows_per_weight(limit: int) -> float:
        return limit / max(endpoint.request_weight({"limit": str(limit)}), 1)

    return max(range(1, _max_page(market) + 1), key=lambda n: (rows_per_weight(n), n))


def checked_kline_args(
    market: Market | str,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    options: Callable[[], HistoryOptions],
) -> tuple[HistoryQuery, HistoryOptions]:
    """Every check of a kline download, before any request or file write, in the order
    market, symbol, times, range, interval, then the options (``options()`` builds them)."""
    query = HistoryQuery.check(market, symbol, start, end, interval)
    checked = options()
    _page_limit(query, checked.page_size)
    return query, checked


def _page_limit(query: HistoryQuery, page_size: int | None) -> int:
    """Rows per request: ``page_size`` checked against the market, or the cheapest per row."""
    market = query.market
    limit = best_kline_page_size(market) if page_size is None else page_size
    if not 1 <= limit <= _max_page(market):
        raise ValueError(f"page_size must be in 1..{_max_page(market)}; got {limit}")
    if market is Market.COINM:
        # COIN-M refuses a kline query spanning more than 200 days (-1127).
        size = interval_ms(query.interval)
        limit = min(limit, _COINM_MAX_SPAN_MS // size if size else _COINM_MAX_MONTHS)
    return limit


def _kline_fetch_end(client: HistoryClient, interval: str, hi: int) -> int:
    """``hi``, or the close of the candle open now when ``hi`` is later: no row can be there."""
    now = server_now(client)
    if now is None:
        return hi
    return min(hi, grid_start(interval, now + CLOCK_SLACK_MS + 1))


def _check_kline_page(rows: object, market: Market, path: str) -> list[Row]:
    """A klines answer is a list of 12-field lists; anything else is the server's fault."""
    if isinstance(rows, list) and all(isinstance(r, list) and len(r) == 12 for r in rows):
        return rows
    excerpt = " ".join(repr(rows)[:200].split())
    raise BinanceResponseError(200, excerpt, market=market.value, method="GET", path=path)


def _kline_source(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress,
    *,
    blocks: bool,
    load: ColumnLoader | None = None,
) -> Source[tuple[int, int, int], KlineBatch]:
    """Archive files, then REST pages, for ``query``'s klines (with ``blocks``, a whole
    archive file comes as a ``KlineBlock``; with ``load``, as that loader makes it)."""
    limit = _page_limit(query, options.page_size)
    # Nothing is asked past the candle open now: a future ``end`` costs no weight.
    stop = _kline_fetch_end(client, query.interval, query.end)
    symbol, interval, market = query.symbol, query.interval, query.market
    archives = ArchivePlan.make(
        client,
        options,
        lambda today: plan_kline_archives(
            market, symbol, interval, query.start, max(query.start, stop), today
        ),
        stop,
        f"{symbol} {interval}",
    )
    endpoint = KLINES[market]

    async def page(span: tuple[int, int, int]) -> list[Row]:
        page_start, page_end, n = span
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": page_start,
            "endTime": page_end,
            "limit": n,
        }
        answer = await client.request("GET", endpoint.path, params)
        progress.weight += endpoint.request_weight({"limit": str(n)})
        rows = _check_kline_page(answer, market, endpoint.path)
        return [r for r in rows if page_start <= int(r[0]) <= page_end and int(r[0]) < stop]

    async def fallback(file: ArchiveFile, child: Progress) -> list[Row]:
        span = query.over(file.start, file.end)
        return list(await _download(client, span, options.rest_only(), child))

    pages = KlinePages(interval, archives.rest_start(query.start), stop, limit)
    return Source(
        archives,
        tail=pages,
        page=page,
        load=load or (ArchiveHost.load_kline_block if blocks else ArchiveHost.load_klines),
        fallback=fallback,
        options=options,
        progress=progress,
    )


class _Continuity:
    """Continuity across a whole kline stream: gaps reported (and logged), duplicates dropped."""

    def __init__(
        self, query: HistoryQuery, progress: Progress, gaps: list[Gap], pause_gc: bool
    ) -> None:
        self.query, self.progress, self.gaps, self.pause_gc = query, progress, gaps, pause_gc
        self.expected = grid_start(query.interval, query.start)
        self.size = interval_ms(query.interval)

    async def run(
        self, receive: _Receive[KlineBatch], send: trio.MemorySendChannel[KlineBatch]
    ) -> None:
        with send, receive:
            async for batch in receive:
                await send.send(await self._checked(batch))
            if self.expected < self.query.end:
                self._report(Gap(self.expected, self.query.end), trailing=True)

    async def _checked(self, batch: KlineBatch) -> KlineBatch:
        size = self.size
        if isinstance(batch, KlineBlock | KlineColumns):
            if size is not None and _is_whole_block(batch, self.expected, size):
                self.expected = batch.last + size
                self.progress.rows += batch.count
                return batch
            if isinstance(batch, KlineColumns):
                return batch.kept(self._kept(batch.open_times()))
            rows = await trio.to_thread.run_sync(
                functools.partial(batch.rows, pause_gc=self.pause_gc)
            )
        else:
            rows = batch
        if size is not None and _is_whole_run(rows, self.expected, size):
            # The usual case, checked in O(1): the batch starts where the last one
            # ended and spans exactly its length (rows come sorted).
            self.expected = rows[-1][0] + size
            self.progress.rows += len(rows)
            return rows
        return self._deduplicated(rows)

    def _deduplicated(self, rows: list[Row]) -> list[Row]:
        keep = self._kept(int(row[0]) for row in rows)
        return [row for row, kept in zip(rows, keep, strict=True) if kept]

    def _kept(self, open_times: Iterable[int]) -> list[bool]:
        """Which rows to keep (sorted open times): gaps reported, duplicates dropped."""
        keep: list[bool] = []
        interval, expected = self.query.interval, self.expected
        for open_time in open_times:
            if open_time < expected:
                keep.append(False)  # a duplicate of a row already sent
                continue
            if open_time > expected:
                self._report(Gap(expected, open_time))
            keep.append(True)
            expected = next_open(interval, open_time)
        self.expected = expected
        self.progress.rows += sum(keep)
        return keep

    def _report(self, gap: Gap, *, trailing: bool = False) -> None:
        self.gaps.append(gap)
        logger.warning(
            "%s %s: no klines from %d to %d%s",
            self.query.symbol,
            self.query.interval,
            gap.start,
            gap.end,
            " (end of range: not traded yet, or the candle has not opened)" if trailing else "",
        )


def _is_whole_block(block: KlineBlock | KlineColumns, first: int, size: int) -> bool:
    """``_is_whole_run`` for a block: archive files are sorted and unique too."""
    return block.first == first and block.last == first + (block.count - 1) * size


def _is_whole_run(rows: list[Row], first: int, size: int) -> bool:
    """True when ``rows`` are exactly the candles ``first, first + size, ...``.

    Binance returns the rows of one response sorted and unique, so matching ends
    and count mean no gap and no duplicate inside.
    """
    return bool(rows) and rows[0][0] == first and rows[-1][0] == first + (len(rows) - 1) * size


@asynccontextmanager
async def _batches(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None,
    gaps: list[Gap] | None,
    blocks: bool,
    load: ColumnLoader | None = None,
) -> AsyncIterator[_Receive[KlineBatch]]:
    """``kline_stream``."""
    progress = progress if progress is not None else Progress()
    source = _kline_source(client, query, options, progress, blocks=blocks, load=load)
    continuity = _Continuity(query, progress, gaps if gaps is not None else [], options.pause_gc)
    send, receive = trio.open_memory_channel[KlineBatch](0)
    checked_send, checked_receive = trio.open_memory_channel[KlineBatch](0)
    # The caller's block runs inside: open_nursery gives back its exception as it was.
    async with open_nursery() as nursery:
        nursery.start_soon(source.send_in_order, send, options.max_concurrency)
        nursery.start_soon(continuity.run, receive, checked_send)
        with checked_receive:
            yield checked_receive
        nursery.cancel_scope.cancel()


@overload
def kline_stream(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None = ...,
    gaps: list[Gap] | None = ...,
    *,
    blocks: Literal[False],
) -> AbstractAsyncContextManager[_Receive[list[Row]]]: ...
@overload
def kline_stream(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None = ...,
    gaps: list[Gap] | None = ...,
    *,
    blocks: Literal[True],
) -> AbstractAsyncContextManager[_Receive[BlockBatch]]: ...
def kline_stream(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None = None,
    gaps: list[Gap] | None = None,
    *,
    blocks: bool,
) -> AbstractAsyncContextManager[_Receive[KlineBatch]]:
    """The checked stream of ``query``'s klines, for a query and options already checked.

    Without ``blocks`` every batch is a list of rows (archive files are parsed).
    """
    return _batches(client, query, options, progress, gaps, blocks)


def kline_column_stream(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None,
    gaps: list[Gap] | None,
    load: ColumnLoader,
) -> AbstractAsyncContextManager[_Receive[KlineBatch]]:
    """``kline_stream`` whose archive files ``load`` reads (into columns, in the fetch job:
    parsing overlaps the later files' downloads), checked for continuity the same way."""
    return _batches(client, query, options, progress, gaps, True, load)


def kline_capacity(client: HistoryClient, query: HistoryQuery) -> int:
    """How many candles ``query`` can hold up to the exchange's now: what a frame preallocates
    (a gap leaves fewer)."""
    first = grid_start(query.interval, query.start)
    stop = _kline_fetch_end(client, query.interval, query.end)
    size = interval_ms(query.interval)
    if stop <= first:
        return 0
    if size is not None:
        return -(-(stop - first) // size)
    count, t = 0, first
    while t < stop:
        count, t = count + 1, next_open(query.interval, t)
    return count


def open_kline_stream(
    client: HistoryClient,
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
    pause_gc: bool = True,
) -> AbstractAsyncContextManager[_Receive[list[Row]]]:
    """Stream klines with open time in ``[start, end)`` as batches of rows, in order.

    ``async with open_kline_stream(...) as batches: async for rows in batches:``.
    Leaving the block early cancels the fetches still running. Gaps found in the
    exchange's data are appended to ``gaps`` (and logged) as they are found. The
    arguments are checked when it is called, before any request.

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
        pause_gc: pause the cyclic garbage collector while an archive file's rows are
            built (they hold no cycles); ``False`` leaves the collector alone.
    """
    query, options = checked_kline_args(
        market, symbol, interval, start, end,
        lambda: HistoryOptions(
            source, max_concurrency, page_size, archive_url, cache_dir, pause_gc
        ),
    )
    return kline_stream(client, query, options, progress, gaps, blocks=False)


def open_kline_block_stream(
    client: HistoryClient,
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
    pause_gc: bool = True,
) -> AbstractAsyncContextManager[_Receive[BlockBatch]]:
    """``open_kline_stream`` for writers: whole archive files come as ``KlineBlock``\\ s.

    A block is an archive file's CSV bytes (milliseconds, 12 columns, ``\\n`` line
    ends, no header: what ``download_klines_to_file`` writes for the same rows), never
    turned into Python rows; its ``first``/``last`` open times and ``count`` have been
    checked for continuity like rows. Other batches are lists of rows, as in
    ``open_kline_stream``. The arguments are checked when it is called, so a writer can
    call it before creating its file: nothing is requested until the block is entered.
    """
    query, options = checked_kline_args(
        market, symbol, interval, start, end,
        lambda: HistoryOptions(
            source, max_concurrency, page_size, archive_url, cache_dir, pause_gc
        ),
    )
    return kline_stream(client, query, options, progress, gaps, blocks=True)


async def _download(
    client: HistoryClient, query: HistoryQuery, options: HistoryOptions, progress: Progress
) -> HistoryRows:
    """``download_klines`` for a query and options already checked."""
    gaps: list[Gap] = []
    rows: list[Row] = []
    async with kline_stream(client, query, options, progress, gaps, blocks=False) as batches:
        # Rows built from archives come fast and by the million: the cyclic collector
        # is paused until the archive part has been received (see archives.py).
        with collector_pause(options.pause_gc and options.source != "rest"):
            async for batch in batches:
                rows.extend(batch)
                if progress.archives_done >= progress.archives_total:
                    break
        async for batch in batches:
            rows.extend(batch)
    return HistoryRows(rows, gaps, kind="klines")


async def download_klines(
    client: HistoryClient,
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
    pause_gc: bool = True,
) -> HistoryRows:
    """All klines (Binance's 12-field rows) with open time in ``[start, end)``, in order.

    ``start``/``end`` take epoch ms, datetimes, dates or ISO texts (UTC unless
    they say otherwise). The result's ``gaps`` lists stretches with no rows.
    ``source``, ``archive_url``, ``cache_dir`` and ``pause_gc`` are as in
    ``open_kline_stream``: by default whole past months and days come from Binance's
    zip archives, and the cyclic garbage collector is paused until they have arrived.
    Nothing is asked past the exchange's now; the rest of the range is a trailing gap.

    Raises:
        ValueError: before any request: a symbol outside Binance's alphabet, a time
            outside 2017..2100 (the message suggests the unit), ``start >= end``.
    """
    query, options = checked_kline_args(
        market, symbol, interval, start, end,
        lambda: HistoryOptions(
            source, max_concurrency, page_size, archive_url, cache_dir, pause_gc
        ),
    )
    return await _download(client, query, options, progress if progress is not None else Progress())
