"""Klines into a CSV file that resumes: the ``<name>.meta.json`` sidecar, the torn-tail check.

The file holds Binance's 12 columns with a header line and ``\\n`` line ends, as
Binance's archives do. Beside it, ``<name>.meta.json`` records what it holds (market,
symbol, interval), so that a resume never appends another symbol's rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import trio

from ..archives import KlineBlock
from ..markets import Market
from .klines import Row, checked_kline_args, kline_stream
from .source import HistoryClient, HistoryOptions, Progress
from .times import TimeLike, candle_fits, interval_of, next_open

__all__ = ["KLINE_COLUMNS", "download_klines_to_file", "sidecar_path"]

logger = logging.getLogger("aiocea_trio.history")


async def download_klines_to_file(
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
    """Append klines to a CSV file, resuming after the last row already in it.

    The file holds Binance's 12 columns with a header line and ``\\n`` line ends,
    as Binance's archives do. Writing happens in a worker thread, batch by batch,
    so memory stays flat. Whole archive files are written as the bytes they hold,
    never turned into Python rows (the bytes are the ones REST rows make), which
    makes an archive download to a file many times faster than one into memory.
    Returns the number of rows written by this call.

    What the file holds (market, symbol, interval) is kept beside it in
    ``<name>.meta.json``, written before the first row. Resuming checks it and the
    last row, and drops a torn last line (a crash, a full disk) first.

    ``pause_gc`` is as in ``open_kline_stream``.

    Raises:
        ValueError: a bad argument; or the file holds other klines (another symbol,
            interval or market), or is not a klines CSV: nothing is written then.
    """
    target = Path(path)
    query, options = checked_kline_args(
        market, symbol, interval, start, end,
        lambda: HistoryOptions(
            source, max_concurrency, None, archive_url, cache_dir, pause_gc
        ),
    )
    identity = _FileIdentity(query.market.value, symbol, interval)
    last = await trio.to_thread.run_sync(_prepare_csv, target, identity)
    if last is not None:
        query = query.over(max(query.start, next_open(interval, last)), query.end)
    if query.start >= query.end:
        return 0
    handle = await trio.to_thread.run_sync(_open_csv, target)
    try:
        async with kline_stream(client, query, options, progress, blocks=True) as batches:
            return await _append(handle, batches)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(handle.close)


async def _append(handle: Any, batches: trio.MemoryReceiveChannel[list[Row] | KlineBlock]) -> int:
    """Write every batch (in a worker thread); the number of rows written."""
    written = 0
    async for batch in batches:
        await trio.to_thread.run_sync(_write_rows, handle, batch)
        written += len(batch)
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


_HEADER: Final = (",".join(KLINE_COLUMNS) + "\n").encode("ascii")
_SIDECAR_SUFFIX: Final = ".meta.json"
_SIDECAR_FORMAT: Final = "aiocea-trio klines csv"
_LONGEST_ROW: Final = 4096  # a kline row is under 200 bytes; anything longer is not one


@attrs.frozen
class _FileIdentity:
    """What a klines CSV holds: recorded beside it, checked before appending."""

    market: str
    symbol: str
    interval: str

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} klines ({self.market})"


def sidecar_path(path: str | Path) -> Path:
    """Where ``download_klines_to_file`` records what ``path`` holds: ``<name>.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _write_sidecar(path: Path, identity: _FileIdentity) -> None:
    """Write the sidecar atomically: a crash leaves the old one or the new one, whole."""
    meta = sidecar_path(path)
    body = {"format": _SIDECAR_FORMAT, "version": 1, **attrs.asdict(identity)}
    tmp = meta.with_name(meta.name + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(body, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, meta)


def _read_sidecar(path: Path) -> _FileIdentity | None:
    meta = sidecar_path(path)
    try:
        text = meta.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        body = json.loads(text)
        if body.get("format") != _SIDECAR_FORMAT:
            raise ValueError("another format")
        return _FileIdentity(str(body["market"]), str(body["symbol"]), str(body["interval"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(
            f"{meta} does not say what {path.name} holds (not a file this library wrote): "
            "refusing to append; delete it if the CSV is yours"
        ) from None


def _rfind_newline(f: BinaryIO, before: int, *, limit: int | None = None) -> int:
    """Offset of the last ``\\n`` before offset ``before`` (-1: none within ``limit``)."""
    chunk = 1 << 16
    pos = before
    floor = 0 if limit is None else max(0, before - limit)
    while pos > floor:
        begin = max(floor, pos - chunk)
        f.seek(begin)
        at = f.read(pos - begin).rfind(b"\n")
        if at >= 0:
            return begin + at
        pos = begin
    return -1


def _row_times(line: bytes) -> tuple[int, int] | None:
    """(open time, close time) of a well-formed kline CSV row, else None."""
    fields = line.split(b",")
    if len(fields) != 12 or not all(fields[i].isdigit() for i in (0, 6, 8)):
        return None
    try:
        for i in (1, 2, 3, 4, 5, 7, 9, 10, 11):
            float(fields[i])
    except ValueError:
        return None
    return int(fields[0]), int(fields[6])


def _prepare_csv(path: Path, identity: _FileIdentity) -> int | None:
    """Make ``path`` ready to append ``identity``'s klines; the last open time in it. Blocking.

    A new or empty file gets its sidecar first (before any row). An existing one is
    checked (the sidecar names the same market, symbol and interval; the first line is
    the header; the last complete line is a candle of this interval) before anything
    is changed, then a torn last line (no ``\\n``) is cut off. A file from a version
    that kept no sidecar is taken when its rows are this interval's candles (its
    symbol and market cannot be checked: a warning says so) and gets a sidecar.

    Raises:
        ValueError: the file holds something else; it is left as it is.
    """
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        _write_sidecar(path, identity)
        return None
    recorded = _read_sidecar(path)
    if recorded is not None and recorded != identity:
        raise ValueError(
            f"{path} holds {recorded} (per {sidecar_path(path).name}), not {identity}: "
            "refusing to append; choose another file"
        )
    with path.open("r+b") as f:
        head = f.read(len(_HEADER))
        if head != _HEADER and not (len(head) == size and _HEADER.startswith(head)):
            first = head.partition(b"\n")[0][:80]
            raise ValueError(
                f"{path} is not a klines CSV written by aiocea-trio (its first line is "
                f"{first!r}, not the header): refusing to append"
            )
        end = _rfind_newline(f, size) + 1  # just past the last complete line
        last = _last_open_time(f, path, end, identity) if end > len(_HEADER) else None
        if end < size:
            logger.warning(
                "%s: dropped a torn last line (%d bytes, from an interrupted write)",
                path,
                size - end,
            )
            f.truncate(end)
    if recorded is None:
        if last is not None:
            logger.warning(
                "%s has no %s (written by an older version): its rows are %s candles, but "
                "the symbol and market cannot be checked; taking it as %s",
                path,
                sidecar_path(path).name,
                identity.interval,
                identity,
            )
        _write_sidecar(path, identity)
    return last


def _last_open_time(f: BinaryIO, path: Path, end: int, identity: _FileIdentity) -> int:
    """The open time of the complete line ending at ``end``, checked to be ``identity``'s."""
    begin = _rfind_newline(f, end - 1, limit=_LONGEST_ROW) + 1
    f.seek(begin)
    line = f.read(end - 1 - begin)
    times = _row_times(line) if begin >= len(_HEADER) else None
    if times is None:
        raise ValueError(
            f"{path}: its last complete line is not a kline row ({line[:80]!r}): "
            "refusing to append; remove that line, or the file"
        )
    if not candle_fits(identity.interval, *times):
        raise ValueError(
            f"{path} holds {interval_of(*times)} candles, not {identity}: "
            "refusing to append; choose another file"
        )
    return times[0]


def _open_csv(path: Path) -> Any:
    new = not path.exists() or path.stat().st_size == 0
    handle = path.open("ab")
    if new:
        handle.write(_HEADER)
        handle.flush()
    return handle


def _write_rows(handle: Any, rows: list[Row] | KlineBlock) -> None:
    """Append a batch in one write, then flush: rows reach the file whole, in order."""
    if not rows:
        return
    if isinstance(rows, KlineBlock):
        data = rows.data
    else:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        data = text.getvalue().encode("utf-8")
    if data.count(b",") != 11 * data.count(b"\n") or b'"' in data or not data.endswith(b"\n"):
        # Never a malformed row in the file (REST rows were checked when fetched).
        raise ValueError("refusing to write klines that are not plain 12-column rows")
    handle.write(data)
    handle.flush()

