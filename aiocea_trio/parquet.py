"""Klines into a Parquet file, at archive speed and in flat memory (the ``parquet`` extra).

A whole archive file's CSV goes to Arrow through pyarrow's CSV reader (C++,
outside the GIL), never through Python rows; REST pages are converted column
by column. Row groups are written as they fill, so memory stays bounded
however long the range.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from .archives import KlineBlock
from .history import (
    KLINE_COLUMNS,
    HistoryClient,
    Progress,
    Row,
    TimeLike,
    open_kline_block_stream,
)
from .markets import Market

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["download_klines_to_parquet"]

#: Rows per Parquet row group: about 25 MB of Arrow data in memory at most.
ROW_GROUP_ROWS: Final = 1 << 18
_INT_COLUMNS: Final = frozenset({"open_time", "close_time", "trades"})


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError:
        raise ImportError(
            "writing Parquet needs pyarrow: pip install 'aiocea-trio[parquet]'"
        ) from None
    return pyarrow


def kline_schema() -> pa.Schema:
    """Binance's 12 kline columns: int64 times and trade counts, the rest as exact text."""
    pa = _pyarrow()
    return pa.schema(
        [(name, pa.int64() if name in _INT_COLUMNS else pa.string()) for name in KLINE_COLUMNS]
    )


def _table(batch: list[Row] | KlineBlock, schema: pa.Schema) -> pa.Table:
    """One batch as an Arrow table. Blocking (pyarrow's CSV reader releases the GIL)."""
    pa = _pyarrow()
    if isinstance(batch, KlineBlock):
        table = pa.csv.read_csv(
            pa.py_buffer(batch.data),
            read_options=pa.csv.ReadOptions(column_names=list(KLINE_COLUMNS)),
            convert_options=pa.csv.ConvertOptions(
                column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
        if table.num_rows != batch.count:
            raise ValueError(f"read {table.num_rows} rows from a block of {batch.count}")
        return table
    columns = [[row[i] for row in batch] for i in range(len(KLINE_COLUMNS))]
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


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
    batches: trio.MemoryReceiveChannel[list[Row] | KlineBlock],
    schema: pa.Schema,
) -> int:
    """Write every batch, a row group each time ``ROW_GROUP_ROWS`` rows have come."""
    pending: list[pa.Table] = []
    pending_rows = written = 0
    async for batch in batches:
        table = await trio.to_thread.run_sync(_table, batch, schema)
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
) -> int:
    """Write klines with open time in ``[start, end)`` to a Parquet file; returns the row count.

    The columns are Binance's 12, with ``open_time``, ``close_time`` and ``trades``
    as int64 and the prices and volumes as the exact text the exchange sends. The
    file is written whole (Parquet cannot be appended to) under a ``.part`` name
    and renamed when complete, so an interrupted download leaves no half file.
    Other arguments are as in ``download_klines``. Batches come from
    ``open_kline_block_stream``: a whole archive file is read by pyarrow's CSV reader.
    """
    # Every argument is checked before the first byte of the file is written.
    stream = open_kline_block_stream(
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
    )
    arrow = _pyarrow()
    schema = kline_schema()
    target = Path(path)
    part = target.with_name(target.name + ".part")
    writer = await trio.to_thread.run_sync(arrow.parquet.ParquetWriter, str(part), schema)
    done = False
    try:
        async with stream as batches:
            written = await _write_batches(writer, batches, schema)
        done = True
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(writer.close)
            if done:
                await trio.to_thread.run_sync(os.replace, part, target)
            else:
                await trio.Path(part).unlink(missing_ok=True)
    return written
