"""aiocea_trio.streams against a small Binance-protocol WebSocket server run by each test.

The server (trio-websocket, 127.0.0.1, port 0, in the test's nursery) speaks the combined-
stream protocol: ``/stream?streams=a/b``, SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, pings every
20 s with a 60 s pong deadline (spot's rules), an optional 24-hour connection limit, and on
request drops, silences or sends ``serverShutdown``. Everything runs under ``autojump_clock``:
hours of virtual time take a second or two.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from aiocea_trio import BinanceClient
from aiocea_trio.markets import Market
from aiocea_trio.streams import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    Kline,
    MarkPrice,
    MiniTicker,
    PartialDepth,
    Policy,
    RawEvent,
    StreamGap,
    StreamOverflowError,
    Ticker,
    Trade,
    open_stream,
)
from aiocea_trio.streams._urls import route_of, stream_base

DAY = 24 * 3600


@attrs.define(eq=False)
class Conn:
    ws: WebSocketConnection
    path: str
    streams: set[str]
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    silent: bool = False


@attrs.define(eq=False)
class FakeBinance:
    ping_interval: float = 20.0
    pong_deadline: float = 60.0
    max_age: float | None = None
    conns: set[Conn] = attrs.field(factory=set)
    paths: list[str] = attrs.field(factory=list)
    received: list[dict[str, Any]] = attrs.field(factory=list)
    pongs_missed: int = 0
    port: int = 0

    @property
    def connects(self) -> int:
        return len(self.paths)

    async def handler(self, request: WebSocketRequest) -> None:
        query = parse_qs(urlsplit(request.path).query)
        streams = set(query["streams"][0].split("/")) if "streams" in query else set()
        ws = await request.accept()
        conn = Conn(ws, request.path, streams)
        self.paths.append(request.path)
        self.conns.add(conn)
        try:
            with conn.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pinger, conn)
                    if self.max_age is not None:
                        nursery.start_soon(self._expire, conn)
                    while True:
                        msg = json.loads(await ws.get_message())
                        self.received.append(msg)
                        if conn.silent:
                            continue
                        method, rid = msg.get("method"), msg.get("id")
                        if method == "SUBSCRIBE":
                            conn.streams.update(msg["params"])
                            await ws.send_message(json.dumps({"result": None, "id": rid}))
                        elif method == "UNSUBSCRIBE":
                            conn.streams.difference_update(msg["params"])
                            await ws.send_message(json.dumps({"result": None, "id": rid}))
                        elif method == "LIST_SUBSCRIPTIONS":
                            reply = {"result": sorted(conn.streams), "id": rid}
                            await ws.send_message(json.dumps(reply))
        except* ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            with trio.move_on_after(1, shield=True):
                await ws.aclose()

    async def _pinger(self, conn: Conn) -> None:
        while True:
            await trio.sleep(self.ping_interval)
            if conn.silent:
                continue
            with trio.move_on_after(self.pong_deadline) as cs:
                try:
                    await conn.ws.ping()
                except ConnectionClosed:
                    return
            if cs.cancelled_caught:
                self.pongs_missed += 1
                conn.scope.cancel()

    async def _expire(self, conn: Conn) -> None:
        assert self.max_age is not None
        await trio.sleep(self.max_age)
        conn.scope.cancel()

    async def publish(self, stream: str, data: Any) -> None:
        frame = json.dumps({"stream": stream, "data": data})
        for conn in list(self.conns):
            if stream in conn.streams and not conn.silent:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send_message(frame)

    def drop(self) -> None:
        for conn in list(self.conns):
            conn.scope.cancel()

    def silence(self) -> None:
        for conn in self.conns:
            conn.silent = True

    async def shutdown_notice(self) -> None:
        for conn in list(self.conns):
            data = {"e": "serverShutdown", "E": 0}
            await conn.ws.send_message(json.dumps({"stream": "!serverShutdown", "data": data}))


@pytest.fixture
async def server(nursery: trio.Nursery) -> FakeBinance:
    fake = FakeBinance()
    ws_server = await nursery.start(partial(serve_websocket, fake.handler, "127.0.0.1", 0, None))
    fake.port = ws_server.port
    return fake


@pytest.fixture
async def client(server: FakeBinance) -> AsyncIterator[BinanceClient]:
    async with BinanceClient(base_url=f"http://127.0.0.1:{server.port}") as c:
        yield c


def trade(i: int, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {
        "e": "trade",
        "E": 1000 + i,
        "s": symbol,
        "t": i,
        "p": "100.5",
        "q": "0.25",
        "T": 1000 + i,
        "m": True,
        "M": True,
    }


def kline(i: int, per_minute: int = 6) -> dict[str, Any]:
    """The i-th update of a 1m kline stream; the last update of each minute is closed."""
    minute = i // per_minute
    closed = i % per_minute == per_minute - 1
    return {
        "e": "kline",
        "E": i * 60_000 // per_minute + 1,
        "s": "BTCUSDT",
        "k": {
            "t": minute * 60_000,
            "T": minute * 60_000 + 59_999,
            "s": "BTCUSDT",
            "i": "1m",
            "f": 1,
            "L": 2,
            "o": "1",
            "c": "2",
            "h": "3",
            "l": "0.5",
            "v": "10",
            "n": 2,
            "x": closed,
            "q": "20",
            "V": "5",
            "Q": "10",
            "B": "0",
        },
    }


async def receive_all_now(stream: Any) -> list[Any]:
    """Everything received so far (the server has sent it: wait until all is quiet)."""
    await trio.testing.wait_all_tasks_blocked()
    out = []
    while True:
        with trio.move_on_after(0.001) as cs:
            out.append(await stream.receive())
        if cs.cancelled_caught:
            return out


# -- URLs and routes ------------------------------------------------------------------------


def test_hosts_and_routes() -> None:
    real = BinanceClient()
    assert stream_base(real, Market.SPOT) == "wss://stream.binance.com:9443"
    assert stream_base(real, Market.USDM) == "wss://fstream.binance.com"
    assert (
        stream_base(BinanceClient(testnet=True), Market.COINM) == "wss://dstream.binancefuture.com"
    )
    sim = BinanceClient(base_url="https://sim.example:8443")
    assert stream_base(sim, Market.SPOT) == "wss://sim.example:8443"
    assert stream_base(sim, Market.USDM) == "wss://sim.example:8443/fstream"
    assert stream_base(sim, Market.COINM) == "wss://sim.example:8443/dstream"
    assert route_of(Market.USDM, "btcusdt@bookTicker") == "/public"
    assert route_of(Market.USDM, "btcusdt@depth20@100ms") == "/public"
    assert route_of(Market.USDM, "btcusdt@kline_1m") == "/market"
    assert route_of(Market.SPOT, "btcusdt@depth") == ""


# -- events ---------------------------------------------------------------------------------


async def test_typed_events_on_one_combined_connection(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    names = [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@kline_1m",
        "btcusdt@miniTicker",
        "btcusdt@ticker",
        "btcusdt@bookTicker",
        "btcusdt@depth5",
        "btcusdt@depth",
        "btcusdt@markPrice",
        "btcusdt@avgPrice",
    ]
    payloads = [
        trade(7),
        {
            "e": "aggTrade",
            "E": 1,
            "s": "BTCUSDT",
            "a": 9,
            "p": "1.5",
            "q": "2",
            "f": 1,
            "l": 3,
            "T": 1,
            "m": False,
            "M": True,
        },
        kline(5),
        {
            "e": "24hrMiniTicker",
            "E": 1,
            "s": "BTCUSDT",
            "c": "2",
            "o": "1",
            "h": "3",
            "l": "0.5",
            "v": "10",
            "q": "20",
        },
        {
            "e": "24hrTicker",
            "E": 1,
            "s": "BTCUSDT",
            "p": "1",
            "P": "100",
            "w": "1.5",
            "x": "1",
            "c": "2",
            "Q": "1",
            "b": "1.9",
            "B": "4",
            "a": "2.1",
            "A": "5",
            "o": "1",
            "h": "3",
            "l": "0.5",
            "v": "10",
            "q": "20",
            "O": 0,
            "C": 86_399_999,
            "F": 1,
            "L": 10,
            "n": 10,
        },
        {"u": 400, "s": "BTCUSDT", "b": "1.9", "B": "4", "a": "2.1", "A": "5"},
        {"lastUpdateId": 160, "bids": [["1.9", "4"]], "asks": [["2.1", "5"], ["2.2", "1"]]},
        {
            "e": "depthUpdate",
            "E": 1,
            "s": "BTCUSDT",
            "U": 157,
            "u": 160,
            "b": [["1.9", "0"]],
            "a": [],
        },
        {
            "e": "markPriceUpdate",
            "E": 1,
            "s": "BTCUSDT",
            "p": "11794.15",
            "i": "11784.6",
            "P": "11784.2",
            "r": "0.00038",
            "T": 1562306400000,
        },
        {"e": "avgPrice", "E": 1, "s": "BTCUSDT", "i": "5m", "w": "1.5", "T": 1},
    ]
    async with open_stream(client, *names) as stream:
        assert server.connects == 1
        assert set(server.paths[0].split("streams=")[1].split("/")) == set(names)
        for name, data in zip(names, payloads, strict=True):
            await server.publish(name, data)
        events = await receive_all_now(stream)
    by_type = {type(e): e for e in events}
    assert [type(e) for e in events] == [
        Trade,
        AggTrade,
        Kline,
        MiniTicker,
        Ticker,
        BookTicker,
        PartialDepth,
        DepthUpdate,
        MarkPrice,
        RawEvent,
    ]
    assert by_type[Trade] == Trade(
        "btcusdt@trade", "BTCUSDT", 1007, 7, Decimal("100.5"), Decimal("0.25"), 1007, True
    )
    assert by_type[Kline].closed
    assert by_type[Kline].open_time == 0
    assert by_type[Kline].interval == "1m"
    assert by_type[Ticker].bid_price == Decimal("1.9")
    assert by_type[BookTicker].update_id == 400
    assert by_type[BookTicker].event_time is None
    depth = by_type[PartialDepth]
    assert depth.symbol == "BTCUSDT"
    assert depth.last_update_id == 160
    assert len(depth.asks) == 2
    diff = by_type[DepthUpdate]
    assert (diff.U, diff.u, diff.pu) == (157, 160, None)
    assert by_type[MarkPrice].funding_rate == Decimal("0.00038")
    assert by_type[RawEvent].data["e"] == "avgPrice"


async def test_raw_events(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    async with open_stream(client, "btcusdt@trade", raw=True) as stream:
        await server.publish("btcusdt@trade", trade(1))
        assert await stream.receive() == {"stream": "btcusdt@trade", "data": trade(1)}


async def test_usdm_splits_by_route(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    async with open_stream(
        client, "btcusdt@bookTicker", "btcusdt@kline_1m", "ethusdt@depth", market="usdm"
    ):
        assert sorted(p.split("?")[0] for p in server.paths) == [
            "/fstream/market/stream",
            "/fstream/public/stream",
        ]


# -- live subscriptions ---------------------------------------------------------------------


async def test_subscribe_and_unsubscribe_live(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    async with open_stream(client, "btcusdt@trade") as stream:
        await stream.subscribe("ethusdt@trade")
        assert server.connects == 1
        assert {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 1} in server.received
        assert stream.streams == {"btcusdt@trade", "ethusdt@trade"}
        await server.publish("ethusdt@trade", trade(1, "ETHUSDT"))
        assert (await stream.receive()).symbol == "ETHUSDT"
        await stream.unsubscribe("btcusdt@trade")
        assert server.received[-1]["method"] == "UNSUBSCRIBE"
        await server.publish("btcusdt@trade", trade(2))
        await server.publish("ethusdt@trade", trade(3, "ETHUSDT"))
        assert [e.trade_id for e in await receive_all_now(stream)] == [3]


async def test_control_messages_are_paced(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    async with open_stream(client, "btcusdt@trade") as stream:
        start = trio.current_time()
        for i in range(9):
            await stream.subscribe(f"s{i}usdt@trade")
        # Spot allows 5 incoming messages/s; we send at most 3/s (room for pongs).
        assert trio.current_time() - start >= 8 / 3


# -- a slow consumer ------------------------------------------------------------------------


async def test_consumer_sleeping_five_minutes_keeps_the_connection(
    server: FakeBinance,
    client: BinanceClient,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
) -> None:
    async def ticker() -> None:
        for i in range(2000):
            await server.publish("btcusdt@trade", trade(i))
            await trio.sleep(1)

    async with open_stream(client, "btcusdt@trade") as stream:
        nursery.start_soon(ticker)
        seen = []
        for _ in range(4):
            await trio.sleep(300)
            seen.append(await stream.receive())
        assert server.pongs_missed == 0
        assert server.connects == 1
        assert [e.trade_id for e in seen] == [0, 1, 2, 3]
        assert stream.statistics().buffered >= 1000


async def test_lossless_overflow_is_an_error(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    async with open_stream(client, "btcusdt@trade", buffer=10) as stream:
        for i in range(20):
            await server.publish("btcusdt@trade", trade(i))
        await trio.testing.wait_all_tasks_blocked()
        got = [(await stream.receive()).trade_id for _ in range(10)]
        assert got == list(range(10))
        with pytest.raises(StreamOverflowError, match=r"btcusdt@trade: more than 10 events"):
            await stream.receive()


async def test_latest_policy_keeps_the_last(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    names = ("btcusdt@bookTicker", "btcusdt@trade")
    async with open_stream(client, *names, policy={"btcusdt@trade": Policy.LATEST}) as stream:
        for u in range(1, 6):
            await server.publish(
                "btcusdt@bookTicker",
                {"u": u, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"},
            )
            await server.publish("btcusdt@trade", trade(u))
        events = await receive_all_now(stream)
    assert [(type(e), getattr(e, "update_id", None) or e.trade_id) for e in events] == [
        (BookTicker, 5),
        (Trade, 5),
    ]


# -- reconnects and gaps --------------------------------------------------------------------


async def _gap_after(
    server: FakeBinance, client: BinanceClient, nursery: trio.Nursery, fault: str
) -> None:
    async def feed() -> None:
        for i in range(10_000):
            await server.publish("btcusdt@trade", trade(i))
            await server.publish("ethusdt@trade", trade(i, "ETHUSDT"))
            await trio.sleep(1)

    async with open_stream(client, "btcusdt@trade", "ethusdt@trade", silence=30) as stream:
        nursery.start_soon(feed)
        await trio.sleep(100)
        assert server.connects == 1
        fault_at = trio.current_time()
        if fault == "drop":
            server.drop()
        else:
            server.silence()
        events = []
        while trio.current_time() < fault_at + 120:
            events.append(await stream.receive())
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert sorted(g.stream for g in gaps) == ["btcusdt@trade", "ethusdt@trade"]
    assert server.connects == 2
    for gap in gaps:
        # From the last event before the fault to the resubscription: within the watchdog period.
        assert 0 < gap.end_ms - gap.start_ms <= 31_000 + 1_000
        index = events.index(gap)
        before = [
            e.trade_id
            for e in events[:index]
            if getattr(e, "stream", "") == gap.stream and isinstance(e, Trade)
        ]
        after = [
            e.trade_id
            for e in events[index + 1 :]
            if isinstance(e, Trade) and e.stream == gap.stream
        ]
        assert after
        assert after[0] > before[-1]


async def test_dropped_connection_reconnects_with_one_gap(
    server: FakeBinance,
    client: BinanceClient,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
) -> None:
    await _gap_after(server, client, nursery, "drop")


async def test_silent_connection_reconnects_with_one_gap(
    server: FakeBinance,
    client: BinanceClient,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
) -> None:
    await _gap_after(server, client, nursery, "silence")
    probes = [m for m in server.received if m.get("method") == "LIST_SUBSCRIPTIONS"]
    assert probes  # probed at 15 s of silence before giving up at 30 s


# -- planned rollovers ----------------------------------------------------------------------


async def test_24h_rollover_loses_and_duplicates_no_closed_kline(
    server: FakeBinance,
    client: BinanceClient,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
) -> None:
    server.max_age = DAY  # Binance's limit: the server ends every connection at 24 h
    hours = 25

    async def feed() -> None:
        for i in range(hours * 360 + 12):
            await trio.sleep(10)
            await server.publish("btcusdt@kline_1m", kline(i))

    # A handover window longer than the feed's period, so that the overlap shows.
    async with open_stream(client, "btcusdt@kline_1m", handover=30) as stream:
        nursery.start_soon(feed)
        closed = []
        others = []
        async for event in stream:
            if isinstance(event, Kline) and event.closed:
                closed.append(event.open_time)
                if len(closed) == hours * 60:
                    break
            elif not isinstance(event, Kline):
                others.append(event)
        stats = stream.statistics()
    assert others == []  # no StreamGap
    assert closed == [m * 60_000 for m in range(hours * 60)]
    assert stats.rollovers == 1
    assert stats.reconnects == 0
    assert stats.duplicates_dropped > 0
    assert server.connects == 2


async def test_server_shutdown_notice_rolls_over_without_loss(
    server: FakeBinance,
    client: BinanceClient,
    nursery: trio.Nursery,
    autojump_clock: trio.abc.Clock,
) -> None:
    async def feed() -> None:
        for i in range(300):
            await server.publish("btcusdt@trade", trade(i))
            await trio.sleep(0.1)

    async with open_stream(client, "btcusdt@trade") as stream:
        nursery.start_soon(feed)
        await trio.sleep(5)
        await server.shutdown_notice()
        events = [await stream.receive() for _ in range(300)]
        assert stream.statistics().rollovers == 1
    assert [e.trade_id for e in events] == list(range(300))
    assert server.connects == 2


# -- clean exit -----------------------------------------------------------------------------


async def test_clean_exit_leaves_no_task_and_no_socket(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    await trio.testing.wait_all_tasks_blocked()
    before = trio.lowlevel.current_statistics().tasks_living
    async with open_stream(client, "btcusdt@trade", "btcusdt@bookTicker") as stream:
        await stream.subscribe("ethusdt@trade")
        assert len(server.conns) == 1
    await trio.testing.wait_all_tasks_blocked()
    assert server.conns == set()
    assert trio.lowlevel.current_statistics().tasks_living == before


async def test_an_error_in_the_block_closes_everything(
    server: FakeBinance, client: BinanceClient, autojump_clock: trio.abc.Clock
) -> None:
    with pytest.raises(KeyError):
        async with open_stream(client, "btcusdt@trade"):
            raise KeyError("boom")
    await trio.testing.wait_all_tasks_blocked()
    assert server.conns == set()


async def test_an_unreachable_host_is_one_bare_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from aiocea_trio.streams import StreamConnectError

    async with BinanceClient(base_url="http://127.0.0.1:9") as client:
        with pytest.raises(StreamConnectError, match="cannot connect"):
            async with open_stream(client, "btcusdt@trade"):
                pass  # pragma: no cover - never entered


async def test_a_missing_extra_is_said_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "websockets" else real(name, *a),
    )
    async with BinanceClient(base_url="http://127.0.0.1:9") as client:
        with pytest.raises(ImportError, match=r"aiocea-trio\[streams\]"):
            async with open_stream(client, "btcusdt@trade"):
                pass  # pragma: no cover - never entered
