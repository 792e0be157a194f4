"""Typed data out: history as Arrow tables, pandas and polars DataFrames, Parquet columns.

Arrow is the pivot. Every typed output (``HistoryRows.to_arrow/to_pandas/to_polars``,
``open_kline_batch_stream``, ``download_klines_frame``, ``download_klines_to_parquet``)
is first an Arrow table with one schema per kind of history, so pandas, polars and
Parquet see the same types: times as ``timestamp[ms, tz=UTC]``, counts and ids as int64,
prices and volumes as float64 by default, or, with ``decimal=True``, as
``decimal128(38, 8)``: Binance sends 8 decimals, so each text is kept exactly (the
Decimal prints as the text it came from) with 30 integer digits to spare.

A whole archive file goes to Arrow through pyarrow's CSV reader (C++, outside the GIL),
never through Python rows, so a DataFrame costs its columns, not millions of lists.
REST pages are converted column by column with Arrow's casts, which parse numbers
exactly as the CSV reader does, so the two sources give the same bits.

pyarrow, pandas and polars are imported when first needed (extras ``parquet``,
``pandas``, ``polars``); a missing one is an ImportError naming the extra to install.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import trio

from .archives import ArchiveFile, ArchiveHost, CsvStream, KlineBlock, archive_csv
from .history.csv_file import KLINE_COLUMNS
from .history.klines import (
    KlineBatch,
    KlineColumns,
    Row,
    checked_kline_args,
    kline_capacity,
    kline_column_stream,
)
from .history.source import Gap, HistoryClient, HistoryOptions, Progress
from .history.times import HistoryQuery, TimeLike
from .markets import Market

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

__all__ = [
    "AGG_TRADE_COLUMNS",
    "DECIMAL_PRECISION",
    "DECIMAL_SCALE",
    "FUNDING_RATE_COLUMNS",
    "KLINE_COLUMNS",
    "agg_trade_schema",
    "download_klines_frame",
    "funding_rate_schema",
    "kline_schema",
    "open_kline_batch_stream",
    "rows_to_arrow",
]

#: Aggregate trades, as Binance's aggTrades archives name them (REST: ``a p q f l T m M``).
AGG_TRADE_COLUMNS: Final = (
    "agg_trade_id",
    "price",
    "quantity",
    "first_trade_id",
    "last_trade_id",
    "transact_time",
    "is_buyer_maker",
    "is_best_match",
)
#: Funding rates (REST: ``symbol fundingTime fundingRate markPrice``).
FUNDING_RATE_COLUMNS: Final = ("symbol", "funding_time", "funding_rate", "mark_price")

#: ``decimal=True`` columns are ``decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)``: Binance's
#: 8-decimal texts exactly, with 30 integer digits.
DECIMAL_PRECISION: Final = 38
DECIMAL_SCALE: Final = 8

_KLINE_TIMES: Final = frozenset({"open_time", "close_time"})
_KLINE_INTS: Final = frozenset({"open_time", "close_time", "trades"})
_REST_TRADE_KEYS: Final = ("a", "p", "q", "f", "l", "T", "m", "M")
_LIBRARIES: Final = ("pandas", "polars", "arrow")
_KINDS: Final = ("klines", "agg_trades", "funding_rates")
_EXTRAS: Final = {"pyarrow": "parquet", "pandas": "pandas", "polars": "polars"}
#: An open time of 16 digits is in microseconds (spot files from 2025 on).
_MICROSECONDS_FROM: Final = 10**15
#: Archive files inflated and read at once, per stream: each holds its zip, a block of its
#: CSV and its columns; two keep both cores busy (one alone made a download 1.5x longer).
_READ_AT_ONCE: Final = 2
_CSV_BLOCK: Final = 1 << 20  # bytes of CSV text pyarrow parses at a time
#: ``download_klines_frame``'s files in flight (fetched, read or waiting their turn).
_FRAME_CONCURRENCY: Final = 2
#: Rows preallocated at most (2**25: 268 MB of address space a column, touched only as rows
#: come); a range asking more (1s candles for years, an end far past now on a client with
#: no clock) grows past it.
_MAX_PREALLOCATED: Final = 1 << 25


def _require(module: str, what: str) -> Any:
    """Import ``module`` (pyarrow, pandas or polars), or say which extra brings it."""
    import importlib

    top = module.partition(".")[0]
    needed = ["pyarrow", "pyarrow.csv"] + ([] if module == "pyarrow" else [module])
    try:
        loaded = [importlib.import_module(name) for name in needed]
    except ImportError:
        raise ImportError(
            f"{what} needs {top} and pyarrow: pip install 'aiocea-trio[{_EXTRAS[top]}]'"
            if top != "pyarrow"
            else f"{what} needs pyarrow: pip install 'aiocea-trio[{_EXTRAS[top]}]'"
        ) from None
    return loaded[-1] if module != "pyarrow" else loaded[0]


def _arrow(what: str = "typed history") -> Any:
    return _require("pyarrow", what)


def _number(pa: Any, decimal: bool) -> pa.DataType:
    return pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE) if decimal else pa.float64()


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def kline_schema(*, decimal: bool = False, string_columns: bool = False) -> pa.Schema:
    """The Arrow schema of Binance's 12 kline columns.

    Typed by default: ``open_time``/``close_time`` as ``timestamp[ms, tz=UTC]``,
    ``trades`` as int64, the prices and volumes (and ``ignore``) as float64, or as
    ``decimal128(38, 8)`` with ``decimal=True``. ``string_columns=True`` is the layout
    of the first Parquet files: int64 times and counts, the rest as the exact text.

    Raises:
        ValueError: ``decimal`` and ``string_columns`` together (text is already exact).
    """
    _check_flag("decimal", decimal)
    _check_flag("string_columns", string_columns)
    if decimal and string_columns:
        raise ValueError("decimal=True does not apply with string_columns=True (text is exact)")
    pa = _arrow("a kline schema")
    if string_columns:
        return pa.schema(
            [(n, pa.int64() if n in _KLINE_INTS else pa.string()) for n in KLINE_COLUMNS]
        )
    time, number = pa.timestamp("ms", tz="UTC"), _number(pa, decimal)
    return pa.schema(
        [
            (n, time if n in _KLINE_TIMES else pa.int64() if n == "trades" else number)
            for n in KLINE_COLUMNS
        ]
    )


def agg_trade_schema(*, decimal: bool = False) -> pa.Schema:
    """Aggregate trades: int64 ids, UTC ms times, float64 (or decimal) price and quantity.

    ``is_best_match`` is null on futures, which do not send it.
    """
    _check_flag("decimal", decimal)
    pa = _arrow("an aggTrades schema")
    number = _number(pa, decimal)
    types = [
        pa.int64(), number, number, pa.int64(), pa.int64(),
        pa.timestamp("ms", tz="UTC"), pa.bool_(), pa.bool_(),
    ]
    return pa.schema(list(zip(AGG_TRADE_COLUMNS, types, strict=True)))


def funding_rate_schema(*, decimal: bool = False) -> pa.Schema:
    """Funding rates: the symbol, a UTC ms time, float64 (or decimal) rate and mark price.

    ``mark_price`` is null where Binance sends none (old entries have an empty text).
    """
    _check_flag("decimal", decimal)
    pa = _arrow("a funding-rate schema")
    number = _number(pa, decimal)
    types = [pa.string(), pa.timestamp("ms", tz="UTC"), number, number]
    return pa.schema(list(zip(FUNDING_RATE_COLUMNS, types, strict=True)))


def _columns(pa: Any, columns: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Python columns (ints, bools, texts) as a table of ``schema``: texts and ints are cast,
    with Arrow's parser (the one its CSV reader uses, so REST pages and archive files agree).
    """
    arrays = []
    for column, field in zip(columns, schema, strict=True):
        kind = field.type
        if pa.types.is_timestamp(kind):
            arrays.append(pa.array(column, pa.int64()).cast(kind))
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            arrays.append(pa.array(column, pa.string()).cast(kind))
        else:
            arrays.append(pa.array(column, kind))
    return pa.Table.from_arrays(arrays, schema=schema)


def kline_table(batch: KlineBatch, schema: pa.Schema) -> pa.Table:
    """One kline batch (REST rows, or an archive file's CSV) as an Arrow table of ``schema``.

    Blocking: run it in a worker thread. A ``KlineBlock`` is read by pyarrow's CSV reader
    (which releases the GIL), never turned into Python rows.
    """
    pa = _arrow()
    if isinstance(batch, _FileColumns):
        return batch.table
    if isinstance(batch, KlineColumns):
        raise TypeError(f"columns of another reader: {batch!r}")
    if isinstance(batch, KlineBlock):
        # The reader parses epoch-ms integers, not timestamps: read int64, then cast.
        read = pa.schema(
            [(f.name, pa.int64() if pa.types.is_timestamp(f.type) else f.type) for f in schema]
        )
        table = pa.csv.read_csv(
            pa.py_buffer(batch.data),
            read_options=pa.csv.ReadOptions(column_names=list(KLINE_COLUMNS)),
            convert_options=pa.csv.ConvertOptions(
                column_types=read, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
        if table.num_rows != batch.count:
            raise ValueError(f"read {table.num_rows} rows from a block of {batch.count}")
        return pa.Table.from_arrays(
            [col.cast(f.type) for col, f in zip(table.columns, schema, strict=True)],
            schema=schema,
        )
    check_widths(batch)
    columns = list(zip(*batch, strict=True)) if batch else [()] * len(KLINE_COLUMNS)
    return _columns(pa, columns, schema)


def check_widths(rows: Sequence[Row]) -> None:
    """Refuse rows that are not 12-field klines, naming the first such row."""
    for row in rows:
        if len(row) != len(KLINE_COLUMNS):
            raise ValueError(
                f"a kline has {len(KLINE_COLUMNS)} fields; got {len(row)}: {row!r:.120}"
            )


def _kind_of(rows: Sequence[Any]) -> str:
    first = rows[0]
    if isinstance(first, list | tuple) and len(first) == len(KLINE_COLUMNS):
        return "klines"
    if isinstance(first, dict) and "a" in first:
        return "agg_trades"
    if isinstance(first, dict) and "fundingTime" in first:
        return "funding_rates"
    raise ValueError(f"rows are not klines, aggregate trades or funding rates: {first!r:.80}")


def rows_to_arrow(
    rows: Sequence[Any], kind: str | None = None, *, decimal: bool = False
) -> pa.Table:
    """History rows (as the REST API gives them) as a typed Arrow table.

    ``kind`` is ``"klines"``, ``"agg_trades"`` or ``"funding_rates"``; None tells it
    from the first row (an empty list then needs ``kind``). Blocking, holds the GIL:
    for millions of rows use ``download_klines_frame``, which never builds them.

    Raises:
        ValueError: an unknown ``kind``, or an empty ``rows`` without one.
    """
    if kind is None:
        if not rows:
            raise ValueError("kind is needed for an empty list of rows")
        kind = _kind_of(rows)
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
    pa = _arrow("to_arrow")
    if kind == "klines":
        return kline_table(list(rows), kline_schema(decimal=decimal))
    if kind == "agg_trades":
        keys: Sequence[str] = _REST_TRADE_KEYS
        schema = agg_trade_schema(decimal=decimal)
    else:
        keys = ("symbol", "fundingTime", "fundingRate", "markPrice")
        schema = funding_rate_schema(decimal=decimal)
    # Futures trades have no ``M``; old funding entries have an empty markPrice: nulls.
    columns = [
        [row.get(key) or None for row in rows] if key == "markPrice"
        else [row.get(key) for row in rows]
        for key in keys
    ]
    return _columns(pa, columns, schema)


def rows_to_pandas(rows: Sequence[Any], kind: str | None = None, *, decimal: bool = False) -> Any:
    """``rows_to_arrow``, then ``arrow_to_pandas``; pandas is looked for first."""
    _require("pandas", "to_pandas")
    return arrow_to_pandas(rows_to_arrow(rows, kind, decimal=decimal), decimal=decimal)


def rows_to_polars(
    rows: Sequence[Any], kind: str | None = None, *, decimal: bool = False
) -> pl.DataFrame:
    """``rows_to_arrow``, then ``arrow_to_polars``; polars is looked for first."""
    _require("polars", "to_polars")
    return arrow_to_polars(rows_to_arrow(rows, kind, decimal=decimal))


def _pandas_mapper(pd: Any, decimal: bool) -> Callable[[Any], Any] | None:
    """With ``decimal``, decimal columns stay Arrow-backed (``pd.ArrowDtype``): exact, and
    no Python object per value."""
    if not decimal:
        return None
    import pyarrow as pa

    return lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None


def arrow_to_pandas(table: pa.Table, *, decimal: bool = False) -> Any:
    """``table`` as a pandas DataFrame, its Arrow memory released column by column.

    Times become ``datetime64[ms, UTC]``, floats float64, counts int64; decimals (with
    ``decimal``) ``ArrowDtype(decimal128(38, 8))``. Blocking. ``table`` is used up.
    """
    pd = _require("pandas", "a pandas DataFrame")
    return table.to_pandas(
        types_mapper=_pandas_mapper(pd, decimal), split_blocks=True, self_destruct=True
    )


def arrow_to_polars(table: pa.Table) -> pl.DataFrame:
    """``table`` as a polars DataFrame (Datetime("ms", "UTC"), Float64 or Decimal, Int64)."""
    polars = _require("polars", "a polars DataFrame")
    frame = polars.from_arrow(table, rechunk=False)  # no copy: a chunk per file is fine
    assert isinstance(frame, polars.DataFrame)  # a Table gives a DataFrame
    return cast("pl.DataFrame", frame)


def _check_library(library: str) -> str:
    if library not in _LIBRARIES:
        raise ValueError(f"library must be 'pandas', 'polars' or 'arrow'; got {library!r}")
    return library


class _FileColumns(KlineColumns):
    """One archive file's klines in ``kline_schema`` columns, read in the fetch job."""

    def __init__(self, table: pa.Table, first: int, last: int) -> None:
        self.table, self.first, self.last, self.count = table, first, last, table.num_rows

    def __repr__(self) -> str:
        return f"_FileColumns(first={self.first}, last={self.last}, count={self.count})"

    def open_times(self) -> list[int]:
        return _open_times(self.table)

    def kept(self, keep: Sequence[bool]) -> KlineColumns | list[Row]:
        drop = keep.index(True) if True in keep else len(keep)
        if all(keep[drop:]):  # duplicates of rows already sent lead a sorted file
            table = self.table.slice(drop)
        else:
            table = self.table.filter(_arrow().array(keep, _arrow().bool_()))
        if not table.num_rows:
            return []
        times = _open_times(table)
        return _FileColumns(table, times[0], times[-1])


def _open_times(table: pa.Table) -> list[int]:
    return cast("list[int]", table.column(0).cast(_arrow().int64()).to_pylist())


def _read_archive(
    data: bytes, file: ArchiveFile, schema: pa.Schema
) -> _FileColumns | list[Row] | bytes:
    """Inflate an archive and read its CSV with pyarrow into ``schema`` columns, keeping
    ``file``'s span. Blocking, mostly outside the GIL (zlib, the C++ reader).

    Done here, in the fetch job, because this is the work that overlaps the later files'
    downloads; the CSV is never scanned in Python, and microsecond times are cut by a
    cast. Returns the CSV itself when it is not plain sorted kline data (the rows path
    reads it then), and no rows for a file with none in the span. Nothing here makes a
    Python value into an Arrow one: that would import pandas (40 MB) into a polars
    process.
    """
    pa = _arrow()
    csv = CsvStream(data)
    # The reader parses epoch integers, not timestamps: read int64, cast at the end.
    read = pa.schema(
        [(f.name, pa.int64() if pa.types.is_timestamp(f.type) else f.type) for f in schema]
    )
    try:
        batches = pa.csv.open_csv(
            csv,  # inflated block by block as the reader asks: the text is never whole
            read_options=pa.csv.ReadOptions(
                column_names=list(KLINE_COLUMNS),
                # one file is read at a time, beside the downloads: the reader's own
                # threads would only hold more blocks
                use_threads=False,
                block_size=_CSV_BLOCK,
                # futures files may start with a header line
                skip_rows=1 if csv.peek()[:1] and not csv.peek()[:1].isdigit() else 0,
            ),
            convert_options=pa.csv.ConvertOptions(
                column_types=read,
                null_values=[],  # an empty number is an error, as in a REST page
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
            # malloc gives freed file buffers back; the default pool keeps them
            memory_pool=pa.system_memory_pool(),
        )
        table = pa.Table.from_batches(list(batches), schema=read)
    except pa.ArrowInvalid:
        return archive_csv(data)  # 11 columns, an empty field...: the rows path decides
    del csv
    if not table.num_rows:
        return []
    if table.column(0)[0].as_py() >= _MICROSECONDS_FROM:
        for i in (0, 6):  # floor to ms: the times are not negative
            micro = table.column(i).cast(pa.timestamp("us"))
            milli = micro.cast(pa.timestamp("ms"), safe=False).cast(pa.int64())
            table = table.set_column(i, read.field(i), milli)
    first, last = table.column(0)[0].as_py(), table.column(0)[-1].as_py()
    if not (file.start <= first and last < file.end):  # a partial month: keep the span
        opens = _open_times(table)
        if opens != sorted(opens):
            return archive_csv(data)
        lo, hi = bisect.bisect_left(opens, file.start), bisect.bisect_left(opens, file.end)
        if lo == hi:
            return []
        table, first, last = table.slice(lo, hi - lo), opens[lo], opens[hi - 1]
    columns = [
        c if c.type == f.type else c.cast(f.type)
        for c, f in zip(table.columns, schema, strict=True)
    ]
    return _FileColumns(pa.Table.from_arrays(columns, schema=schema), first, last)


def _column_loader(schema: pa.Schema) -> Callable[[ArchiveHost, ArchiveFile], Any]:
    """How a typed stream loads an archive file: inflated and read by pyarrow."""
    return _file_loader(functools.partial(_read_archive, schema=schema))


def _file_loader(read: Callable[..., KlineColumns | list[Row] | bytes]) -> Callable[..., Any]:
    """How a column stream loads an archive file: inflated and ``read`` in one worker
    thread, ``_READ_AT_ONCE`` files at a time (others wait as zips, the smallest form);
    a file ``read`` refuses (returned as CSV bytes) is read as rows."""
    limiter = trio.CapacityLimiter(_READ_AT_ONCE)

    async def load(host: ArchiveHost, file: ArchiveFile) -> KlineColumns | list[Row] | None:
        got = await host.unzipped(file, functools.partial(read, file=file), limiter=limiter)
        if isinstance(got, bytes):
            return await host.rows_in_span(got, file)
        return got

    return load


def open_kline_batch_stream(
    client: HistoryClient,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.SPOT,
    decimal: bool = False,
    string_columns: bool = False,
    page_size: int | None = None,
    max_concurrency: int = 8,
    progress: Progress | None = None,
    gaps: list[Gap] | None = None,
    source: str = "auto",
    archive_url: str | None = None,
    cache_dir: str | Path | None = None,
    pause_gc: bool = True,
) -> AbstractAsyncContextManager[trio.abc.ReceiveChannel[pa.RecordBatch]]:
    """Klines with open time in ``[start, end)`` as typed Arrow record batches, in order.

    ``async with open_kline_batch_stream(...) as batches: async for batch in batches:``.
    One batch per archive file (read by pyarrow's CSV reader in the worker thread that
    unzips it, while later files download; never through Python rows) or per REST page,
    all of ``kline_schema(decimal=..., string_columns=...)``, checked for continuity as
    ``open_kline_stream``'s rows are: for histories larger than memory. Other arguments
    are as in ``open_kline_stream``; they are checked when it is called, before any
    request.
    """
    schema = kline_schema(decimal=decimal, string_columns=string_columns)
    query, options = checked_kline_args(
        market, symbol, interval, start, end,
        lambda: HistoryOptions(
            source, max_concurrency, page_size, archive_url, cache_dir, pause_gc
        ),
    )
    return _record_batches(client, query, options, progress, gaps, schema)


@trio.as_safe_channel
async def _record_batches(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None,
    gaps: list[Gap] | None,
    schema: pa.Schema,
) -> AsyncGenerator[pa.RecordBatch, None]:
    load = _column_loader(schema)
    async with kline_column_stream(client, query, options, progress, gaps, load) as batches:
        async for batch in batches:
            table = await trio.to_thread.run_sync(_one_chunk, batch, schema)
            if table.num_rows:
                yield table.to_batches()[0]


def _one_chunk(batch: KlineBatch, schema: pa.Schema) -> pa.Table:
    """``kline_table`` in one chunk (the CSV reader cuts a file in blocks): one batch."""
    return kline_table(batch, schema).combine_chunks()


class _Columns:
    """A frame's columns, preallocated and contiguous, filled file by file.

    Every file's columns are copied in as they come and dropped at once, so the download
    holds the frame plus the few files in flight: never a second copy of the frame (a
    list of per-file tables, then their concatenation). The buffers come from the system
    allocator, which maps large ones from the OS: pages that no row reaches (a gap, the
    part of a range after now) are never touched, so cost no memory. Blocking methods (a
    file's copy takes ~1 ms).
    """

    def __init__(self, schema: pa.Schema, capacity: int) -> None:
        self.schema, self.size, self.capacity = schema, 0, max(capacity, 1)
        pa = _arrow()
        self.buffers = [
            pa.allocate_buffer(8 * self.capacity, pa.system_memory_pool()) for _ in schema
        ]

    def append(self, table: pa.Table) -> None:
        """Copy ``table``'s rows after the rows so far (growing when a range has more
        candles than it can hold: never in practice)."""
        pa = _arrow()
        rows = table.num_rows
        if self.size + rows > self.capacity:
            self._grow(max(2 * self.capacity, self.size + rows))
        for buffer, column in zip(self.buffers, table.columns, strict=True):
            at = 8 * self.size
            with memoryview(buffer) as out:
                for chunk in column.chunks:
                    if chunk.null_count:
                        raise ValueError("a kline has an empty field")
                    if pa.types.is_timestamp(chunk.type):
                        chunk = chunk.view(pa.int64())
                    size = 8 * len(chunk)
                    with memoryview(chunk.buffers()[1]) as values:
                        start = 8 * chunk.offset
                        out[at : at + size] = values[start : start + size]
                    at += size
        self.size += rows

    def _grow(self, capacity: int) -> None:
        pa = _arrow()
        grown = []
        for buffer in self.buffers:
            bigger = pa.allocate_buffer(8 * capacity, pa.system_memory_pool())
            with memoryview(bigger) as out, memoryview(buffer) as rows:
                out[: 8 * self.size] = rows[: 8 * self.size]
            grown.append(bigger)
        self.buffers, self.capacity = grown, capacity

    def table(self) -> pa.Table:
        """The columns as a table, one chunk each, sharing these buffers (no copy)."""
        pa = _arrow()
        arrays = [
            pa.Array.from_buffers(field.type, self.size, [None, buffer.slice(0, 8 * self.size)])
            for field, buffer in zip(self.schema, self.buffers, strict=True)
        ]
        self.buffers = []
        return pa.Table.from_arrays(arrays, schema=self.schema)


async def download_klines_frame(
    client: HistoryClient,
    symbol: str,
    interval: str,
    start: TimeLike,
    end: TimeLike,
    *,
    market: Market | str = Market.SPOT,
    library: str = "pandas",
    decimal: bool = False,
    page_size: int | None = None,
    max_concurrency: int = _FRAME_CONCURRENCY,
    progress: Progress | None = None,
    gaps: list[Gap] | None = None,
    source: str = "auto",
    archive_url: str | None = None,
    cache_dir: str | Path | None = None,
) -> Any:
    """Klines with open time in ``[start, end)`` as one typed DataFrame (or Arrow table).

    ``library`` is ``"pandas"`` (the default), ``"polars"`` or ``"arrow"``. The fast way
    to a frame: archive files are parsed by the library's own CSV parser (pyarrow's for
    ``"arrow"`` and ``decimal=True``) without Python rows, in the worker threads that
    unzip them while later files download, and copied file by file into the frame; a
    polars frame never imports pyarrow. Five years of 1m candles, 2.6 M rows: ~1.8 s and
    under 400 MB at peak into pandas, 370 MB into polars, on a 2-core VM (see
    docs/benchmarks.md).
    Types as in ``kline_schema``; gaps in the exchange's data are appended to ``gaps``.
    ``max_concurrency`` is lower than elsewhere: the files in flight are the memory
    besides the frame. Other arguments are as in ``download_klines``.

    Raises:
        ValueError: a bad argument, before any request.
        ImportError: the library is not installed (the message names the extra).
    """
    _check_library(library)
    _check_flag("decimal", decimal)
    native = library != "arrow" and not decimal
    if library == "polars" and native:
        _require_polars()  # its own CSV reader: pyarrow is not needed
    elif library != "arrow":
        _require(library, f"library={library!r}")
    query, options = checked_kline_args(
        market, symbol, interval, start, end,
        lambda: HistoryOptions(source, max_concurrency, page_size, archive_url, cache_dir),
    )
    if native:
        return await _native_frame(client, query, options, progress, gaps, library)
    schema = kline_schema(decimal=decimal)
    if decimal:  # 16-byte decimals: collected per file, then concatenated
        table = await _collected(client, query, options, progress, gaps, schema)
    else:
        table = await _preallocated(client, query, options, progress, gaps, schema)
    if library == "arrow":
        return table
    if library == "pandas":
        return await trio.to_thread.run_sync(_pandas_frame, table, decimal)
    return await trio.to_thread.run_sync(arrow_to_polars, table)


def _require_polars() -> None:
    try:
        import polars  # noqa: F401
    except ImportError:
        raise ImportError(
            "library='polars' needs polars: pip install 'aiocea-trio[polars]'"
        ) from None


async def _native_frame(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None,
    gaps: list[Gap] | None,
    library: str,
) -> Any:
    """A pandas or polars frame whose archive files the library's own parser reads."""
    from . import _native_frames as native

    sink: native.PandasColumns | native.PolarsFrames
    if library == "pandas":
        sink = native.PandasColumns(min(kline_capacity(client, query), _MAX_PREALLOCATED))
    else:
        sink = native.PolarsFrames()
    load = _file_loader(native.READERS[library])
    async with kline_column_stream(client, query, options, progress, gaps, load) as batches:
        async for batch in batches:
            await trio.to_thread.run_sync(sink.append, batch)
            del batch
    return await trio.to_thread.run_sync(sink.frame)


async def _collected(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None,
    gaps: list[Gap] | None,
    schema: pa.Schema,
) -> pa.Table:
    collected: list[pa.RecordBatch] = []
    async with _record_batches(client, query, options, progress, gaps, schema) as batches:
        async for batch in batches:
            collected.append(batch)
    return _arrow().Table.from_batches(collected, schema=schema)


async def _preallocated(
    client: HistoryClient,
    query: HistoryQuery,
    options: HistoryOptions,
    progress: Progress | None,
    gaps: list[Gap] | None,
    schema: pa.Schema,
) -> pa.Table:
    """The stream's batches copied into ``_Columns`` as they come, in order."""
    columns = _Columns(schema, min(kline_capacity(client, query), _MAX_PREALLOCATED))
    load = _column_loader(schema)
    async with kline_column_stream(client, query, options, progress, gaps, load) as batches:
        async for batch in batches:
            if isinstance(batch, _FileColumns):
                table = batch.table
            else:  # a REST page (or a file read as rows)
                table = await trio.to_thread.run_sync(kline_table, batch, schema)
            del batch
            await trio.to_thread.run_sync(columns.append, table)
            del table
    return columns.table()


def _pandas_frame(table: pa.Table, decimal: bool) -> Any:
    return arrow_to_pandas(table, decimal=decimal)
