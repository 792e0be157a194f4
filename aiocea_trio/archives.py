"""Binance's public zip archives (data.binance.vision): history that costs no request weight.

Binance publishes klines and aggregate trades as monthly and daily zip files,
each with a ``.CHECKSUM`` (sha256) beside it. This module plans which files
cover a time range, fetches them (streamed, checksum-verified, optionally
cached), and parses them in a worker thread into the same rows the REST API
returns, so that an archive download and a REST download are identical.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import hashlib
import io
import logging
import mmap
import os
import struct
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from pathlib import Path, PurePosixPath
from typing import Any, Final, TypeVar

import attrs
import httpx
import trio

from ._redact import scrub
from .errors import BinanceError, BinanceResponseError, BinanceTransportError
from .markets import Market
from .retries import RetryPolicy
from .symbols import check_symbol

__all__ = [
    "ARCHIVE_RETRY",
    "DEFAULT_ARCHIVE_URL",
    "ArchiveChecksumError",
    "ArchiveCorruptError",
    "ArchiveFile",
    "ArchiveHost",
    "ArchiveNotFoundError",
    "KlineBlock",
    "archive_csv",
    "collector_pause",
    "collector_paused",
    "fetch_archive",
    "kline_block",
    "load_agg_trades",
    "load_kline_block",
    "load_klines",
    "parse_agg_trades_csv",
    "parse_klines_csv",
    "plan_agg_trade_archives",
    "plan_kline_archives",
]

logger = logging.getLogger("aiocea_trio.archives")

DEFAULT_ARCHIVE_URL: Final = "https://data.binance.vision"
_MARKET_DIRS: Final = {
    Market.SPOT: "spot",
    Market.USDM: "futures/um",
    Market.COINM: "futures/cm",
}
_DAY_MS: Final = 86_400_000
_MICROSECOND_DIGITS: Final = 16


class ArchiveChecksumError(BinanceError):
    """An archive's sha256 does not match its ``.CHECKSUM``: it is never used."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"archive {name} failed its checksum (expected sha256 {expected[:16]}…, got "
            f"{actual[:16]}…): not used; delete any cached copy and try again"
        )


class ArchiveCorruptError(BinanceError):
    """An archive that cannot be unzipped, even fetched afresh: it is never used.

    A cached copy that fails to unzip (a torn write, a damaged disk) is deleted and
    fetched again once; this is raised when the fresh copy fails too.
    """

    def __init__(self, name: str, reason: str, *, cached: Path | None = None) -> None:
        self.name = name
        self.reason = reason
        self.cached = cached
        where = f" (cached at {cached})" if cached is not None else ""
        super().__init__(f"archive {name}{where} cannot be unzipped: {reason}; not used")


class ArchiveNotFoundError(BinanceError):
    """``source="archive"`` was asked for a span that has no published archive."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"archive {name} is not published (yet): use source='auto' to let the REST API "
            "serve that span"
        )


@attrs.frozen
class ArchiveFile:
    """One zip file and the open times ``[start, end)`` it covers."""

    path: str  # below the archive root, e.g. "/data/spot/monthly/klines/..."
    start: int
    end: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _month_start(year: int, month: int) -> int:
    return int(dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp() * 1000)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _plan(
    market: Market,
    folder: str,
    stem: str,
    start: int,
    end: int,
    today_start: int,
    *,
    monthly: bool = True,
    daily: bool = True,
    whole_only: bool = False,
) -> tuple[list[ArchiveFile], int]:
    """Monthly files for whole past months, then daily files for whole past days.

    With ``whole_only`` a file is used only when the range covers all of it (the
    first partial month or day is then left to the days, or to the REST API).
    """
    base = f"/data/{_MARKET_DIRS[market]}"
    files: list[ArchiveFile] = []
    cursor = start
    while cursor < end:
        when = dt.datetime.fromtimestamp(cursor / 1000, dt.UTC)
        lo = _month_start(when.year, when.month)
        hi = _month_start(*_next_month(when.year, when.month))
        day = cursor - cursor % _DAY_MS
        if monthly and hi <= today_start and not (whole_only and (cursor > lo or hi > end)):
            name = f"{stem}-{when.year:04d}-{when.month:02d}.zip"
            files.append(ArchiveFile(f"{base}/monthly/{folder}/{name}", cursor, min(hi, end)))
            cursor = min(hi, end)
        elif (
            daily
            and day + _DAY_MS <= today_start
            and not (whole_only and (cursor > day or day + _DAY_MS > end))
        ):
            name = f"{stem}-{when.date().isoformat()}.zip"
            path = f"{base}/daily/{folder}/{name}"
            files.append(ArchiveFile(path, cursor, min(day + _DAY_MS, end)))
            cursor = min(day + _DAY_MS, end)
        else:
            break
    return files, cursor


def plan_kline_archives(
    market: Market | str,
    symbol: str,
    interval: str,
    start: int,
    end: int,
    today_start: int,
) -> tuple[list[ArchiveFile], int]:
    """The archive files for klines in ``[start, end)``, and where the REST tail begins.

    Whole months that ended before ``today_start`` come from monthly files, then
    whole days before it from daily files; everything from the returned
    boundary on (today, or the range's end) is for the REST API. A month of 1s
    candles is 2.6 million rows, so 1s uses daily files only; 1M candles only
    exist in monthly files.
    """
    check_symbol(symbol)
    if not (interval.isascii() and interval.isalnum()):
        raise ValueError(f"interval must be a Binance kline interval such as 1m; got {interval!r}")
    name = "1mo" if interval == "1M" else interval
    return _plan(
        Market(market),
        f"klines/{symbol}/{name}",
        f"{symbol}-{name}",
        start,
        end,
        today_start,
        monthly=interval != "1s",
        daily=interval != "1M",
    )


def plan_agg_trade_archives(
    market: Market | str, symbol: str, start: int, end: int, today_start: int
) -> tuple[list[ArchiveFile], int]:
    """The aggTrades archive files for ``[start, end)``, and where the REST tail begins.

    A busy symbol trades millions of times a day, so a file is used only when the
    range covers all of it: the range is cut to whole days first, and the caller
    fetches a partial first day (``start`` up to the first file) from the REST API.
    """
    check_symbol(symbol)
    first_day = -(-start // _DAY_MS) * _DAY_MS
    files, rest_from = _plan(
        Market(market),
        f"aggTrades/{symbol}",
        f"{symbol}-aggTrades",
        first_day,
        end,
        today_start,
        whole_only=True,
    )
    return (files, rest_from) if files else ([], start)


def _strip_key(request: httpx.Request) -> httpx.Request:
    """Archives are public: the API key never goes to the archive host."""
    if "X-MBX-APIKEY" in request.headers:
        del request.headers["X-MBX-APIKEY"]
    return request


#: How archive downloads are retried (transport errors and 5xx answers) when no client's
#: policy is given: ``fetch_archive`` called with a bare ``httpx.AsyncClient``.
ARCHIVE_RETRY: Final = RetryPolicy(attempts=4, wait_initial=0.2, wait_max=5.0, wait_jitter=0.2)


def _archive_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BinanceTransportError) or (
        isinstance(exc, BinanceResponseError) and exc.status >= 500
    )


async def _get(
    http: httpx.AsyncClient, url: str, retry: RetryPolicy
) -> tuple[int, ArchiveBytes, str]:
    """Stream one file; returns (status, body, sha256 hex of the body).

    Transport errors and 5xx answers are retried as ``retry`` says; when the tries
    run out they are a ``BinanceTransportError`` or ``BinanceResponseError`` naming
    the file.
    """
    path = httpx.URL(url).path

    async def once() -> tuple[int, ArchiveBytes, str]:
        request = _strip_key(http.build_request("GET", url))
        failure: BinanceError
        try:
            response = await http.send(request, stream=True)
            try:
                if response.status_code >= 500:
                    text = (await response.aread())[:200].decode("utf-8", "replace")
                    failure = BinanceResponseError(
                        response.status_code,
                        " ".join(scrub(text).split()),
                        market="archive",
                        method="GET",
                        path=path,
                    )
                elif response.status_code != 200:
                    await response.aread()
                    return response.status_code, b"", ""
                else:
                    return 200, *await _body(response)
            finally:
                await response.aclose()
        except httpx.RequestError as exc:
            failure = BinanceTransportError(
                f"download failed: {type(exc).__name__}: {scrub(str(exc))}",
                market="archive",
                method="GET",
                path=path,
            )
        raise failure  # outside the handlers: httpx's request is not kept as context

    return await retry.run(once, retryable=_archive_retryable, what=f"archive {path}")



#: Archives at least this large are received into an anonymous memory map.
_MAPPED_FROM: Final = 1 << 20


async def _body(response: httpx.Response) -> tuple[ArchiveBytes, str]:
    """An archive's bytes and their sha256, as they arrive.

    A file whose size is announced (no content coding) is received straight into an
    anonymous memory map of that size: no chunk list and no join (twice the file), and
    the pages go back to the OS when the map is closed, where freed heap memory would
    stay with the process (a long download's peak is the frame plus its files in flight).
    """
    digest = hashlib.sha256()
    length = response.headers.get("Content-Length", "")
    identity = response.headers.get("Content-Encoding", "identity") == "identity"
    if identity and length.isdigit() and int(length) >= _MAPPED_FROM:
        size = int(length)
        buffer = mmap.mmap(-1, size)
        at = 0
        with memoryview(buffer) as view:
            async for chunk in response.aiter_raw():
                if at + len(chunk) > size:
                    raise httpx.RemoteProtocolError("more bytes than Content-Length announced")
                view[at : at + len(chunk)] = chunk
                digest.update(chunk)
                at += len(chunk)
        if at != size:
            raise httpx.RemoteProtocolError(f"{at} bytes of the {size} announced")
        return buffer, digest.hexdigest()
    chunks = []
    async for chunk in response.aiter_bytes():
        digest.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks), digest.hexdigest()


def _cache_path(cache_dir: Path, file: ArchiveFile) -> Path:
    """Where ``file`` is kept below ``cache_dir``; never outside it."""
    parts = PurePosixPath(file.path).parts
    if not file.path.startswith("/") or any(p in ("..", ".") or "\\" in p for p in parts[1:]):
        raise ValueError(f"archive path {file.path!r} would leave the cache directory")
    return cache_dir.joinpath(*parts[1:])


async def _forget(cached: Path | None) -> None:
    if cached is not None:
        with trio.CancelScope(shield=True):
            await trio.Path(cached).unlink(missing_ok=True)


def _store(path: Path, data: ArchiveBytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


#: Rows parsed between two moments where the worker thread lets others take the GIL.
_YIELD_EVERY = 8192


def _let_others_run() -> None:
    """Release the GIL for a moment.

    Parsing runs in a worker thread, but holds the GIL; without this the event
    loop thread waits up to the interpreter's switch interval (5 ms) for every
    socket read it does meanwhile, and downloads crawl.
    """
    time.sleep(0)


_PARSE_LIMITERS: dict[object, trio.CapacityLimiter] = {}


def _parse_limiter() -> trio.CapacityLimiter:
    """One parsing thread per trio run: parsing holds the GIL, so more threads only fight."""
    token = trio.lowlevel.current_trio_token()
    limiter = _PARSE_LIMITERS.get(token)
    if limiter is None:
        _PARSE_LIMITERS.clear()  # a previous run's limiter is of no use any more
        limiter = _PARSE_LIMITERS[token] = trio.CapacityLimiter(1)
    return limiter


def _zlib() -> Any:
    """zlib-ng when installed (the ``fast`` extra: twice as fast), else zlib."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return zlib
    return zlib_ng


_inflate: Final[Callable[[bytes | memoryview, int, int], bytes]] = _zlib().decompress
#: An archive's bytes: a large download stays in its memory map (reads as bytes do).
ArchiveBytes = bytes | mmap.mmap
_LOCAL_HEADER: Final = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


def _readable(data: ArchiveBytes) -> Any:
    """A file object over an archive's bytes (a memory map is one already)."""
    if isinstance(data, mmap.mmap):
        data.seek(0)
        return data
    return io.BytesIO(data)


def _csv_member(data: ArchiveBytes) -> tuple[zipfile.ZipInfo, memoryview | None]:
    """The archive's one CSV entry and its raw deflate stream (None when stored)."""
    with zipfile.ZipFile(_readable(data)) as archive:
        infos = [i for i in archive.infolist() if i.filename.endswith(".csv")]
    if len(infos) != 1:
        names = [i.filename for i in infos]
        raise ValueError(f"expected one CSV in the archive, found {names}")
    (info,) = infos
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return info, None
    # The raw deflate stream, found through the local file header: one inflate over it
    # is faster than ZipFile.read's chunked one, and it lets zlib-ng do the work.
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local file header for {info.filename}")
    begin = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    return info, memoryview(data)[begin : begin + info.compress_size]


def _csv_bytes(data: ArchiveBytes) -> bytes:
    """The one CSV inside an archive. Blocking; inflating releases the GIL."""
    info, raw = _csv_member(data)
    if raw is None:
        with zipfile.ZipFile(_readable(data)) as archive:
            return archive.read(info)
    out = _inflate(raw, -zlib.MAX_WBITS, info.file_size or 1)
    if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
        raise zipfile.BadZipFile(f"{info.filename} does not inflate to its size and CRC")
    return out


#: The one CSV inside an archive's bytes (what a typed reader parses itself). Blocking.
archive_csv: Final = _csv_bytes


class CsvStream(io.RawIOBase):
    """The one CSV inside an archive, inflated as it is read: a reader that parses it in
    blocks never holds the whole text (7 MB for a month of 1m candles; the zip is 2.5).

    Its size and CRC are checked when the end is reached (``zipfile.BadZipFile`` then).
    Blocking; inflating releases the GIL.
    """

    _FEED: Final = 1 << 18  # compressed bytes handed to zlib at a time

    def __init__(self, data: ArchiveBytes) -> None:
        super().__init__()
        self._info, raw = _csv_member(data)
        if raw is None:  # stored, not deflated: nothing to inflate
            with zipfile.ZipFile(_readable(data)) as archive:
                raw = memoryview(archive.read(self._info))
            self._inflater: Any = None
        else:
            self._inflater = _zlib().decompressobj(-zlib.MAX_WBITS)
        self._raw, self._at, self._size, self._crc = raw, 0, 0, 0
        self._pending = b""

    def readable(self) -> bool:
        return True

    def peek(self) -> bytes:
        """The first bytes of what ``read`` returns next, without consuming them."""
        if not self._pending:
            self._pending = self._inflate(1 << 16)
        return self._pending

    def read(self, size: int = -1) -> bytes:
        want = size if size >= 0 else sys.maxsize  # -1: to the end
        parts, have = [], 0
        if self._pending:
            parts.append(self._pending[:want])
            self._pending = self._pending[want:]
            have = len(parts[0])
        while have < want:
            part = self._inflate(min(want - have, 1 << 20))
            if not part:
                break
            parts.append(part)
            have += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _inflate(self, size: int) -> bytes:
        """Up to ``size`` more bytes of the CSV; b"" at its end, which is checked."""
        if self._inflater is None:
            out = bytes(self._raw[self._at : self._at + size])
            self._at += len(out)
        else:
            out = b""
            while not out and not self._inflater.eof:
                tail = self._inflater.unconsumed_tail
                if not tail and self._at < len(self._raw):
                    tail = self._raw[self._at : self._at + self._FEED]
                    self._at += self._FEED
                out = self._inflater.decompress(tail, size)
                if not out and not tail:  # all input given and nothing more comes out
                    break
        if out:
            self._size += len(out)
            self._crc = zlib.crc32(out, self._crc)
        elif self._size != self._info.file_size or self._crc != self._info.CRC:
            raise zipfile.BadZipFile(f"{self._info.filename} does not inflate to its size and CRC")
        return out


def _csv_text(data: ArchiveBytes) -> str:
    return _csv_bytes(data).decode("utf-8")


def _csv_rows(text: str, width: int) -> list[list[str]]:
    """The data lines as lists of strings, without a header line.

    Binance's files are plain comma-separated numbers, so ``str.split`` reads
    them several times faster than the csv module; a file with any other shape
    (quoted fields, ragged lines) goes through the csv module instead.
    """
    lines = text.splitlines()
    if lines and not lines[0][:1].isdigit():
        lines = lines[1:]  # futures files may start with a header line
    rows: list[list[str]] = []
    for i in range(0, len(lines), _YIELD_EVERY):
        rows.extend(map(str.split, filter(None, lines[i : i + _YIELD_EVERY]), repeat(",")))
        _let_others_run()
    if rows and (len(set(map(len, rows))) != 1 or len(rows[0]) < width or '"' in lines[0]):
        rows = [r for r in csv.reader(lines) if r]
    return rows


def _to_ms(value: str) -> int:
    """Open/close times: milliseconds, or microseconds (16 digits) in spot files from 2025 on."""
    number = int(value)
    return number // 1000 if len(value.strip()) >= _MICROSECOND_DIGITS else number


class _CollectorPause:
    """Pauses of the cyclic garbage collector that nest, across tasks and threads.

    A month of 1m klines is 45,000 new lists, five years 2.6 million; while they
    pile up, every collection walks all the rows kept so far, again and again
    (2.7 s of a 9.5 s five-year download). The rows hold no cycles, so the
    collector is paused while archive rows are built and kept, and the state it
    was found in comes back when the last pause ends, whoever started it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()

    def begin(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def end(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()


collector_paused: Final = _CollectorPause()


def collector_pause(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """``collector_paused()`` when ``enabled``, else a context that changes nothing.

    For the ``pause_gc`` option: an application that wants the collector running
    throughout (it makes cycles of its own meanwhile) passes ``pause_gc=False``.
    """
    return collector_paused() if enabled else contextlib.nullcontext()


def _klines_parser(pause_gc: bool) -> Callable[[str], list[list[Any]]]:
    return parse_klines_text if pause_gc else _parse_klines


def _agg_trades_parser(pause_gc: bool) -> Callable[[str], list[dict[str, Any]]]:
    return parse_agg_trades_text if pause_gc else _parse_agg_trades


def parse_klines_csv(data: bytes) -> list[list[Any]]:
    """A klines zip as REST rows: ints for times and counts, strings for the rest. Blocking.

    The timestamp unit is decided once per file, from its first row.
    """
    return parse_klines_text(_csv_text(data))


def parse_klines_text(text: str) -> list[list[Any]]:
    """The CSV text of a klines archive as REST rows. Blocking, holds the GIL."""
    with collector_paused():
        return _parse_klines(text)


def _parse_klines(text: str) -> list[list[Any]]:
    rows: list[list[Any]] = _csv_rows(text, 11)
    if not rows:
        return rows
    if min(map(len, rows)) == 11:  # a file without the "ignore" column
        for r in rows:
            if len(r) == 11:
                r.append("0")
    micro = len(rows[0][0].strip()) >= _MICROSECOND_DIGITS
    # One plain loop per unit: the fastest CPython does this (a map/setitem
    # pipeline per column is slower), and a file is one unit throughout.
    for i in range(0, len(rows), _YIELD_EVERY):
        if micro:
            for r in rows[i : i + _YIELD_EVERY]:
                r[0] = int(r[0]) // 1000
                r[6] = int(r[6]) // 1000
                r[8] = int(r[8])
        else:
            for r in rows[i : i + _YIELD_EVERY]:
                r[0] = int(r[0])
                r[6] = int(r[6])
                r[8] = int(r[8])
        _let_others_run()
    return rows


def parse_agg_trades_csv(data: bytes) -> list[dict[str, Any]]:
    """An aggTrades zip as REST objects (``a p q f l T m`` plus spot's ``M``). Blocking."""
    return parse_agg_trades_text(_csv_text(data))


def parse_agg_trades_text(text: str) -> list[dict[str, Any]]:
    """The CSV text of an aggTrades archive as REST objects. Blocking, holds the GIL."""
    with collector_paused():
        return _parse_agg_trades(text)


def _parse_agg_trades(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in _csv_rows(text, 7):
        trade: dict[str, Any] = {
            "a": int(r[0]),
            "p": r[1],
            "q": r[2],
            "f": int(r[3]),
            "l": int(r[4]),
            "T": _to_ms(r[5]),
            "m": r[6].strip().lower() == "true",
        }
        if len(r) > 7:
            trade["M"] = r[7].strip().lower() == "true"
        out.append(trade)
    return out


@attrs.frozen(repr=False)
class KlineBlock:
    """The klines of one archive file kept as CSV bytes, for writers that need no Python rows.

    Building millions of Python lists is what bounds an archive download, so a
    file writer takes the CSV as it comes: ``data`` holds the rows exactly as
    ``download_klines_to_file`` writes the REST API's rows (milliseconds, 12
    columns, ``\\n`` line ends, no header).
    """

    data: bytes
    first: int  # open time of the first row
    last: int  # open time of the last row
    count: int

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"KlineBlock(first={self.first}, last={self.last}, count={self.count})"

    def rows(self, *, pause_gc: bool = True) -> list[list[Any]]:
        """The REST rows. Blocking: run it in a worker thread.

        ``pause_gc``: pause the cyclic garbage collector while the rows are built.
        """
        return _klines_parser(pause_gc)(self.data.decode("utf-8"))


def _micro_to_milli(csv: bytes) -> bytes:
    """Open and close times from microseconds (spot files from 2025 on) to milliseconds."""
    out = []
    for line in csv.splitlines():
        fields = line.split(b",")
        fields[0] = fields[0][:-3]  # floor division by 1000 of a non-negative number
        fields[6] = fields[6][:-3]
        out.append(b",".join(fields))
    out.append(b"")
    return b"\n".join(out)


def kline_block(csv: bytes) -> KlineBlock | None:
    """A klines CSV as a ``KlineBlock``; None when it is not plain 12-column data. Blocking."""
    if b"\r" in csv:
        csv = csv.replace(b"\r\n", b"\n")
    if csv and not csv[:1].isdigit():
        csv = csv.partition(b"\n")[2]  # futures files may start with a header line
    if csv and not csv.endswith(b"\n"):
        csv += b"\n"
    count = csv.count(b"\n")
    if not count or b'"' in csv or b"\n\n" in csv or csv.count(b",") != 11 * count:
        return None
    if len(csv[: csv.index(b",")].strip()) >= _MICROSECOND_DIGITS:
        csv = _micro_to_milli(csv)
    last_line = csv.rfind(b"\n", 0, len(csv) - 1) + 1
    try:
        first = int(csv[: csv.index(b",")])
        last = int(csv[last_line : csv.index(b",", last_line)])
    except ValueError:
        return None
    return KlineBlock(csv, first, last, count)


def _unzip_block(data: bytes) -> KlineBlock | bytes:
    csv = _csv_bytes(data)
    return kline_block(csv) or csv


class _Unreadable(Exception):
    """The zip bytes are damaged (raised in the worker thread, turned into a library error)."""


_DAMAGE: Final = (zipfile.BadZipFile, zlib.error, EOFError, struct.error, NotImplementedError)
T = TypeVar("T")


@attrs.frozen
class ArchiveHost:
    """Where archives come from and how: one host, its cache, its retries, its parsing.

    Attributes:
        http: the connection pool (a client's ``http_client``; the API key is stripped).
        root: the archive root, e.g. ``https://data.binance.vision``.
        cache_dir: keep verified files here; a cached file is never downloaded again.
        retry: how transport errors and 5xx answers are retried (a client's
            ``retry_policy`` when there is a client).
        pause_gc: pause the cyclic garbage collector while a file's rows are built.
    """

    http: httpx.AsyncClient
    root: str
    cache_dir: Path | None = None
    retry: RetryPolicy = ARCHIVE_RETRY
    pause_gc: bool = True

    async def fetch(
        self, file: ArchiveFile, *, use_cached: bool = True
    ) -> tuple[bytes | None, Path | None]:
        """The verified bytes of ``file`` (None: not published), and the cache path they
        were read from (None: downloaded)."""
        data, cached = await self._fetch(file, use_cached=use_cached)
        if isinstance(data, mmap.mmap):
            with data:
                return data[:], cached
        return data, cached

    async def _fetch(
        self, file: ArchiveFile, *, use_cached: bool = True
    ) -> tuple[ArchiveBytes | None, Path | None]:
        """``fetch``, a large download left in its memory map (closed by the caller)."""
        cache_dir = self.cache_dir
        cached = _cache_path(cache_dir, file) if cache_dir is not None else None
        if use_cached and cached is not None and await trio.Path(cached).exists():
            return await trio.Path(cached).read_bytes(), cached
        url = f"{self.root.rstrip('/')}{file.path}"
        status, body, actual = await _get(self.http, url, self.retry)
        if status != 200:
            if status != 404:
                logger.warning(
                    "archive %s: HTTP %d; the REST API serves this span", file.name, status
                )
            return None, None
        status, checksum, _ = await _get(self.http, url + ".CHECKSUM", self.retry)
        if status != 200:
            logger.warning("archive %s has no CHECKSUM; the REST API serves this span", file.name)
            return None, None
        text = bytes(checksum[:4096]).decode("ascii", "replace")
        expected = text.split()[0].lower() if text.strip() else ""
        if expected != actual:
            raise ArchiveChecksumError(file.name, expected, actual)
        if cached is not None:
            await trio.to_thread.run_sync(_store, cached, body)
        return body, None

    async def unzipped(
        self,
        file: ArchiveFile,
        unzip: Callable[[bytes], T],
        *,
        limiter: trio.CapacityLimiter | None = None,
    ) -> T | None:
        """``unzip(bytes of file)`` in a worker thread; None when the file is not published.

        A cached copy that cannot be unzipped is deleted and fetched again, once.
        ``limiter`` bounds the threads (and so the inflated files in memory) at once.

        Raises:
            ArchiveCorruptError: a freshly fetched copy cannot be unzipped either.
        """

        def guarded(data: ArchiveBytes) -> T:
            try:
                return unzip(data)  # type: ignore[arg-type]  # a map reads as bytes do
            except _DAMAGE as exc:
                raise _Unreadable(str(exc) or type(exc).__name__) from exc
            finally:
                if isinstance(data, mmap.mmap):
                    with contextlib.suppress(BufferError):  # still viewed: freed with it
                        data.close()

        keep = _cache_path(self.cache_dir, file) if self.cache_dir is not None else None
        data, cached = await self._fetch(file)
        if data is None:
            return None
        try:
            return await trio.to_thread.run_sync(guarded, data, limiter=limiter)
        except _Unreadable as exc:
            if cached is None:
                await _forget(keep)
                raise ArchiveCorruptError(file.name, str(exc)) from None
            logger.warning(
                "cached archive %s cannot be unzipped (%s): fetching it again", cached, exc
            )
            await _forget(cached)
        data, _ = await self._fetch(file, use_cached=False)
        if data is None:
            return None
        try:
            return await trio.to_thread.run_sync(guarded, data, limiter=limiter)
        except _Unreadable as exc:
            await _forget(keep)  # a damaged copy is never kept
            raise ArchiveCorruptError(file.name, str(exc), cached=cached) from None

    async def load_klines(self, file: ArchiveFile) -> list[list[Any]] | None:
        """Fetch, verify and parse one klines archive, keeping rows in its span; None if absent."""
        # Unzipping releases the GIL: it overlaps other files' parsing. Parsing holds
        # it, so files are parsed one at a time.
        text = await self.unzipped(file, _csv_text)
        if text is None:
            return None
        return await self._rows_in_span(text, file)

    async def load_kline_block(self, file: ArchiveFile) -> KlineBlock | list[list[Any]] | None:
        """Like ``load_klines``, but keeps a file that lies inside its span as CSV bytes.

        Rows (parsed) come back instead for a file that is partly outside the span or
        not plain 12-column data; None when the file is not published.
        """
        block = await self.unzipped(file, _unzip_block)
        if block is None:
            return None
        if isinstance(block, KlineBlock) and file.start <= block.first and block.last < file.end:
            return block
        csv = block.data if isinstance(block, KlineBlock) else block
        return await self._rows_in_span(csv.decode("utf-8"), file)

    async def load_agg_trades(self, file: ArchiveFile) -> list[dict[str, Any]] | None:
        """Fetch, verify and parse one aggTrades archive, keeping its span; None if absent."""
        text = await self.unzipped(file, _csv_text)
        if text is None:
            return None
        trades: Sequence[dict[str, Any]] = await trio.to_thread.run_sync(
            _agg_trades_parser(self.pause_gc), text, limiter=_parse_limiter()
        )
        return [t for t in trades if file.start <= t["T"] < file.end]

    async def rows_in_span(self, csv: bytes, file: ArchiveFile) -> list[list[Any]]:
        """A klines CSV (``file``'s, unzipped) as rows inside ``file``'s span: for a file
        a typed reader refuses (not plain 12-column data)."""
        return await self._rows_in_span(csv.decode("utf-8"), file)

    async def _rows_in_span(self, text: str, file: ArchiveFile) -> list[list[Any]]:
        """Parse a klines CSV (one file at a time: parsing holds the GIL); keep ``file``'s span."""
        rows: list[list[Any]] = await trio.to_thread.run_sync(
            _klines_parser(self.pause_gc), text, limiter=_parse_limiter()
        )
        if rows and file.start <= rows[0][0] and rows[-1][0] < file.end:
            return rows  # the usual case: the file lies inside the span (rows are sorted)
        return [r for r in rows if file.start <= r[0] < file.end]


async def fetch_archive(
    http: httpx.AsyncClient,
    root: str,
    file: ArchiveFile,
    *,
    cache_dir: Path | None = None,
    retry: RetryPolicy = ARCHIVE_RETRY,
) -> bytes | None:
    """The verified zip bytes of ``file``, or None when it is not published (404).

    With ``cache_dir`` a verified file is kept there, and a cached file is used
    without any download. ``retry`` says how transport errors and 5xx answers are
    retried (``ARCHIVE_RETRY``, four tries, by default).

    Raises:
        ArchiveChecksumError: the bytes do not match the published sha256.
    """
    data, _ = await ArchiveHost(http, root, cache_dir, retry).fetch(file)
    return data


async def load_klines(
    http: httpx.AsyncClient, root: str, file: ArchiveFile, *, cache_dir: Path | None = None
) -> list[list[Any]] | None:
    """``ArchiveHost(http, root, cache_dir).load_klines(file)``."""
    return await ArchiveHost(http, root, cache_dir).load_klines(file)


async def load_kline_block(
    http: httpx.AsyncClient, root: str, file: ArchiveFile, *, cache_dir: Path | None = None
) -> KlineBlock | list[list[Any]] | None:
    """``ArchiveHost(http, root, cache_dir).load_kline_block(file)``."""
    return await ArchiveHost(http, root, cache_dir).load_kline_block(file)


async def load_agg_trades(
    http: httpx.AsyncClient, root: str, file: ArchiveFile, *, cache_dir: Path | None = None
) -> list[dict[str, Any]] | None:
    """``ArchiveHost(http, root, cache_dir).load_agg_trades(file)``."""
    return await ArchiveHost(http, root, cache_dir).load_agg_trades(file)
