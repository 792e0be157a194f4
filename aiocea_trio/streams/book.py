"""A local order book: a REST snapshot plus the diff stream, kept correct by Binance's rules.

How it stays correct (Binance's procedure, one loop for the three markets):

1. The diff stream (``<symbol>@depth@100ms``) is opened first and buffers, losslessly.
2. A snapshot is fetched over REST (``/depth`` at the largest limit by default, so the local
   book holds every level Binance would send a diff for).
3. Buffered events the snapshot already contains are dropped (``u <= lastUpdateId``; on
   futures ``u < lastUpdateId``). The first one kept must bridge the snapshot (spot:
   ``U <= lastUpdateId + 1 <= u``; futures: ``U <= lastUpdateId <= u``, or ``pu`` equal to
   it); if the snapshot is older than the stream's first event, it is fetched again.
4. Every later event must follow the previous one (spot: ``U == previous u + 1``; futures:
   ``pu == previous u``). A break, or a ``StreamGap`` from a reconnect, starts again at 2;
   until then the book keeps its last state and ``synced`` is false.

Reads never tear: an event is applied in one synchronous step (trio switches tasks only at
``await``), so ``best_bid()``, ``levels()`` or ``snapshot()`` see the book between two
events, never in the middle of one. The maintaining task lives in the nursery of
``open_order_book``'s block; leaving the block stops it and closes the stream.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import attrs
import trio

from .._groups import open_nursery
from ..markets import Market
from ..symbols import check_symbol
from ._buffer import Policy
from ._manager import DEFAULT_BUFFER, Stream, open_stream
from .events import DepthUpdate, Level, StreamGap

__all__ = [
    "BookSnapshot",
    "BookStatistics",
    "OrderBook",
    "OrderBookSyncError",
    "open_order_book",
]

log = logging.getLogger("aiocea_trio.streams")

_DEPTH_PATH = {
    Market.SPOT: "/api/v3/depth",
    Market.USDM: "/fapi/v1/depth",
    Market.COINM: "/dapi/v1/depth",
}
#: The largest REST snapshot per market: the local book then holds every level diffs touch.
MAX_SNAPSHOT = {Market.SPOT: 5000, Market.USDM: 1000, Market.COINM: 1000}
#: Diff-stream speeds per market (None: Binance's default, 1 s spot, 250 ms futures).
_SPEEDS = {
    Market.SPOT: ("100ms", "1000ms", None),
    Market.USDM: ("100ms", "250ms", "500ms", None),
    Market.COINM: ("100ms", "250ms", "500ms", None),
}
#: Snapshots in a row that may be older than the stream before giving up.
_STALE_SNAPSHOTS = 5


class OrderBookSyncError(Exception):
    """The book could not be synchronised: snapshots stayed older than the diff stream."""


@attrs.frozen
class BookSnapshot:
    """A consistent copy of the book: levels best first, as ``(price, quantity)``."""

    symbol: str
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    synced: bool


@attrs.frozen
class BookStatistics:
    """How the book has been kept: snapshots fetched, diffs applied, resyncs and why."""

    snapshots: int
    updates_applied: int
    resyncs: int
    gaps_seen: int


class _Side:
    """One side: price -> quantity, and the prices kept sorted ascending for best and top-N."""

    __slots__ = ("_bids", "_prices", "_qty")

    def __init__(self, bids: bool) -> None:
        self._bids = bids
        self._qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []

    def replace(self, levels: Iterable[Level]) -> None:
        self._qty = {p: q for p, q in levels if q}
        self._prices = sorted(self._qty)

    def set(self, price: Decimal, qty: Decimal) -> None:
        if qty:
            if price not in self._qty:
                bisect.insort(self._prices, price)
            self._qty[price] = qty
        elif self._qty.pop(price, None) is not None:  # deleting an absent level is normal
            del self._prices[bisect.bisect_left(self._prices, price)]

    def best(self) -> Level | None:
        if not self._prices:
            return None
        p = self._prices[-1] if self._bids else self._prices[0]
        return p, self._qty[p]

    def top(self, n: int | None) -> tuple[Level, ...]:
        prices = self._prices
        if self._bids:
            whole = n is None or n >= len(prices)
            chosen = prices[::-1] if whole else prices[: -(n or 0) - 1 : -1]
        else:
            chosen = prices if n is None else prices[:n]
        qty = self._qty
        return tuple((p, qty[p]) for p in chosen)

    def __len__(self) -> int:
        return len(self._prices)


class OrderBook:
    """The local book of one symbol, kept by ``open_order_book``; read it at any time."""

    def __init__(self, symbol: str, market: Market) -> None:
        self.symbol = symbol
        self.market = market
        self._bids = _Side(bids=True)
        self._asks = _Side(bids=False)
        self._last_update_id = 0
        self._synced = False
        self._changed = trio.Event()
        self._snapshots = self._applied = self._resyncs = self._gaps = 0

    def __repr__(self) -> str:
        state = "synced" if self._synced else "syncing"
        return (
            f"OrderBook({self.symbol!r}, market={self.market.value!r}, {state}, "
            f"last_update_id={self._last_update_id}, bids={len(self._bids)}, "
            f"asks={len(self._asks)})"
        )

    @property
    def last_update_id(self) -> int:
        """The update id of the state shown (the snapshot's, then each applied diff's ``u``)."""
        return self._last_update_id

    @property
    def synced(self) -> bool:
        """False while a resync is under way (the book then shows its last good state)."""
        return self._synced

    def best_bid(self) -> Level | None:
        return self._bids.best()

    def best_ask(self) -> Level | None:
        return self._asks.best()

    def levels(self, n: int | None = None) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """``(bids, asks)``, best first, ``n`` levels each (all if None)."""
        if n is not None and n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return self._bids.top(n), self._asks.top(n)

    def snapshot(self, n: int | None = None) -> BookSnapshot:
        """A consistent, immutable copy of the book (``n`` levels per side, all if None)."""
        bids, asks = self.levels(n)
        return BookSnapshot(self.symbol, self._last_update_id, bids, asks, self._synced)

    async def wait_update(self, n: int | None = 20) -> BookSnapshot:
        """Wait for the next change (a diff applied, a resync begun or done), then return the
        book right after it (``n`` levels per side, all if None)."""
        await self._changed.wait()
        return self.snapshot(n)

    def statistics(self) -> BookStatistics:
        return BookStatistics(self._snapshots, self._applied, self._resyncs, self._gaps)

    # -- keeping it ------------------------------------------------------------------------

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _load(self, answer: Any) -> int:
        self._bids.replace(_levels(answer["bids"]))
        self._asks.replace(_levels(answer["asks"]))
        self._last_update_id = int(answer["lastUpdateId"])
        self._snapshots += 1
        return self._last_update_id

    def _apply(self, event: DepthUpdate) -> None:
        bids, asks = self._bids, self._asks
        for p, q in event.bids:
            bids.set(p, q)
        for p, q in event.asks:
            asks.set(p, q)
        self._last_update_id = event.u
        self._applied += 1

    def _already_in(self, event: DepthUpdate, snapshot_id: int) -> bool:
        if self.market is Market.SPOT:
            return event.u <= snapshot_id
        return event.u < snapshot_id

    def _bridges(self, event: DepthUpdate, snapshot_id: int) -> bool:
        if self.market is Market.SPOT:
            return event.U <= snapshot_id + 1 <= event.u
        return event.U <= snapshot_id <= event.u or event.pu == snapshot_id

    def _older_than(self, event: DepthUpdate, snapshot_id: int) -> bool:
        """The snapshot misses updates the stream did not deliver (it ends before ``event``
        and does not meet it): fetch it again."""
        if self.market is Market.SPOT:
            return snapshot_id < event.U - 1
        return snapshot_id < event.U and event.pu != snapshot_id

    def _follows(self, event: DepthUpdate) -> bool:
        if self.market is Market.SPOT:
            return event.first_update_id == self._last_update_id + 1
        return event.pu == self._last_update_id


def _levels(rows: Sequence[Sequence[str]]) -> list[Level]:
    return [(Decimal(p), Decimal(q)) for p, q in rows]


async def _next_diff(book: OrderBook, stream: Stream) -> DepthUpdate | None:
    """The next diff of the stream, or None for a gap (a reconnect: diffs may be missing)."""
    event = await stream.receive()
    if isinstance(event, StreamGap):
        book._gaps += 1
        return None
    if not isinstance(event, DepthUpdate):  # pragma: no cover - the stream carries diffs only
        raise TypeError(f"unexpected event on a depth stream: {event!r}")
    return event


async def _sync(book: OrderBook, client: Any, stream: Stream, limit: int) -> None:
    """Steps 2-3 of the procedure: a snapshot, then diffs up to the one bridging it."""
    first = await _next_diff(book, stream)
    while first is None:
        first = await _next_diff(book, stream)
    params = {"symbol": book.symbol, "limit": limit}
    for _ in range(_STALE_SNAPSHOTS):
        answer = await client.request("GET", _DEPTH_PATH[book.market], params)
        snapshot_id = int(answer["lastUpdateId"])
        if not book._older_than(first, snapshot_id):
            break
    else:
        raise OrderBookSyncError(
            f"{book.symbol}: {_STALE_SNAPSHOTS} snapshots in a row were older than the diff "
            f"stream (lastUpdateId {snapshot_id} < first U {first.U})"
        )
    event: DepthUpdate | None = first
    while True:
        if event is None:  # a reconnect while syncing: start again
            raise _Resync
        if not book._already_in(event, snapshot_id):
            if not book._bridges(event, snapshot_id):
                raise _Resync
            book._load(answer)
            book._apply(event)
            book._synced = True
            book._changed_now()
            return
        event = await _next_diff(book, stream)


class _Resync(Exception):
    """The diff chain broke (or the snapshot did not meet it): fetch a snapshot again."""


async def _maintain(
    book: OrderBook,
    client: Any,
    stream: Stream,
    limit: int,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    started = False
    while True:
        try:
            await _sync(book, client, stream, limit)
            if not started:
                started = True
                task_status.started()
            while True:
                event = await _next_diff(book, stream)
                if event is None or not book._follows(event):
                    if event is not None and book._already_in(event, book._last_update_id):
                        continue  # a repeat (a rollover's overlap): nothing new
                    raise _Resync
                book._apply(event)
                book._changed_now()
        except _Resync:
            book._synced = False
            book._resyncs += 1
            log.warning("order book %s: diff chain broken, resynchronising", book.symbol)
            book._changed_now()


def _stream_name(symbol: str, market: Market, speed: str | None) -> str:
    if speed not in _SPEEDS[market]:
        choices = ", ".join(repr(s) for s in _SPEEDS[market])
        raise ValueError(f"speed must be one of {choices} on {market.value}; got {speed!r}")
    default = "1000ms" if market is Market.SPOT else "250ms"
    suffix = "" if speed in (None, default) else f"@{speed}"
    return f"{symbol.lower()}@depth{suffix}"


@asynccontextmanager
async def open_order_book(
    client: Any,
    symbol: str,
    *,
    market: Market | str = Market.SPOT,
    speed: str | None = "100ms",
    limit: int | None = None,
    buffer: int = DEFAULT_BUFFER,
) -> AsyncIterator[OrderBook]:
    """Keep a local order book of ``symbol`` for the duration of the block.

    ``async with open_order_book(client, "BTCUSDT") as book: book.best_bid()``. The block is
    entered once the book is synchronised; it resynchronises itself after a gap.

    Args:
        client: a ``BinanceClient`` (the snapshot comes over REST, the diffs over a stream).
        symbol: e.g. ``"BTCUSDT"`` (``"BTCUSD_PERP"`` on COIN-M).
        market: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        speed: the diff stream's pace: ``"100ms"``, or Binance's default (spot ``"1000ms"``,
            futures ``"250ms"``; futures also ``"500ms"``).
        limit: the snapshot's depth; the largest by default (spot 5000, futures 1000), so
            the book holds every level a diff may touch. A smaller one weighs less, but
            levels beyond it are only known once a diff touches them.
        buffer: diffs that may wait while a snapshot is fetched before the stream fails.

    Raises:
        ValueError: a bad argument, before any request.
        OrderBookSyncError: snapshots stayed older than the stream.
    """
    mkt = Market(market)
    symbol = check_symbol(symbol, "symbol")
    name = _stream_name(symbol, mkt, speed)
    top = MAX_SNAPSHOT[mkt]
    limit = top if limit is None else limit
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= top:
        raise ValueError(
            f"limit must be an integer from 1 to {top} on {mkt.value}; got {limit!r}"
        )
    book = OrderBook(symbol.upper(), mkt)
    async with open_stream(
        client, name, market=mkt, buffer=buffer, policy=Policy.LOSSLESS
    ) as stream, open_nursery() as nursery:
        await nursery.start(_maintain, book, client, stream, limit)
        try:
            yield book
        finally:
            nursery.cancel_scope.cancel()
