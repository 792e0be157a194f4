"""The local order book's procedure (snapshot + diffs, bridging, gaps, resyncs) on a scripted
exchange: a true book changed by numbered diffs, a stream that can drop some, and a REST
snapshot of the truth at any point. The end-to-end tests against the simulator's streams are
in test_order_book_sim.py."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
import trio

from aiocea_trio.markets import Market
from aiocea_trio.streams import DepthUpdate, StreamGap
from aiocea_trio.streams.book import (
    OrderBook,
    OrderBookSyncError,
    _maintain,
    _stream_name,
    open_order_book,
)

D = Decimal


class Exchange:
    """A true book moved by diffs with contiguous ids; each diff is also a stream event."""

    def __init__(self, market: Market, seed: int = 1) -> None:
        self.market = market
        self.rng = random.Random(seed)
        self.bids = {D(100 - i): D(1 + i) for i in range(20)}
        self.asks = {D(101 + i): D(1 + i) for i in range(20)}
        self.u = 1000
        self.events: list[DepthUpdate] = []
        self.snapshot_lag = 0  # snapshots this many diffs behind the truth
        self.history: list[tuple[int, dict[D, D], dict[D, D]]] = []
        self.requests = 0

    def step(self) -> DepthUpdate:
        changes: dict[str, list[tuple[D, D]]] = {"b": [], "a": []}
        for side, book, lo in (("b", self.bids, 80), ("a", self.asks, 101)):
            for _ in range(self.rng.randint(1, 4)):
                p = D(lo + self.rng.randint(0, 19))
                q = D(0) if self.rng.random() < 0.3 else D(self.rng.randint(1, 50))
                if q:
                    book[p] = q
                else:
                    book.pop(p, None)  # deleting an absent level is normal
                changes[side].append((p, q))
        n = self.rng.randint(1, 3)  # ids the diff covers
        first, self.u = self.u + 1, self.u + n
        event = DepthUpdate(
            stream="btcusdt@depth@100ms",
            symbol="BTCUSDT",
            event_time=self.u,
            first_update_id=first,
            final_update_id=self.u,
            prev_final_update_id=None if self.market is Market.SPOT else first - 1,
            bids=tuple(changes["b"]),
            asks=tuple(changes["a"]),
        )
        self.history.append((self.u, dict(self.bids), dict(self.asks)))
        self.events.append(event)
        return event

    async def request(self, method: str, path: str, params: dict[str, Any]) -> Any:
        self.requests += 1
        u, bids, asks = self.history[-1 - self.snapshot_lag] if self.history else (
            self.u, self.bids, self.asks
        )
        return {
            "lastUpdateId": u,
            "bids": [[str(p), str(q)] for p, q in sorted(bids.items(), reverse=True)],
            "asks": [[str(p), str(q)] for p, q in sorted(asks.items())],
        }

    def truth(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return (
            tuple(sorted(self.bids.items(), reverse=True)),
            tuple(sorted(self.asks.items())),
        )


class Feed:
    """What ``_maintain`` reads: ``receive()`` of diffs and gaps, through a channel."""

    def __init__(self) -> None:
        self.send, self.recv = trio.open_memory_channel[Any](1000)

    async def receive(self) -> Any:
        return await self.recv.receive()


async def run(
    market: Market, steps: int, *, drop: set[int] = frozenset(), gaps: set[int] = frozenset(),
    lag: int = 1, seed: int = 1,
) -> tuple[Exchange, OrderBook]:
    ex = Exchange(market, seed)
    feed = Feed()
    book = OrderBook("BTCUSDT", market)
    for _ in range(3):  # diffs before the snapshot: buffered, then dropped or bridging
        feed.send.send_nowait(ex.step())
    ex.snapshot_lag = lag
    async with trio.open_nursery() as nursery:
        await nursery.start(_maintain, book, ex, feed, 1000)
        ex.snapshot_lag = 0
        for i in range(steps):
            event = ex.step()
            if i in gaps:
                feed.send.send_nowait(StreamGap("btcusdt@depth@100ms", 0, 1))
            if i not in drop:
                feed.send.send_nowait(event)
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return ex, book


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM, Market.COINM])
async def test_follows_the_true_book(market: Market) -> None:
    ex, book = await run(market, 300, lag=1)
    assert book.levels() == ex.truth()
    assert book.last_update_id == ex.u
    assert book.synced
    stats = book.statistics()
    assert stats.resyncs == 0
    assert stats.snapshots == 1
    assert stats.updates_applied >= 300


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM])
async def test_a_missed_diff_resyncs_and_ends_equal(market: Market) -> None:
    drops = {17, 60, 61, 150, 151, 152, 230}
    ex, book = await run(market, 300, drop=drops, seed=5)
    assert book.levels() == ex.truth()
    assert book.statistics().resyncs == 4  # one per run of missing diffs
    assert book.statistics().snapshots == 5


async def test_a_stream_gap_resyncs() -> None:
    ex, book = await run(Market.SPOT, 100, gaps={20, 70})
    assert book.levels() == ex.truth()
    assert book.statistics().gaps_seen == 2
    assert book.statistics().resyncs == 2


async def test_a_snapshot_older_than_the_stream_is_fetched_again() -> None:
    ex = Exchange(Market.SPOT)
    feed = Feed()
    book = OrderBook("BTCUSDT", Market.SPOT)
    for _ in range(5):
        ex.step()
    feed.send.send_nowait(ex.step())  # the stream starts after 5 unseen diffs
    ex.snapshot_lag = 5  # and the exchange keeps answering an older book
    with pytest.raises(OrderBookSyncError, match="older than the diff stream"):
        await _maintain(book, ex, feed, 1000)
    assert ex.requests == 5


def test_reads() -> None:
    book = OrderBook("BTCUSDT", Market.SPOT)
    book._load({"lastUpdateId": 7, "bids": [["10", "1"], ["9", "2"], ["8", "3"]],
                "asks": [["11", "1"], ["12", "0"], ["13", "2"]]})
    assert book.best_bid() == (D(10), D(1))
    assert book.best_ask() == (D(11), D(1))  # a zero level is no level
    assert book.levels(2) == (((D(10), D(1)), (D(9), D(2))), ((D(11), D(1)), (D(13), D(2))))
    assert book.levels(0) == ((), ())
    snap = book.snapshot(1)
    assert (snap.last_update_id, snap.bids, snap.asks) == (7, ((D(10), D(1)),), ((D(11), D(1)),))
    with pytest.raises(ValueError, match="n must be"):
        book.levels(-1)
    assert "BTCUSDT" in repr(book)
    assert "syncing" in repr(book)


async def test_wait_update_wakes_on_the_next_diff() -> None:
    ex = Exchange(Market.SPOT)
    feed = Feed()
    book = OrderBook("BTCUSDT", Market.SPOT)
    feed.send.send_nowait(ex.step())
    feed.send.send_nowait(ex.step())
    ex.snapshot_lag = 1  # the snapshot sits between the two diffs
    async with trio.open_nursery() as nursery:
        await nursery.start(_maintain, book, ex, feed, 1000)
        got: list[int] = []

        async def waiter() -> None:
            got.append((await book.wait_update()).last_update_id)

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        feed.send.send_nowait(ex.step())
        await trio.testing.wait_all_tasks_blocked()
        assert got == [ex.u]
        nursery.cancel_scope.cancel()


def test_stream_names_and_bad_arguments() -> None:
    assert _stream_name("BTCUSDT", Market.SPOT, "100ms") == "btcusdt@depth@100ms"
    assert _stream_name("BTCUSDT", Market.SPOT, None) == "btcusdt@depth"
    assert _stream_name("BTCUSDT", Market.SPOT, "1000ms") == "btcusdt@depth"
    assert _stream_name("BTCUSD_PERP", Market.COINM, "500ms") == "btcusd_perp@depth@500ms"
    with pytest.raises(ValueError, match="speed must be one of"):
        _stream_name("BTCUSDT", Market.SPOT, "500ms")


async def test_bad_arguments_fail_before_any_connection() -> None:
    with pytest.raises(ValueError, match="limit must be"):
        async with open_order_book(object(), "BTCUSDT", limit=5001):
            pass
    with pytest.raises(ValueError, match="symbol"):
        async with open_order_book(object(), "BTC USDT"):
            pass
    with pytest.raises(ValueError, match="speed"):
        async with open_order_book(object(), "BTCUSDT", market="usdm", speed="1000ms"):
            pass
