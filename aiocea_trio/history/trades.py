"""Aggregate trades and funding rates over any range."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import trio

from .._groups import collapse_groups
from ..archives import ArchiveFile, ArchiveHost, plan_agg_trade_archives
from ..endpoints import AGG_TRADES, FUNDING_RATE
from ..markets import Market
from .source import (
    ArchivePlan,
    HistoryClient,
    HistoryOptions,
    HistoryRows,
    Progress,
    Source,
    fetch_end,
)
from .times import HistoryQuery, TimeLike

__all__ = ["download_agg_trades", "download_funding_rates"]

Trade = dict[str, Any]
_HOUR_MS: Final = 3_600_000
_PAGE: Final = 1000  # rows per request of both endpoints, the most they give


class _Hours:
    """``[start, end)`` cut in hours (Binance's longest time range per aggTrades query),
    computed when asked, never listed."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.count = max(0, -(-(end - start) // _HOUR_MS))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        t = self.start + index * _HOUR_MS
        return t, min(t + _HOUR_MS, self.end)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return (self[i] for i in range(self.count))


async def download_agg_trades(
    client: HistoryClient,
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
    pause_gc: bool = True,
) -> HistoryRows:
    """Aggregate trades with time in ``[start, end)``, in order, each once.

    Whole past months and days come from Binance's aggTrades archives (as for
    klines: ``source``, ``archive_url``, ``cache_dir``, ``pause_gc``). For the rest,
    Binance allows at most an hour per time-range query, so the range is cut in hours
    fetched concurrently; within an hour, pages follow by ``fromId``.

    Raises:
        ValueError: as ``download_klines``, before any request.
    """
    query = HistoryQuery.check(market, symbol, start, end)
    options = HistoryOptions(source, max_concurrency, None, archive_url, cache_dir, pause_gc)
    return await _agg_trades(
        client, query, options, progress if progress is not None else Progress()
    )


async def _agg_trades(
    client: HistoryClient, query: HistoryQuery, options: HistoryOptions, progress: Progress
) -> HistoryRows:
    """``download_agg_trades`` for a query and options already checked."""
    lo, market, symbol = query.start, query.market, query.symbol
    hi = max(lo, fetch_end(client, query.end))  # no trade can be later than now
    archives = ArchivePlan.make(
        client,
        options,
        lambda today: plan_agg_trade_archives(market, symbol, lo, hi, today),
        hi,
        f"{symbol} aggTrades",
    )
    files = archives.files

    async def hour(span: tuple[int, int]) -> list[Trade]:
        return await _trade_hour(client, query, span, progress)

    async def fallback(file: ArchiveFile, child: Progress) -> list[Trade]:
        span = query.over(file.start, file.end)
        return list(await _agg_trades(client, span, options.rest_only(), child))

    # REST for a partial first day before the first archive file, and for the tail.
    source = Source(
        archives,
        head=_Hours(lo, files[0].start if files else lo),
        tail=_Hours(archives.rest_start(lo), hi),
        page=hour,
        load=ArchiveHost.load_agg_trades,
        fallback=fallback,
        options=options,
        progress=progress,
    )
    rows: list[Any] = []
    send, receive = trio.open_memory_channel[list[Trade]](0)
    with collapse_groups():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(source.send_in_order, send, options.max_concurrency)
            await _collect_trades(receive, rows, progress)
    return HistoryRows(rows, kind="agg_trades")


async def _trade_hour(
    client: HistoryClient, query: HistoryQuery, span: tuple[int, int], progress: Progress
) -> list[Trade]:
    """The trades of one hour (or less): pages by time, then by ``fromId``."""
    endpoint = AGG_TRADES[query.market]
    weight = endpoint.request_weight({"limit": str(_PAGE)})
    s_lo, s_hi = span
    params: dict[str, object] = {
        "symbol": query.symbol,
        "startTime": s_lo,
        "endTime": s_hi - 1,
        "limit": _PAGE,
    }
    out: list[Trade] = []
    while True:
        page: list[Trade] = await client.request("GET", endpoint.path, params)
        progress.weight += weight
        out.extend(t for t in page if s_lo <= int(t["T"]) < s_hi)
        if len(page) < _PAGE or int(page[-1]["T"]) >= s_hi:
            return out
        params = {"symbol": query.symbol, "fromId": int(page[-1]["a"]) + 1, "limit": _PAGE}


async def _collect_trades(
    receive: trio.MemoryReceiveChannel[list[Trade]],
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
    client: HistoryClient,
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
    if market not in FUNDING_RATE:
        raise ValueError("funding rates exist on the futures markets only (usdm, coinm)")
    endpoint = FUNDING_RATE[market]
    query = HistoryQuery.check(market, symbol, start, end)
    lo, hi = query.start, fetch_end(client, query.end)  # no funding has happened later than now
    progress = progress if progress is not None else Progress()
    rows: list[Any] = []
    cursor = lo
    while cursor < hi:
        page: list[dict[str, Any]] = await client.request(
            "GET",
            endpoint.path,
            {"symbol": symbol, "startTime": cursor, "endTime": hi - 1, "limit": _PAGE},
        )
        progress.pages_done += 1
        progress.weight += endpoint.request_weight({"limit": str(_PAGE)})
        fresh = [r for r in page if cursor <= int(r["fundingTime"]) < hi]
        rows.extend(fresh)
        progress.rows = len(rows)
        if len(page) < _PAGE or not fresh:
            break
        cursor = int(fresh[-1]["fundingTime"]) + 1
    return HistoryRows(rows, kind="funding_rates")
