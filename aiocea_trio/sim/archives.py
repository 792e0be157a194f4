"""Binance's public data archives (data.binance.vision), served by the simulator.

Binance publishes history as zip files on a separate host; the simulator serves the same paths
on its own host, built from the same deterministic candles and trades as its REST endpoints:

    /data/<market>/<period>/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<date>.zip
    /data/<market>/<period>/aggTrades/<SYMBOL>/<SYMBOL>-aggTrades-<date>.zip

``<market>`` is ``spot``, ``futures/um`` or ``futures/cm``, ``<period>`` ``monthly`` (date
``YYYY-MM``) or ``daily`` (``YYYY-MM-DD``), intervals are the API's except ``1mo`` for ``1M``.
Each zip holds one CSV, ``<stem>.csv``, and has a ``<file>.zip.CHECKSUM`` beside it (one
``sha256sum`` line). Rows are exactly the REST rows of the same open times (klines) or trades
(aggTrades); spot files dated 2025-01-01 or later carry microsecond times, futures files start
with a header line.

A file is published once its period has ended (and its last candle has closed) before the
simulator's current UTC day; unpublished files, unknown symbols or intervals, periods before a
symbol's listing and names matching ``missing_archives`` answer 404. Archives cost no request
weight and need no key.

Files are built once, in a worker thread (the event loop never blocks), from a private
``MarketData`` (its caches are not shared with the event loop's), kept in an LRU cache bounded by
total bytes, and streamed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import re
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Final

import attrs
import trio
import trio.testing
from starlette.responses import Response, StreamingResponse

from ..endpoints import KLINE_INTERVALS
from ..markets import Market
from .market import MarketData, Series, fixed_format, interval_bounds, interval_seconds
from .symbols import SymbolSpec

__all__ = [
    "AGG_TRADES_HEADER",
    "KLINES_HEADER",
    "MARKET_DIRS",
    "MICROSECONDS_FROM_S",
    "ArchivePath",
    "ArchiveServer",
    "ArchiveStatistics",
    "parse_archive_path",
]

#: Simulator market -> directory below ``/data/``.
MARKET_DIRS: Final = {"spot": "spot", "usdm": "futures/um", "coinm": "futures/cm"}
#: Spot files dated from this day on (2025-01-01, epoch seconds) carry microsecond times.
MICROSECONDS_FROM_S: Final = 1_735_689_600
#: The first line of futures klines files.
KLINES_HEADER: Final = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)
#: The first line of futures aggTrades files (spot files have no header and one more column,
#: ``is_best_match``).
AGG_TRADES_HEADER: Final = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
)

_DAY: Final = 86_400
_FINAL: Final = 1 << 62  # a "now" at which every candle is closed
_CHUNK: Final = 1 << 20  # bytes per streamed body chunk
_COMPRESSLEVEL: Final = 1  # deflate level: 4x faster than 6 for 15 % more bytes
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_DAY_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_NOT_FOUND = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    "<Message>The specified key does not exist.</Message><Key>{key}</Key></Error>"
)


@attrs.frozen
class ArchivePath:
    """One archive file, parsed from its path.

    Attributes:
        market: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        period: ``"monthly"`` or ``"daily"``.
        kind: ``"klines"`` or ``"aggTrades"``.
        symbol: the instrument.
        interval: the API's interval name (``"1M"`` for ``1mo`` files); ``""`` for aggTrades.
        start_s / end_s: the period, epoch seconds (end exclusive).
        path: the zip's path (``/data/...zip``).
    """

    market: str
    period: str
    kind: str
    symbol: str
    interval: str
    start_s: int
    end_s: int
    path: str

    @property
    def name(self) -> str:
        """The zip file name, e.g. ``BTCUSDT-1m-2024-03.zip``."""
        return self.path.rsplit("/", 1)[1]

    @property
    def stem(self) -> str:
        return self.name[: -len(".zip")]

    @property
    def microseconds(self) -> bool:
        """Spot files dated 2025-01-01 or later carry microsecond times."""
        return self.market == "spot" and self.start_s >= MICROSECONDS_FROM_S


def _epoch(year: int, month: int, day: int = 1) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp())


def parse_archive_path(path: str) -> ArchivePath | None:
    """Parse ``/data/...zip`` (without ``.CHECKSUM``); None when it is no archive name.

    Only the shape is checked here (market directory, period, kind, matching names, a valid
    date, a known interval); symbols and publication are the server's business.
    """
    market = next((m for m, d in MARKET_DIRS.items() if path.startswith(f"/data/{d}/")), None)
    if market is None or not path.endswith(".zip"):
        return None
    parts = path[len(f"/data/{MARKET_DIRS[market]}/") :].split("/")
    if len(parts) == 5 and parts[1] == "klines":
        period, kind, symbol, label, name = parts
        if label == "1M" or (label not in KLINE_INTERVALS[Market.SPOT] and label != "1mo"):
            return None
        interval = "1M" if label == "1mo" else label
        if interval == "1s" and market != "spot":
            return None
    elif len(parts) == 4 and parts[1] == "aggTrades":
        period, kind, symbol, name = parts
        label = "aggTrades"
        interval = ""
    else:
        return None
    prefix = f"{symbol}-{label}-"
    if not symbol or not name.startswith(prefix):
        return None
    date = name[len(prefix) : -len(".zip")]
    try:
        if period == "monthly":
            match = _MONTH.fullmatch(date)
            if match is None:
                return None
            year, month = int(match[1]), int(match[2])
            start = _epoch(year, month)
            end = _epoch(year + 1, 1) if month == 12 else _epoch(year, month + 1)
        elif period == "daily":
            match = _DAY_DATE.fullmatch(date)
            if match is None:
                return None
            start = _epoch(int(match[1]), int(match[2]), int(match[3]))
            end = start + _DAY
        else:
            return None
    except ValueError:  # month 13, February 30, ...
        return None
    if start < 0:
        return None
    return ArchivePath(market, period, kind, symbol, interval, start, end, path)


def _kline_opens(series: Series, interval: str, start_s: int, end_s: int) -> Sequence[int]:
    """Open times (s) of the candles opening in [start_s, end_s), from the symbol's first."""
    lo = max(start_s, interval_bounds(interval, series.onboard_s)[0])
    o, c = interval_bounds(interval, lo)
    t = o if o == lo else c
    size = interval_seconds(interval)
    if size:
        return range(t, end_s, size)
    out = []
    while t < end_s:
        out.append(t)
        t = interval_bounds(interval, t)[1]
    return out


def published_at(series: Series, target: ArchivePath) -> int:
    """Epoch second from which ``target`` is published: its period's end, or the close of its
    last candle if that is later (a weekly candle opening on a month's last Monday)."""
    if target.kind != "klines":
        return target.end_s
    last_open, last_close = interval_bounds(target.interval, target.end_s - 1)
    return max(target.end_s, last_close) if last_open >= target.start_s else target.end_s


def estimated_rows(series: Series, target: ArchivePath) -> int:
    """Rows of ``target``: exact for klines, an upper bound for aggTrades (the day candles'
    trade counts)."""
    start = max(target.start_s, series.onboard_s)
    if target.kind == "klines":
        size = interval_seconds(target.interval)
        return (target.end_s - start) // size + 1 if size else 1
    first = start // _DAY
    return sum(series.block(3, d)[6] for d in range(first, -(-target.end_s // _DAY)))


def _kline_chunks(md: MarketData, series: Series, target: ArchivePath) -> Iterator[list[str]]:
    """The CSV lines of a klines file, a day (at most) at a time."""
    interval = target.interval
    unit = 1_000_000 if target.microseconds else 1000
    opens = _kline_opens(series, interval, target.start_s, target.end_s)
    step = max(1, _DAY // (interval_seconds(interval) or _DAY))
    for i in range(0, len(opens), step):
        yield md.kline_texts(series, interval, opens[i : i + step], _FINAL, csv=True, unit=unit)


def _agg_trade_chunks(series: Series, target: ArchivePath) -> Iterator[list[str]]:
    """The CSV lines of an aggTrades file (one trade each, as the REST API's), an hour at a
    time."""
    spec = series.spec
    price = fixed_format(spec.price_decimals, spec.display_price_decimals)
    qty = fixed_format(spec.qty_decimals, spec.display_qty_decimals)
    template = f"%d,{price},{qty},%d,%d,%d,%s" + (",True" if spec.market == "spot" else "")
    pu, vu = 10**spec.price_decimals, 10**spec.qty_decimals
    unit = 1000 if target.microseconds else 1
    for hour in range(target.start_s, target.end_s, 3600):
        yield [
            template % (a, p // pu, p % pu, q // vu, q % vu, a, a, t * unit, m)
            for second in series.trades_by_second(hour, min(hour + 3600, target.end_s))
            for a, t, p, q, m in second
        ]


def _csv_chunks(md: MarketData, series: Series, target: ArchivePath) -> Iterator[list[str]]:
    if target.kind == "klines":
        if target.market != "spot":
            yield [KLINES_HEADER]
        yield from _kline_chunks(md, series, target)
    else:
        if target.market != "spot":
            yield [AGG_TRADES_HEADER]
        yield from _agg_trade_chunks(series, target)


def build_zip(md: MarketData, target: ArchivePath) -> bytes:
    """The zip file of ``target``: one deflated CSV, ``\\n`` line ends. Blocking.

    Deterministic: the entry's timestamp is the period's end, so a rebuild (after the cache
    dropped the file) gives the same bytes and the same checksum.
    """
    series = md.get(target.market, target.symbol)
    if series is None:
        raise KeyError(f"unknown symbol {target.market} {target.symbol}")
    end = dt.datetime.fromtimestamp(target.end_s, dt.UTC)
    info = zipfile.ZipInfo(f"{target.stem}.csv", date_time=(end.year, end.month, end.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    # The level rides on the ZipInfo (``_compresslevel``; 3.13 aliases it to compress_level).
    info._compresslevel = _COMPRESSLEVEL  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        with archive.open(info, "w", force_zip64=target.kind == "aggTrades") as out:
            for lines in _csv_chunks(md, series, target):
                if lines:
                    lines.append("")
                    out.write("\n".join(lines).encode())
    return buffer.getvalue()


@attrs.frozen
class _Built:
    data: bytes
    sha256: str


@attrs.define(eq=False)
class _Pending:
    done: trio.Event = attrs.field(factory=trio.Event)
    result: _Built | None = None


@attrs.frozen
class ArchiveStatistics:
    """Archive serving so far.

    Attributes:
        builds: zip files built (a file dropped from the cache and asked again counts twice).
        build_seconds: wall time spent building them (in worker threads).
        cached_files / cached_bytes: what the cache holds now.
        served: archive requests answered 200 (zips and checksums).
        not_found: archive requests answered 404.
    """

    builds: int
    build_seconds: float
    cached_files: int
    cached_bytes: int
    served: int
    not_found: int


class ArchiveServer:
    """Builds, caches and serves the archive files of one simulator.

    Args:
        seed / specs: as the simulator's (the files hold the same data as its REST API).
        market_data: the simulator's own generator, for cheap look-ups on the event loop
            (symbols, listing dates, row estimates); files are built from a private one.
        cache_bytes: the cache keeps built zips up to this many bytes in total (least recently
            used dropped first); a larger file is served but not kept.
        missing: a file whose path (which ends with its name) contains one of these strings
            answers 404, zip and checksum alike.
        corrupt: a matching file is served with one byte changed; its checksum stays the true
            file's, so a verifying client rejects it.
        max_rows: files of more rows answer 404 (a month of a busy symbol's aggTrades is ~100
            million rows: too much to build on demand); a client falls back to REST for them.
    """

    def __init__(
        self,
        seed: int,
        specs: Sequence[SymbolSpec],
        market_data: MarketData,
        *,
        cache_bytes: int = 512 * 2**20,
        missing: Sequence[str] = (),
        corrupt: Sequence[str] = (),
        max_rows: int = 5_000_000,
    ) -> None:
        # A private generator: builds run in worker threads, and the event loop's caches are
        # not thread-safe. The lock lets one build at a time use it.
        self._md = MarketData(seed, list(specs))
        self._lock = threading.Lock()
        self._lookup = market_data
        self.cache_bytes = cache_bytes
        self.max_rows = max_rows
        self.missing = tuple(missing)
        self.corrupt = tuple(corrupt)
        self._cache: OrderedDict[str, _Built] = OrderedDict()
        self._held = 0
        self._pending: dict[str, _Pending] = {}
        self._builds = 0
        self._build_seconds = 0.0
        self._served = 0
        self._not_found = 0

    # -- what exists ---------------------------------------------------------------------

    def resolve(self, path: str, now_ms: int) -> ArchivePath | None:
        """The archive at ``path`` (a ``.zip`` path) if it is published at ``now_ms``, else
        None (unknown name, symbol or interval, not yet published, before the listing, named
        in ``missing``, or more than ``max_rows`` rows). Must run on the event loop."""
        target = parse_archive_path(path)
        if target is None or any(m in path for m in self.missing):
            return None
        series = self._lookup.get(target.market, target.symbol)
        if series is None or target.end_s <= series.onboard_s:
            return None
        today = now_ms // 1000 // _DAY * _DAY
        if published_at(series, target) > today:
            return None
        if estimated_rows(series, target) > self.max_rows:
            return None
        return target

    # -- building and caching ------------------------------------------------------------

    def _build(self, target: ArchivePath) -> _Built:
        with self._lock:
            began = time.perf_counter()
            data = build_zip(self._md, target)
            self._build_seconds += time.perf_counter() - began
            self._builds += 1
        return _Built(data, hashlib.sha256(data).hexdigest())

    def _remember(self, path: str, built: _Built) -> None:
        size = len(built.data)
        if size > self.cache_bytes:
            return
        self._cache[path] = built
        self._held += size
        while self._held > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._held -= len(dropped.data)

    async def get(self, target: ArchivePath) -> _Built:
        """The built file (from the cache, or built now in a worker thread).

        Concurrent requests for the same file share one build. Under an autojumping
        ``trio.testing.MockClock`` the build runs inline instead: virtual time then cannot jump
        to the next deadline in the middle of it, and the autojump loop does not spin against
        the worker for the GIL (it would halve the build's speed). A checkpoint.
        """
        hit = self._cache.get(target.path)
        if hit is not None:
            self._cache.move_to_end(target.path)
            await trio.lowlevel.checkpoint()
            return hit
        pending = self._pending.get(target.path)
        if pending is not None:
            await pending.done.wait()
            if pending.result is not None:
                return pending.result
            return await self.get(target)  # that build failed or was abandoned: try again
        pending = self._pending[target.path] = _Pending()
        try:
            if _autojumping():
                await trio.lowlevel.checkpoint()
                built = self._build(target)
            else:
                built = await trio.to_thread.run_sync(self._build, target)
            self._remember(target.path, built)
            pending.result = built
            return built
        finally:
            del self._pending[target.path]
            pending.done.set()

    def statistics(self) -> ArchiveStatistics:
        return ArchiveStatistics(
            builds=self._builds,
            build_seconds=self._build_seconds,
            cached_files=len(self._cache),
            cached_bytes=self._held,
            served=self._served,
            not_found=self._not_found,
        )

    # -- HTTP ----------------------------------------------------------------------------

    def _not_found_response(self, path: str) -> Response:
        self._not_found += 1
        return Response(
            _NOT_FOUND.format(key=path.lstrip("/")), status_code=404, media_type="application/xml"
        )

    async def respond(self, method: str, path: str, now_ms: int) -> Response:
        """Answer one request below ``/data/`` (no weight, no key, no faults)."""
        if method not in ("GET", "HEAD"):
            return Response(b"", status_code=405, headers={"allow": "GET, HEAD"})
        checksum = path.endswith(".CHECKSUM")
        zip_path = path[: -len(".CHECKSUM")] if checksum else path
        target = self.resolve(zip_path, now_ms)
        if target is None:
            return self._not_found_response(path)
        built = await self.get(target)
        self._served += 1
        if checksum:
            return Response(f"{built.sha256}  {target.name}\n".encode(), media_type="text/plain")
        data = built.data
        if any(c in zip_path for c in self.corrupt):
            damaged = bytearray(data)
            damaged[len(damaged) // 2] ^= 0xFF
            data = bytes(damaged)
        return StreamingResponse(
            _chunks(data),
            media_type="application/zip",
            headers={"content-length": str(len(data))},
        )


def _autojumping() -> bool:
    clock = trio.lowlevel.current_clock()
    return isinstance(clock, trio.testing.MockClock) and clock.autojump_threshold != math.inf


async def _chunks(data: bytes) -> AsyncIterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(view), _CHUNK):
        yield view[i : i + _CHUNK]
