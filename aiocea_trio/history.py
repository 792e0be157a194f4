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
import contextlib
import csv
import datetime as dt
import functools
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence, Sized
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import attrs
import trio

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
from .markets import Market
from .weights import request_weight

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
        weight = request_weight(market.value, "GET", path, {"limit": str(limit)})
        return limit / max(weight, 1)

    return max(range(1, _MAX_KLINE_LIMIT[market] + 1), key=lambda n: (rows_per_weight(n), n))


def _kline_pages(interval: str, start: int, end: int, page: int) -> list[tuple[int, int, int]]:
    """``(startTime, endTime, limit)`` per page covering open times in ``[start, end)``."""
    pages: list[tuple[int, int, int]] = []
    size = interval_ms(interval)
    first = _grid_start(interval, start)
    if size is not None:
        count = max(0, -(-(end - first) // size))
        for i in range(0, count, page):
            n = min(page, count - i)
            lo = first + i * size
            pages.append((lo, min(lo + n * size, end) - 1, n))
        return pages
    opens: list[int] = []
    t = first
    while t < end:
        opens.append(t)
        t = _next_open(interval, t)
    for i in range(0, len(opens), page):
        chunk = opens[i : i + page]
        pages.append((chunk[0], min(_next_open(interval, chunk[-1]), end) - 1, len(chunk)))
    return pages


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

    with send:
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
    market = Market(market)
    if not symbol:
        raise ValueError("symbol must not be empty")
    lo, hi = to_ms(start), to_ms(end)
    if lo > hi:
        raise ValueError(f"start ({lo}) is after end ({hi})")
    interval_ms(interval)  # validates
    limit = page_size or best_kline_page_size(market)
    if not 1 <= limit <= _MAX_KLINE_LIMIT[market]:
        raise ValueError(f"page_size must be in 1..{_MAX_KLINE_LIMIT[market]}; got {limit}")
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    plan = _archive_plan(
        client,
        source,
        archive_url,
        lambda today: plan_kline_archives(market, symbol, interval, lo, hi, today),
        hi,
        f"{symbol} {interval}",
    )
    http, root, files, rest_from = plan.http, plan.root, plan.files, plan.rest_from
    if market is Market.COINM:
        # COIN-M refuses a kline query spanning more than 200 days (-1127).
        size = interval_ms(interval)
        limit = min(limit, _COINM_MAX_SPAN_MS // size if size else _COINM_MAX_MONTHS)
    pages = _kline_pages(interval, lo if rest_from is None else rest_from, hi, limit)
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
        rows: list[Row] = await client.request("GET", path, params)
        progress.weight += request_weight(market.value, "GET", path, {"limit": str(n)})
        progress.pages_done += 1
        return [r for r in rows if page_start <= int(r[0]) <= page_end and int(r[0]) < hi]

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
            if expected < hi and (pages or files):
                _report(found, Gap(expected, hi), symbol, interval, trailing=True)

    with _one_error():
        async with trio.open_nursery() as nursery:
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


@contextlib.contextmanager
def _one_error() -> Iterator[None]:
    """Concurrency is internal here: a lone error comes out as itself, not in a group.

    Several simultaneous errors stay grouped, so that none is lost.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


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
    """
    target = Path(path)
    lo = to_ms(start)
    last = await trio.to_thread.run_sync(_last_open_time, target)
    if last is not None:
        lo = max(lo, _next_open(interval, last))
    hi = to_ms(end)
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


def _last_open_time(path: Path) -> int | None:
    """The open time of the last data row of a CSV, reading only its tail."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read().decode().strip().splitlines()
    for line in reversed(tail):
        head = line.split(",", 1)[0]
        if head.isdigit():
            return int(head)
    return None


def _open_csv(path: Path) -> Any:
    new = not path.exists() or path.stat().st_size == 0
    handle = path.open("ab")
    if new:
        handle.write((",".join(KLINE_COLUMNS) + "\n").encode("ascii"))
    return handle


def _write_rows(handle: Any, rows: list[Row] | KlineBlock) -> None:
    if isinstance(rows, KlineBlock):
        handle.write(rows.data)
    else:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        handle.write(text.getvalue().encode("utf-8"))
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
    """
    market = Market(market)
    lo, hi = to_ms(start), to_ms(end)
    if lo > hi:
        raise ValueError(f"start ({lo}) is after end ({hi})")
    path = _AGG_PATHS[market]
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
    # REST for a partial first day before the first archive file, and for the tail.
    head_end = files[0].start if files else lo
    slices = [(t, min(t + _HOUR_MS, head_end)) for t in range(lo, head_end, _HOUR_MS)]
    slices += [(t, min(t + _HOUR_MS, hi)) for t in range(rest_from, hi, _HOUR_MS)]
    progress = progress if progress is not None else Progress()
    progress.pages_total += len(slices)
    progress.archives_total += len(files)
    weight = request_weight(market.value, "GET", path, {"limit": "1000"})
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

    head = sum(1 for s_lo, _ in slices if s_lo < head_end)

    async def fetch(index: int) -> list[dict[str, Any]]:
        # Jobs in time order: the head's hours, the archive files, the tail's hours.
        if head <= index < head + len(files):
            return await fetch_archive_file(files[index - head])
        s_lo, s_hi = slices[index if index < head else index - len(files)]
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
    with _one_error():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(
                    _ordered_pages,
                    fetch,
                    len(files) + len(slices),
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
    """
    market = Market(market)
    if market not in _FUNDING_PATHS:
        raise ValueError("funding rates exist on the futures markets only (usdm, coinm)")
    lo, hi = to_ms(start), to_ms(end)
    path = _FUNDING_PATHS[market]
    progress = progress if progress is not None else Progress()
    rows: list[Any] = []
    cursor = lo
    while cursor < hi:
        page: list[dict[str, Any]] = await client.request(
            "GET", path, {"symbol": symbol, "startTime": cursor, "endTime": hi - 1, "limit": 1000}
        )
        progress.pages_done += 1
        progress.weight += request_weight(market.value, "GET", path, {"limit": "1000"})
        fresh = [r for r in page if cursor <= int(r["fundingTime"]) < hi]
        rows.extend(fresh)
        progress.rows = len(rows)
        if len(page) < 1000 or not fresh:
            break
        cursor = int(fresh[-1]["fundingTime"]) + 1
    return HistoryRows(rows)
