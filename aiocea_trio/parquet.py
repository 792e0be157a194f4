"""Klines into a Parquet file, at archive speed and in flat memory (the ``parquet`` extra).

The columns are typed as in ``aiocea_trio.frames`` (UTC ms timestamps, int64 trade
counts, float64 or exact decimal prices), or the first files' all-text layout with
``string_columns=True``. Batches come from ``open_kline_batch_stream``: a whole archive
file's CSV goes to Arrow through pyarrow's CSV reader (C++, outside the GIL), never
through Python rows. Row groups are written as they fill, so memory stays bounded
however long the range.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from .frames import _require, kline_schema, open_kline_batch_stream
from .history import HistoryClient, Progress, TimeLike
from .markets import Market

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["download_klines_to_parquet"]

#: Rows per Parquet row group: about 25 MB of Arrow data in memory at most.
ROW_GROUP_ROWS: Final = 1 << 18


def _pyarrow() -> Any:
    pyarrow = _require("pyarrow", "writing Parquet")
    _require("pyarrow.parquet", "writing Parquet")
    return pyarrow


def _write(writer: pq.ParquetWriter, tables: list[pa.Table], *, final: bool) -> list[pa.Table]:
    """Write every whole row group in ``tables`` (all of them when ``final``); return the rest.

    Row groups are cut at fixed row counts, whatever the batches were, so the same
    rows make the same file from archives as from the REST API.
    """
    table = _pyarrow().concat_tables(tables)
    whole = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP_ROWS
    if whole:
        # Contiguous columns: pages, like row groups, must not follow the batches.
        writer.write_table(table.slice(0, whole).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
    return [table.slice(whole)] if whole < table.num_rows else []


async def _write_batches(
    writer: pq.ParquetWriter,
    batches: trio.abc.ReceiveChannel[pa.RecordBatch],
) -> int:
    """Write every batch, a row group each time ``ROW_GROUP_ROWS`` rows have come."""
    pending: list[pa.Table] = []
    pending_rows = written = 0
    async for batch in batches:
        table = _pyarrow().Table.from_batches([batch])
        pending.append(table)
        pending_rows += table.num_rows
        written += table.num_rows
        if pending_rows >= ROW_GROUP_ROWS:
            pending = await trio.to_thread.run_sync(
                functools.partial(_write, writer, pending, final=False)
            )
            pending_rows %= ROW_GROUP_ROWS
    if pending:
        await trio.to_thread.run_sync(functools.partial(_write, writer, pending, final=True))
    return written


async def download_klines_to_parquet(
    client: HistoryClient,
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
    pause_gc: bool = True,
    decimal: bool = False,
    string_columns: bool = False,
) -> int:
    """Write klines with open time in ``[start, end)`` to a Parquet file; returns the row count.

    The columns are Binance's 12, typed as ``kline_schema`` says: ``open_time`` and
    ``close_time`` as ``timestamp[ms, tz=UTC]``, ``trades`` as int64, prices and
    volumes as float64, or ``decimal128(38, 8)`` with ``decimal=True`` (exact).
    ``string_columns=True`` writes the first versions' layout instead: int64 times and
    counts, the rest as the exact text the exchange sends. Either way the same rows make
    the same bytes whichever source served them. The file is written whole (Parquet
    cannot be appended to) under a ``.part`` name and renamed when complete, so an
    interrupted download leaves no half file. Other arguments are as in
    ``download_klines``. Batches come from ``open_kline_batch_stream``.
    """
    # Every argument is checked before the first byte of the file is written.
    stream = open_kline_batch_stream(
        client,
        symbol,
        interval,
        start,
        end,
        market=market,
        max_concurrency=max_concurrency,
        progress=progress,
        source=source,
        archive_url=archive_url,
        cache_dir=cache_dir,
        pause_gc=pause_gc,
        decimal=decimal,
        string_columns=string_columns,
    )
    arrow = _pyarrow()
    schema = kline_schema(decimal=decimal, string_columns=string_columns)
    target = Path(path)
    part = target.with_name(target.name + ".part")
    writer = await trio.to_thread.run_sync(arrow.parquet.ParquetWriter, str(part), schema)
    done = False
    try:
        async with stream as batches:
            written = await _write_batches(writer, batches)
        done = True
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(writer.close)
            if done:
                await trio.to_thread.run_sync(os.replace, part, target)
            else:
                await trio.Path(part).unlink(missing_ok=True)
    return written
