"""Kline frames read by pandas' and polars' own CSV parsers (``download_klines_frame``).

Arrow is the pivot everywhere else in ``frames.py``; a DataFrame download is the one place
where it is not needed to read: pandas brings a C parser and polars a Rust one, so each
reads the archive files itself. Into polars that keeps pyarrow out of the process (about
40 MB of the peak); into pandas it skips pyarrow's CSV and compute modules, which load
about 17 MB on first use. Both parse numbers correctly rounded (pandas 2 with
``float_precision="round_trip"``, pandas 3 by default), so the frames have the bits of
the Arrow path and of REST pages (tests compare them).

A file comes as columns of its library (``KlineColumns`` for the stream's continuity
checks), read in the fetch job's worker thread; the frame is then built from them in
order: into pandas, preallocated numpy columns wrapped by Arrow without a copy; into
polars, the files' frames concatenated without a copy (a chunk per file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from .archives import ArchiveFile, CsvStream, archive_csv
from .frames import arrow_to_pandas, check_widths, kline_schema
from .history.csv_file import KLINE_COLUMNS
from .history.klines import KlineBatch, KlineColumns, Row

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

__all__ = ["PandasColumns", "PolarsFrames", "read_pandas", "read_polars"]

_INTS: Final = frozenset({"open_time", "close_time", "trades"})
_TIMES: Final = (0, 6)  # open_time, close_time
_MICROSECONDS_FROM: Final = 10**15  # an open time of 16 digits is in microseconds


def _header_rows(head: bytes) -> int:
    """1 when the file starts with a header line (futures files may), else 0."""
    return 1 if head[:1] and not head[:1].isdigit() else 0


# -- pandas: numpy columns ----------------------------------------------------------------


class _ArrayColumns(KlineColumns):
    """One file's klines as 12 numpy columns (ms times, int64 counts, float64 numbers)."""

    def __init__(self, columns: list[np.ndarray[Any, Any]]) -> None:
        self.columns = columns
        opens = columns[0]
        self.count = len(opens)
        self.first, self.last = int(opens[0]), int(opens[-1])

    def __repr__(self) -> str:
        return f"_ArrayColumns(first={self.first}, last={self.last}, count={self.count})"

    def open_times(self) -> list[int]:
        return [int(t) for t in self.columns[0]]

    def kept(self, keep: Sequence[bool]) -> KlineColumns | list[Row]:
        import numpy

        mask = numpy.asarray(keep, dtype=bool)
        if not mask.any():
            return []
        return _ArrayColumns([column[mask] for column in self.columns])


def read_pandas(data: bytes, file: ArchiveFile) -> _ArrayColumns | list[Row] | bytes:
    """An archive's klines inside ``file``'s span, parsed by pandas' C reader as the CSV is
    inflated (the text is never whole). Blocking; parsing releases the GIL.

    Returns the CSV itself when it is not plain sorted 12-column numbers (the rows path
    decides then), and no rows for a file with none in the span.
    """
    import numpy
    import pandas

    csv = CsvStream(data)
    pandas_2 = pandas.__version__.startswith("2.")
    try:
        reader = pandas.read_csv(
            csv,
            header=None,
            names=list(KLINE_COLUMNS),
            skiprows=_header_rows(csv.peek()),
            dtype={n: numpy.int64 if n in _INTS else numpy.float64 for n in KLINE_COLUMNS},
            engine="c",
            low_memory=False,  # parsed whole: no per-chunk arrays concatenated after
            na_filter=False,  # an empty number is an error, as in a REST page
            # correctly rounded, the bits float(text) gives: pandas 3's default parser
            # is; pandas 2's needs the round-trip one
            **({"float_precision": "round_trip"} if pandas_2 else {}),
            iterator=True,
        )
        with reader:
            columns = _parsed_columns(reader)
    except (ValueError, pandas.errors.ParserError):  # 11 or 13 fields, an empty one...
        return archive_csv(data)
    del csv
    if not len(columns[0]):
        return []
    if columns[0][0] >= _MICROSECONDS_FROM:  # floor to ms: the times are not negative
        for i in _TIMES:
            columns[i] = columns[i] // 1000
    opens = columns[0]
    if not (file.start <= opens[0] and opens[-1] < file.end):  # a partial month
        if (opens[1:] < opens[:-1]).any():
            return archive_csv(data)
        lo, hi = numpy.searchsorted(opens, [file.start, file.end])
        if lo == hi:
            return []
        columns = [column[lo:hi] for column in columns]
    return _ArrayColumns(columns)


def _parsed_columns(reader: Any) -> list[np.ndarray[Any, Any]]:
    """The parser's columns as it made them. A DataFrame would first gather them into one
    block per dtype (a copy of the file's columns, 4 MB a month of 1m candles), so the
    parser's engine is asked directly when this pandas has the one every version since 1.x
    has (``TextFileReader._engine.read() -> (index, names, {name: array})``); otherwise
    through the DataFrame."""
    engine = getattr(reader, "_engine", None)
    read = getattr(engine, "read", None)
    if callable(read):
        got = read()
        if isinstance(got, tuple) and len(got) == 3 and isinstance(got[2], dict):
            arrays = got[2]
            if list(arrays) == list(KLINE_COLUMNS) or sorted(map(str, arrays)) == sorted(
                KLINE_COLUMNS
            ):
                return [arrays[name] for name in KLINE_COLUMNS]
            if list(arrays) == list(range(len(KLINE_COLUMNS))):
                return [arrays[i] for i in range(len(KLINE_COLUMNS))]
        raise ValueError(f"an unexpected answer from pandas' parser: {type(got).__name__}")
    frame = reader.read()
    return [frame[name].to_numpy() for name in KLINE_COLUMNS]


def _rows_as_arrays(rows: list[Row]) -> list[np.ndarray[Any, Any]]:
    """REST rows (ints and texts) as numpy columns: texts parsed correctly rounded."""
    import numpy

    check_widths(rows)

    return [
        numpy.array([int(row[i]) for row in rows], dtype=numpy.int64)
        if name in _INTS
        else numpy.array([float(row[i]) for row in rows], dtype=numpy.float64)
        for i, name in enumerate(KLINE_COLUMNS)
    ]


class PandasColumns:
    """The frame's 12 columns, preallocated (pages touched only as rows come: a gap or
    the part of a range after now costs nothing) and filled file by file in order.
    Blocking methods (a file's copy takes ~1 ms)."""

    def __init__(self, capacity: int) -> None:
        import numpy

        self.size, self.capacity = 0, max(capacity, 1)
        self.columns = [
            numpy.empty(self.capacity, dtype=numpy.int64 if n in _INTS else numpy.float64)
            for n in KLINE_COLUMNS
        ]

    def append(self, batch: KlineBatch) -> None:
        """Copy a file's columns (or a REST page's rows) after the rows so far."""
        if isinstance(batch, _ArrayColumns):
            arrays = batch.columns
        elif isinstance(batch, list):
            arrays = _rows_as_arrays(batch)
        else:
            raise TypeError(f"not pandas columns nor rows: {batch!r:.80}")
        rows = len(arrays[0])
        if self.size + rows > self.capacity:  # more candles than the range holds: never
            self._grow(max(2 * self.capacity, self.size + rows))
        for column, array in zip(self.columns, arrays, strict=True):
            column[self.size : self.size + rows] = array
        self.size += rows

    def _grow(self, capacity: int) -> None:
        import numpy

        grown = []
        for column in self.columns:
            bigger = numpy.empty(capacity, dtype=column.dtype)
            bigger[: self.size] = column[: self.size]
            grown.append(bigger)
        self.columns, self.capacity = grown, capacity

    def frame(self) -> Any:
        """The pandas DataFrame, wrapping these columns through Arrow without a copy."""
        import pyarrow as pa

        arrays = [
            pa.Array.from_buffers(field.type, self.size, [None, pa.py_buffer(column[: self.size])])
            for field, column in zip(kline_schema(), self.columns, strict=True)
        ]
        self.columns = []
        return arrow_to_pandas(pa.Table.from_arrays(arrays, schema=kline_schema()))


# -- polars: a frame per file -------------------------------------------------------------


def _polars_schema(pl: Any) -> dict[str, Any]:
    return {n: pl.Int64 if n in _INTS else pl.Float64 for n in KLINE_COLUMNS}


class _PolarsColumns(KlineColumns):
    """One file's klines as a polars DataFrame (Int64 ms times, Int64 counts, Float64)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        opens = frame.get_column("open_time")
        self.count = frame.height
        self.first, self.last = int(opens[0]), int(opens[-1])

    def __repr__(self) -> str:
        return f"_PolarsColumns(first={self.first}, last={self.last}, count={self.count})"

    def open_times(self) -> list[int]:
        return list(self.frame.get_column("open_time").to_list())

    def kept(self, keep: Sequence[bool]) -> KlineColumns | list[Row]:
        import polars

        frame = self.frame.filter(polars.Series(keep, dtype=polars.Boolean))
        return _PolarsColumns(frame) if frame.height else []


def read_polars(data: bytes, file: ArchiveFile) -> _PolarsColumns | list[Row] | bytes:
    """An archive's klines inside ``file``'s span, parsed by polars' reader. Blocking;
    parsing releases the GIL. Returns as ``read_pandas`` does."""
    import polars

    csv = archive_csv(data)  # polars reads a buffer whole
    try:
        frame = polars.read_csv(
            csv,
            has_header=False,
            skip_rows=_header_rows(csv),
            schema=_polars_schema(polars),
        )
    except (polars.exceptions.PolarsError, ValueError):  # ragged lines, text...
        return csv
    if not frame.height:
        return []
    if frame.null_count().sum_horizontal().item():  # a missing or empty field
        return csv
    if frame.item(0, 0) >= _MICROSECONDS_FROM:  # floor to ms: the times are not negative
        frame = frame.with_columns(
            polars.col("open_time") // 1000, polars.col("close_time") // 1000
        )
    opens = frame.get_column("open_time")
    if not (file.start <= opens[0] and opens[-1] < file.end):  # a partial month
        if not opens.is_sorted():
            return csv
        lo = int(opens.search_sorted(file.start, side="left"))
        hi = int(opens.search_sorted(file.end, side="left"))
        if lo == hi:
            return []
        frame = frame.slice(lo, hi - lo)
    return _PolarsColumns(frame)


class PolarsFrames:
    """The files' frames, in order; concatenated at the end without a copy."""

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []

    def append(self, batch: KlineBatch) -> None:
        """Keep a file's frame (or a REST page's rows, parsed correctly rounded)."""
        import polars

        if isinstance(batch, _PolarsColumns):
            self.frames.append(batch.frame)
        elif isinstance(batch, list):
            if batch:
                check_widths(batch)
                columns = list(zip(*batch, strict=True))
                self.frames.append(
                    polars.DataFrame(
                        {
                            name: [int(v) for v in column] if name in _INTS
                            else [float(v) for v in column]
                            for name, column in zip(KLINE_COLUMNS, columns, strict=True)
                        },
                        schema=_polars_schema(polars),
                    )
                )
        else:
            raise TypeError(f"not polars columns nor rows: {batch!r:.80}")

    def frame(self) -> pl.DataFrame:
        """One frame (a chunk per file), times as ``Datetime("ms", "UTC")``."""
        import polars

        schema = _polars_schema(polars)
        whole = (
            polars.concat(self.frames, how="vertical", rechunk=False)
            if self.frames
            else polars.DataFrame(schema=schema)
        )
        self.frames = []
        when = polars.Datetime("ms", "UTC")
        return whole.with_columns(
            polars.col("open_time").cast(when), polars.col("close_time").cast(when)
        )


#: How each library reads a file in the fetch job.
READERS: Final[dict[str, Callable[[bytes, ArchiveFile], Any]]] = {
    "pandas": read_pandas,
    "polars": read_polars,
}
