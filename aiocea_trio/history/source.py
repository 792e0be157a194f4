"""Where a download's rows come from: archive files and REST pages, fetched in order.

``Source`` is the one planner of every download that can use Binance's archives
(klines and aggregate trades): it knows the archive files and the REST spans of a
range, fetches them concurrently, hands each on in time order, and lets the REST
API serve exactly the span of an archive file that is not published.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, runtime_checkable

import attrs
import httpx
import trio

from ..archives import DEFAULT_ARCHIVE_URL, ArchiveFile, ArchiveHost, ArchiveNotFoundError
from ..retries import RetryPolicy

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ArchiveClient",
    "ArchivePlan",
    "ClockedClient",
    "Gap",
    "HistoryClient",
    "HistoryOptions",
    "HistoryRows",
    "Progress",
    "Source",
    "Spans",
    "fetch_end",
    "ordered_pages",
    "server_now",
]

logger = logging.getLogger("aiocea_trio.history")

Span = TypeVar("Span")
Span_co = TypeVar("Span_co", covariant=True)
T = TypeVar("T", bound=Sized)
R = TypeVar("R")

_DAY_MS: Final = 86_400_000
#: How far past the client's estimate of the exchange's clock a download still asks: the
#: estimate may lag the exchange by a little, never by seconds.
CLOCK_SLACK_MS: Final = 5_000
_SOURCES: Final = ("auto", "rest", "archive")


class HistoryClient(Protocol):
    """What every history download needs from a client: one request."""

    async def request(
        self, method: str, path: str, params: Any = None, *, signed: bool = False
    ) -> Any: ...


@runtime_checkable
class ClockedClient(HistoryClient, Protocol):
    """A client that estimates the exchange's clock: nothing is asked past its now."""

    def server_time_ms(self) -> int: ...


@runtime_checkable
class ArchiveClient(ClockedClient, Protocol):
    """A client that can fetch Binance's archives too (``BinanceClient`` is one)."""

    @property
    def http_client(self) -> httpx.AsyncClient: ...

    @property
    def base_url(self) -> str | None: ...

    @property
    def retry_policy(self) -> RetryPolicy: ...


class Spans(Protocol[Span_co]):
    """REST spans of a range, computed when asked (``KlinePages``, hours of trades)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Span_co: ...


@attrs.frozen
class Gap:
    """Open times ``[start, end)`` in which the exchange has no rows."""

    start: int
    end: int


class HistoryRows(list[Any]):
    """The rows, in time order, plus the gaps the exchange's data has in the range.

    ``kind`` says what the rows are (``"klines"``, ``"agg_trades"``, ``"funding_rates"``;
    None: told from the first row), so that ``to_arrow``, ``to_pandas`` and ``to_polars``
    give the right typed columns even for an empty download.
    """

    gaps: list[Gap]
    kind: str | None

    def __init__(
        self, rows: Sequence[Any] = (), gaps: Sequence[Gap] = (), kind: str | None = None
    ) -> None:
        super().__init__(rows)
        self.gaps = list(gaps)
        self.kind = kind

    def to_arrow(self, decimal: bool = False) -> Any:
        """The rows as a typed ``pyarrow.Table`` (see ``aiocea_trio.frames``). Blocking.

        Times are ``timestamp[ms, tz=UTC]``, counts and ids int64, prices and volumes
        float64, or ``decimal128(38, 8)`` (exact) with ``decimal=True``.
        """
        from ..frames import rows_to_arrow

        return rows_to_arrow(self, self.kind, decimal=decimal)

    def to_pandas(self, decimal: bool = False) -> Any:
        """The rows as a typed pandas DataFrame: ``datetime64[ms, UTC]``, float64, int64.

        With ``decimal=True`` prices and volumes are exact, pyarrow-backed decimals
        (``pd.ArrowDtype(pa.decimal128(38, 8))``), not Python ``Decimal`` objects.
        """
        from ..frames import rows_to_pandas

        return rows_to_pandas(self, self.kind, decimal=decimal)

    def to_polars(self, decimal: bool = False) -> pl.DataFrame:
        """The rows as a typed polars DataFrame: ``Datetime("ms", "UTC")``, Float64 (or
        ``Decimal(38, 8)`` with ``decimal=True``), Int64."""
        from ..frames import rows_to_polars

        return rows_to_polars(self, self.kind, decimal=decimal)


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

    def add(self, other: Progress) -> None:
        """Count ``other``'s pages and weight too (a span the REST API served instead)."""
        self.pages_total += other.pages_total
        self.pages_done += other.pages_done
        self.weight += other.weight


def _check_count(name: str, value: object) -> None:
    """An int >= 1 (``True``, ``2.0`` or NaN are refused here, not deep inside trio)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1; got {value!r}")


def _check_source(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in _SOURCES:
        raise ValueError(f"source must be 'auto', 'rest' or 'archive'; got {value!r}")


def _check_concurrency(_: object, __: attrs.Attribute[int], value: int) -> None:
    _check_count("max_concurrency", value)


def _check_page_size(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None:
        _check_count("page_size", value)


def _to_path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


@attrs.frozen
class HistoryOptions:
    """How a download fetches, the same for every kind of history; checked when built.

    Attributes:
        source: ``"auto"`` takes whole past months and days from Binance's archives and
            the rest from the REST API; ``"rest"`` and ``"archive"`` force one path.
        max_concurrency: pages and archive files in flight (and buffered) at most.
        page_size: kline rows per request (None: the cheapest per row for the market).
        archive_url: the archive root (None: the client's ``base_url``, else
            data.binance.vision).
        cache_dir: keep verified archives here.
        pause_gc: pause the cyclic garbage collector while archive rows are built and
            kept (the rows hold no cycles); ``False`` leaves it alone.
    """

    source: str = attrs.field(default="auto", validator=_check_source)
    max_concurrency: int = attrs.field(default=8, validator=_check_concurrency)
    page_size: int | None = attrs.field(default=None, validator=_check_page_size)
    archive_url: str | None = None
    cache_dir: Path | None = attrs.field(default=None, converter=_to_path)
    pause_gc: bool = True

    def rest_only(self) -> HistoryOptions:
        """These options with ``source="rest"`` (for a span no archive serves)."""
        return attrs.evolve(self, source="rest")


def server_now(client: HistoryClient) -> int | None:
    """The exchange's time as the client estimates it, when the client has a clock."""
    return int(client.server_time_ms()) if isinstance(client, ClockedClient) else None


def fetch_end(client: HistoryClient, hi: int) -> int:
    """``hi``, or the exchange's now (and a little) when ``hi`` is later."""
    now = server_now(client)
    return hi if now is None else min(hi, now + CLOCK_SLACK_MS + 1)


@attrs.frozen
class ArchivePlan:
    """The archive side of one download: the host, its files, where the REST API takes over.

    ``rest_from`` is None when no archive is used at all (``source="rest"``, or a client
    that cannot fetch archives).
    """

    host: ArchiveHost | None
    files: Sequence[ArchiveFile]
    rest_from: int | None

    @classmethod
    def make(
        cls,
        client: HistoryClient,
        options: HistoryOptions,
        plan: Callable[[int], tuple[list[ArchiveFile], int]],
        hi: int,
        what: str,
    ) -> ArchivePlan:
        """Which archive files serve a range (``plan(start of today)``), and from where."""
        if options.source == "rest" or not isinstance(client, ArchiveClient):
            if options.source == "archive":
                raise ValueError(
                    "source='archive' needs a BinanceClient (archives are fetched over HTTP)"
                )
            return cls(None, (), None)
        http = client.http_client
        today = client.server_time_ms()
        files, rest_from = plan(today - today % _DAY_MS)
        if options.source == "archive" and rest_from < hi:
            raise ArchiveNotFoundError(
                f"{what} from {rest_from} (today's data is not archived yet)"
            )
        root = options.archive_url or client.base_url or DEFAULT_ARCHIVE_URL
        host = ArchiveHost(http, root, options.cache_dir, client.retry_policy, options.pause_gc)
        return cls(host, files, rest_from)

    def rest_start(self, start: int) -> int:
        """Where the REST API's part of a range beginning at ``start`` begins."""
        return start if self.rest_from is None else self.rest_from


class Source(Generic[Span, T]):
    """The jobs of one download in time order: REST spans before the archive files
    (``head``), the files, REST spans after them (``tail``).

    Each job is fetched when asked (``fetch(index)``): ``page(span)`` for a REST span,
    ``load(host, file)`` for an archive file, and, for a file that is not published,
    ``fallback(file, progress)``, the REST API over exactly its span (with
    ``source="archive"``, ``ArchiveNotFoundError`` instead). ``send_in_order`` runs them
    concurrently and sends each result in job order.
    """

    def __init__(
        self,
        archives: ArchivePlan,
        *,
        head: Spans[Span] = (),
        tail: Spans[Span],
        page: Callable[[Span], Awaitable[T]],
        load: Callable[[ArchiveHost, ArchiveFile], Awaitable[T | None]],
        fallback: Callable[[ArchiveFile, Progress], Awaitable[T]],
        options: HistoryOptions,
        progress: Progress,
    ) -> None:
        self.archives, self.head, self.tail = archives, head, tail
        self.page, self.load, self.fallback = page, load, fallback
        self.strict = options.source == "archive"
        self.progress = progress
        progress.pages_total += len(head) + len(tail)
        progress.archives_total += len(archives.files)

    def __len__(self) -> int:
        return len(self.head) + len(self.archives.files) + len(self.tail)

    async def fetch(self, index: int) -> T:
        """The result of job ``index`` (head spans, then files, then tail spans)."""
        files = self.archives.files
        if index < len(self.head):
            return await self._page(self.head[index])
        index -= len(self.head)
        if index < len(files):
            return await self._file(files[index])
        return await self._page(self.tail[index - len(files)])

    async def send_in_order(self, send: trio.MemorySendChannel[T], max_concurrency: int) -> None:
        """Fetch every job, ``max_concurrency`` at a time; send the results in order."""
        await ordered_pages(self.fetch, len(self), send, max_concurrency=max_concurrency)

    async def _page(self, span: Span) -> T:
        got = await self.page(span)
        self.progress.pages_done += 1
        return got

    async def _file(self, file: ArchiveFile) -> T:
        """One archive file's rows, or the REST API's for its span when it is not published."""
        progress = self.progress
        host = self.archives.host
        assert host is not None  # a plan without a host has no files
        got = await self.load(host, file)
        if got is not None:
            progress.archive_rows += len(got)
            progress.archives_done += 1
            return got
        if self.strict:
            raise ArchiveNotFoundError(file.name)
        logger.info("%s not published: the REST API serves its span", file.name)
        child = Progress()
        rest = await self.fallback(file, child)
        progress.add(child)
        progress.archives_done += 1
        return rest


async def ordered_pages(
    fetch: Callable[[int], Awaitable[R]],
    count: int,
    send: trio.MemorySendChannel[R],
    *,
    max_concurrency: int,
) -> None:
    """Fetch pages ``0..count-1`` concurrently; send each result in page order.

    At most ``max_concurrency`` pages are fetched or waiting to be sent at once,
    so memory stays bounded however long the history.
    """
    slots = trio.Semaphore(max_concurrency)
    done: dict[int, trio.Event] = {}
    results: dict[int, R] = {}

    async def one(index: int) -> None:
        results[index] = await fetch(index)
        done[index].set()

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
    # Closed only when every page was sent: a failure or a cancel (Ctrl-C) must not
    # look like the end of the range to the consumer, which would report the rest as
    # a gap. The failure reaches the consumer's nursery and cancels it instead.
    send.close()
