"""Bulk history: klines, aggregate trades and funding rates over any time range.

Pages are fetched concurrently, each inside the client's rate limiter, and
handed on strictly in time order. The page size is the one that buys the most
rows per unit of request weight (on futures the largest page is not the
cheapest per row). Adjacent pages are checked for continuity: a real gap in
the exchange's data (no trading, an outage, a symbol not yet listed) is
reported, never filled in, and no row is ever duplicated.

The parts: ``times`` (times, ranges, the kline grid), ``source`` (what a client
must offer, the options, and the archive-or-REST planner every download uses),
``klines`` (the kline streams and ``download_klines``), ``csv_file`` (CSV files
that resume) and ``trades`` (aggregate trades and funding rates).
"""

from __future__ import annotations

from .csv_file import KLINE_COLUMNS, download_klines_to_file, sidecar_path
from .klines import (
    Row,
    best_kline_page_size,
    download_klines,
    open_kline_block_stream,
    open_kline_stream,
)
from .source import (
    ArchiveClient,
    ClockedClient,
    Gap,
    HistoryClient,
    HistoryOptions,
    HistoryRows,
    Progress,
)
from .times import EARLIEST_MS, LATEST_MS, HistoryQuery, TimeLike, check_time, interval_ms, to_ms
from .trades import download_agg_trades, download_funding_rates

__all__ = [
    "EARLIEST_MS",
    "KLINE_COLUMNS",
    "LATEST_MS",
    "ArchiveClient",
    "ClockedClient",
    "Gap",
    "HistoryClient",
    "HistoryOptions",
    "HistoryQuery",
    "HistoryRows",
    "Progress",
    "Row",
    "TimeLike",
    "best_kline_page_size",
    "download_agg_trades",
    "download_funding_rates",
    "download_klines",
    "download_klines_to_file",
    "interval_ms",
    "open_kline_block_stream",
    "open_kline_stream",
    "sidecar_path",
    "to_ms",
]

#: ``check_time`` under the name the CLI imports it by.
_time_arg = check_time
