"""Streams and the local order book end to end against the simulator, in-process, under
trio's autojump clock: what a stream says agrees with the simulator's REST answers, and a
local book followed through thousands of diffs and injected gaps ends equal to the true book.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
import trio

from aiocea_trio.sim import SimExchange
from aiocea_trio.streams import Kline, StreamGap, Trade, open_order_book, open_stream

START_MS = 1_767_225_600_000 + 3 * 3_600_000  # 2026-01-01 03:00 UTC


@pytest.fixture
def sim() -> SimExchange:
    return SimExchange(seed=3, start_time_ms=START_MS)


async def true_book(client: Any, market: str, symbol: str) -> dict[str, Any]:
    path = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}[market]
    limit = 5000 if market == "spot" else 1000
    return await client.request("GET", path, {"symbol": symbol, "limit": limit})  # type: ignore[no-any-return]


def as_levels(rows: list[list[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(p), Decimal(q)) for p, q in rows)


@pytest.mark.parametrize(
    ("market", "symbol", "updates"), [("usdm", "BTCUSDT", 10_000), ("spot", "ETHUSDT", 600)]
)
async def test_book_through_diffs_and_gaps_equals_the_true_book(
    sim: SimExchange, autojump_clock: Any, market: str, symbol: str, updates: int
) -> None:
    gaps_at = {updates * k // 21 for k in range(1, 21)}  # 20 injected id gaps
    assert len(gaps_at) == 20
    with trio.fail_after(updates * 3 + 600):
        async with sim.client() as client, open_order_book(client, symbol, market=market) as book:
            seen = 0
            while seen < updates:
                await book.wait_update(0)
                seen += 1
                if seen in gaps_at:
                    assert sim.streams.skip_update_id(market) == 1
            while True:  # compare at one update id: the REST snapshot's
                truth = await true_book(client, market, symbol)
                if book.synced and book.last_update_id == truth["lastUpdateId"]:
                    break
                await book.wait_update(0)
            bids, asks = book.levels()
            assert bids == as_levels(truth["bids"])
            assert asks == as_levels(truth["asks"])
            stats = book.statistics()
    assert stats.resyncs == 20
    assert stats.updates_applied >= updates - 20 * 3


async def test_closed_klines_and_trades_equal_rest(sim: SimExchange, autojump_clock: Any) -> None:
    closed: list[Kline] = []
    trades: list[Trade] = []
    with trio.fail_after(3600):
        async with sim.client() as client:
            async with open_stream(client, "btcusdt@kline_1m", "btcusdt@trade") as stream:
                async for event in stream:
                    assert not isinstance(event, StreamGap)
                    if isinstance(event, Kline) and event.closed:
                        closed.append(event)
                    elif isinstance(event, Trade):
                        trades.append(event)
                    if len(closed) == 5:
                        break
            rest = await client.request(
                "GET",
                "/api/v3/klines",
                {
                    "symbol": "BTCUSDT",
                    "interval": "1m",
                    "startTime": closed[0].open_time,
                    "limit": 5,
                },
            )
            first, last = trades[0].trade_id, trades[-1].trade_id
            rest_trades = await client.request(
                "GET",
                "/api/v3/historicalTrades",
                {"symbol": "BTCUSDT", "fromId": first, "limit": 1000},
            )
    assert [k.open_time for k in closed] == [r[0] for r in rest]
    for k, r in zip(closed, rest, strict=True):
        assert (k.open, k.high, k.low, k.close, k.volume) == tuple(Decimal(x) for x in r[1:6])
        assert k.trades == r[8]
    ids = [t.trade_id for t in trades]
    assert ids == list(range(first, last + 1))  # consecutive, none missing, none twice
    by_id = {t["id"]: t for t in rest_trades}
    for t in trades[:1000]:
        r = by_id[t.trade_id]
        assert (t.price, t.quantity, t.trade_time, t.buyer_is_maker) == (
            Decimal(r["price"]),
            Decimal(r["qty"]),
            r["time"],
            r["isBuyerMaker"],
        )


async def test_a_dropped_connection_gives_one_gap_and_resumes(
    sim: SimExchange, autojump_clock: Any
) -> None:
    with trio.fail_after(600):
        async with sim.client() as client, open_stream(client, "btcusdt@aggTrade") as stream:
            got = 0
            gaps: list[StreamGap] = []
            async for event in stream:
                if isinstance(event, StreamGap):
                    gaps.append(event)
                    continue
                got += 1
                if got == 50:
                    assert sim.streams.drop("spot") == 1
                if got == 400:
                    break
    assert len(gaps) == 1
    assert gaps[0].stream == "btcusdt@aggTrade"
    assert gaps[0].start_ms <= gaps[0].end_ms


async def test_closed_klines_feed_the_operator(sim: SimExchange, autojump_clock: Any) -> None:
    from aiocea_trio import Operator
    from aiocea_trio.streams import tasks_from
    from aiocea_trio.tasks import SpotFetchTicker

    def on_close(event: Any) -> SpotFetchTicker | None:
        if isinstance(event, Kline) and event.closed:
            return SpotFetchTicker(symbol=event.symbol)
        return None

    results: list[tuple[float, Any]] = []
    with trio.fail_after(600):
        async with sim.client() as client, open_stream(client, "ethusdt@kline_1m") as stream:
            operator = Operator(client).add_source(tasks_from(stream, on_close))
            async with operator.completed() as finished:
                async for task in finished:
                    results.append((trio.current_time(), task.result))
                    if len(results) == 3:
                        break
    assert [r["symbol"] for _, r in results] == ["ETHUSDT"] * 3
    times = [t for t, _ in results]
    assert [round(b - a) for a, b in itertools.pairwise(times)] == [60, 60]  # one per candle


async def test_tasks_from_refuses_what_is_not_a_task() -> None:
    from aiocea_trio.streams import tasks_from

    send, receive = trio.open_memory_channel[Any](1)
    feed = tasks_from(receive, lambda event: "not a task")
    await send.send(1)
    with pytest.raises(TypeError, match="make_task must return a Task"):
        await feed.receive()
    with pytest.raises(TypeError, match="callable"):
        tasks_from(receive, 3)  # type: ignore[arg-type]


async def test_24_hours_of_klines_across_the_rollover(
    sim: SimExchange, autojump_clock: Any
) -> None:
    """A day and a bit of 1h klines: the connection is rolled over before Binance's 24-hour
    limit, and every closed kline arrives once, none missing, no gap."""
    closed: list[int] = []
    with trio.fail_after(30 * 3600):
        async with sim.client() as client, open_stream(client, "btcusdt@kline_1h") as stream:
            async for event in stream:
                assert not isinstance(event, StreamGap)
                if isinstance(event, Kline) and event.closed:
                    closed.append(event.open_time)
                    if len(closed) == 26:
                        break
            stats = stream.statistics()
    assert closed == list(range(closed[0], closed[0] + 26 * 3_600_000, 3_600_000))
    assert stats.rollovers >= 1
    assert stats.gaps == 0


async def test_a_silent_connection_is_replaced_with_one_gap(
    sim: SimExchange, autojump_clock: Any
) -> None:
    with trio.fail_after(600):
        async with sim.client() as client, open_stream(client, "btcusdt@trade") as stream:
            got = 0
            gaps: list[tuple[StreamGap, float]] = []
            silenced_at = 0.0
            async for event in stream:
                if isinstance(event, StreamGap):
                    gaps.append((event, trio.current_time()))
                    continue
                got += 1
                if got == 20:
                    silenced_at = trio.current_time()
                    assert sim.streams.silence(market="spot") == 1
                if gaps and got >= 60:
                    break
    assert len(gaps) == 1
    assert gaps[0][1] - silenced_at <= 30 + 5  # within the watchdog period (and a reconnect)


async def test_a_consumer_asleep_for_5_minutes_keeps_its_connection(
    sim: SimExchange, autojump_clock: Any
) -> None:
    """The simulator pings every 20 s and drops a client that has not answered within 60 s;
    the stream's reader answers while the consumer sleeps between reads."""
    with trio.fail_after(3600):
        async with sim.client() as client, open_stream(client, "btcusdt@kline_1m") as stream:
            for _ in range(3):
                event = await stream.receive()
                assert not isinstance(event, StreamGap)
                await trio.sleep(300)
            stats = stream.statistics()
    assert stats.reconnects == 0
    assert stats.gaps == 0


@pytest.mark.parametrize(
    ("market", "streams"),
    [
        ("coinm", ("btcusd_perp@aggTrade", "btcusd_perp@markPrice", "btcusd_perp@bookTicker")),
        ("usdm", ("btcusdt@aggTrade", "btcusdt@bookTicker", "ethusdt@markPrice@1s")),
    ],
)
async def test_futures_streams_on_their_routes(
    sim: SimExchange, autojump_clock: Any, market: str, streams: tuple[str, ...]
) -> None:
    seen: set[str] = set()
    with trio.fail_after(600):
        async with sim.client() as client, open_stream(client, *streams, market=market) as stream:
            async for event in stream:
                assert not isinstance(event, StreamGap)
                seen.add(event.stream)
                if seen == set(streams):
                    break
            assert stream.statistics().connections == (2 if market == "usdm" else 1)
