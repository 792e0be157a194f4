"""The simulator's streams: Binance's paths and subscription protocol, payloads consistent with
the REST answers, the true book followed by diffs, the connection rules and the faults."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
import trio
from httpx_ws import WebSocketDisconnect, aconnect_ws
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Ping, Request

from aiocea_trio.endpoints import KLINE_INTERVALS
from aiocea_trio.markets import Market
from aiocea_trio.sim import SimExchange
from aiocea_trio.sim.streams import PING_EXTENSION
from aiocea_trio.sim.symbols import default_symbols

START = 1_767_225_600_000 + 5 * 3_600_000  # 2026-01-01 05:00 UTC
#: Seconds on trio's clock a test may take (virtual seconds under ``autojump_clock``).
LIMIT = 1000


def limit(
    seconds: float,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """A hard limit on trio's clock (virtual under ``autojump_clock``): a hang fails fast."""

    def decorate(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(test)
        async def guarded(*args: Any, **kwargs: Any) -> None:
            with trio.fail_after(seconds):
                await test(*args, **kwargs)

        return guarded

    return decorate


@pytest.fixture
def sim() -> SimExchange:
    return SimExchange(seed=3, start_time_ms=START)


@pytest.fixture
async def http(sim: SimExchange) -> Any:
    async with httpx.AsyncClient(transport=sim.ws_transport(), base_url="http://sim") as client:
        yield client


async def rest(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await http.get(path, params={k: str(v) for k, v in params.items()})
    assert r.status_code == 200, r.text
    return r.json()


class Raw:
    """A bare ASGI WebSocket client: sees pings, answers pongs only when told to."""

    def __init__(self, sim: SimExchange, path: str, query: bytes = b"") -> None:
        self.sim = sim
        self.path = path
        self.query = query
        self.to_app, self._from_client = trio.open_memory_channel[dict[str, Any]](100)
        self._to_client, self.from_app = trio.open_memory_channel[dict[str, Any]](10_000)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        scope = {
            "type": "websocket",
            "path": self.path,
            "query_string": self.query,
            "client": ("10.0.0.1", 1),
            "extensions": {PING_EXTENSION: {}},
        }
        await self.to_app.send({"type": "websocket.connect"})
        task_status.started()
        await self.sim.app(scope, self._from_client.receive, self._to_client.send)

    async def next(self, kind: str = "websocket.send") -> dict[str, Any]:
        while True:
            message = await self.from_app.receive()
            if message["type"] in (kind, "websocket.close"):
                return message


async def reply(ws: Any) -> Any:
    """The next control reply, skipping stream events."""
    while True:
        message = await ws.receive_json()
        if "id" in message or "code" in message:
            return message


@limit(LIMIT)
async def test_subscription_protocol(http: httpx.AsyncClient, autojump_clock: Any) -> None:
    async with aconnect_ws("http://sim/ws", http) as ws:
        await trio.sleep(0.25)
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1})
        assert await reply(ws) == {"result": None, "id": 1}
        await trio.sleep(0.25)
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert await reply(ws) == {"result": ["btcusdt@aggTrade"], "id": 3}
        await trio.sleep(0.25)
        await ws.send_json({"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
        assert await reply(ws) == {"result": False, "id": 2}
        await trio.sleep(0.25)
        await ws.send_json({"method": "SET_PROPERTY", "params": ["combined", True], "id": 5})
        assert await reply(ws) == {"result": None, "id": 5}
        await trio.sleep(0.25)
        await ws.send_json({"method": "SET_PROPERTY", "params": ["combined", 1], "id": 6})
        assert (await reply(ws))["code"] == 1
        await trio.sleep(0.25)
        await ws.send_json({"method": "GET_PROPERTY", "params": ["nope"], "id": 7})
        assert await reply(ws) == {"code": 0, "msg": "Unknown property", "id": 7}
        await trio.sleep(0.25)
        await ws.send_text("{not json")
        assert (await reply(ws))["code"] == 3
        await trio.sleep(0.25)
        await ws.send_json({"params": []})
        assert (await reply(ws))["msg"] == "Invalid request: missing field `method`"
        await trio.sleep(0.25)
        await ws.send_json({"method": "PING", "id": 8})
        assert (await reply(ws))["msg"].startswith("Invalid request: unknown variant")
        await trio.sleep(0.25)
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 9})
        assert await reply(ws) == {"result": None, "id": 9}
    async with aconnect_ws("http://sim/dstream/stream?streams=btcusd_perp@markPrice", http) as ws:
        await trio.sleep(0.25)
        await ws.send_json({"method": "GET_PROPERTY", "params": ["combined"], "id": "abc"})
        error = await ws.receive_json()
        assert error["msg"] == "Invalid request: request ID must be an unsigned integer"
        event = await ws.receive_json()
        assert event["stream"] == "btcusd_perp@markPrice"
        assert event["data"]["e"] == "markPriceUpdate"


@limit(LIMIT)
async def test_payload_shapes(http: httpx.AsyncClient, autojump_clock: Any) -> None:
    spot = "btcusdt@trade/btcusdt@aggTrade/btcusdt@kline_1m/btcusdt@miniTicker/btcusdt@ticker"
    spot += "/btcusdt@bookTicker/btcusdt@depth5/btcusdt@depth@100ms"
    keys = {
        "trade": {"e", "E", "s", "t", "p", "q", "T", "m", "M"},
        "aggTrade": {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"},
        "kline": {"e", "E", "s", "k"},
        "miniTicker": {"e", "E", "s", "c", "o", "h", "l", "v", "q"},
        "ticker": set("eEspPwxcQbBaAohlvqOCFLn"),
        "bookTicker": {"u", "s", "b", "B", "a", "A"},
        "depth5": {"lastUpdateId", "bids", "asks"},
        "depth@100ms": {"e", "E", "s", "U", "u", "b", "a"},
    }
    seen: dict[str, set[str]] = {}
    async with aconnect_ws(f"http://sim/stream?streams={spot}", http) as ws:
        while len(seen) < len(keys):
            event = await ws.receive_json()
            seen[event["stream"].split("@", 1)[1].replace("kline_1m", "kline")] = set(event["data"])
    assert seen == keys
    futures = "btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@kline_1m/btcusdt@ticker"
    async with aconnect_ws(f"http://sim/fstream/market/stream?streams={futures}", http) as ws:
        got = {}
        while len(got) < 4:
            event = await ws.receive_json()
            got[event["stream"]] = set(event["data"])
    assert got["btcusdt@aggTrade"] == {"e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"}
    assert got["btcusdt@markPrice@1s"] == {"e", "E", "s", "p", "i", "P", "r", "T"}
    assert "b" not in got["btcusdt@ticker"]
    async with aconnect_ws("http://sim/fstream/public/ws/btcusdt@bookTicker", http) as ws:
        assert set(await ws.receive_json()) == {"e", "u", "E", "T", "s", "b", "B", "a", "A"}


@limit(LIMIT)
async def test_a_route_delivers_only_its_kinds(
    http: httpx.AsyncClient, autojump_clock: Any
) -> None:
    async with aconnect_ws("http://sim/fstream/public/ws/btcusdt@aggTrade", http) as ws:
        with trio.move_on_after(10) as cs:
            await ws.receive_json()
        assert cs.cancelled_caught  # acknowledged (listed) but silent
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
        assert (await ws.receive_json())["result"] == ["btcusdt@aggTrade"]


@limit(LIMIT)
async def test_closed_klines_and_trades_equal_rest(
    http: httpx.AsyncClient, autojump_clock: Any
) -> None:
    closed = []
    trades = []
    url = "http://sim/stream?streams=ethusdt@kline_1m/ethusdt@trade/ethusdt@aggTrade"
    aggs = []
    async with aconnect_ws(url, http) as ws:
        while len(closed) < 3:
            event = await ws.receive_json()
            data = event["data"]
            if data["e"] == "kline" and data["k"]["x"]:
                closed.append(data["k"])
            elif data["e"] == "trade":
                trades.append(data)
            elif data["e"] == "aggTrade":
                aggs.append(data)
    assert len({k["t"] for k in closed}) == 3  # each closed once
    for k in closed:
        row = (
            await rest(
                http, "/api/v3/klines", symbol="ETHUSDT", interval="1m", startTime=k["t"], limit=1
            )
        )[0]
        assert [
            k["t"],
            k["o"],
            k["h"],
            k["l"],
            k["c"],
            k["v"],
            k["T"],
            k["q"],
            k["n"],
            k["V"],
            k["Q"],
        ] == row[:11]
    first, last = trades[0]["t"], trades[-1]["t"]
    assert [t["t"] for t in trades] == list(range(first, last + 1))
    expect = await rest(
        http, "/api/v3/historicalTrades", symbol="ETHUSDT", fromId=first, limit=1000
    )
    for t, r in zip(trades, expect, strict=False):
        assert (t["t"], t["p"], t["q"], t["T"], t["m"]) == (
            r["id"],
            r["price"],
            r["qty"],
            r["time"],
            r["isBuyerMaker"],
        )
    expect = await rest(http, "/api/v3/aggTrades", symbol="ETHUSDT", fromId=first, limit=1000)
    for t, r in zip(aggs, expect, strict=False):
        assert (t["a"], t["p"], t["q"], t["T"], t["m"]) == (r["a"], r["p"], r["q"], r["T"], r["m"])


def _apply(book: dict[Decimal, Decimal], changes: list[list[str]]) -> None:
    for p, q in changes:
        if Decimal(q):
            book[Decimal(p)] = Decimal(q)
        else:
            book.pop(Decimal(p), None)


@pytest.mark.parametrize(
    ("market", "path", "symbol"),
    [("spot", "/ws", "BTCUSDT"), ("usdm", "/fstream/public/ws", "BTCUSDT")],
)
@limit(LIMIT)
async def test_snapshot_plus_100s_of_diffs_is_the_true_book(
    http: httpx.AsyncClient, autojump_clock: Any, market: str, path: str, symbol: str
) -> None:
    prefix, limit = ("/api/v3", 5000) if market == "spot" else ("/fapi/v1", 1000)
    async with aconnect_ws(f"http://sim{path}/{symbol.lower()}@depth@100ms", http) as ws:
        first = await ws.receive_json()
        snap = await rest(http, f"{prefix}/depth", symbol=symbol, limit=limit)
        uid = snap["lastUpdateId"]
        bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
        asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
        assert first["U"] <= uid + 1
        event = first
        applied = 0
        previous_u = None
        while True:
            if event["u"] > uid:
                assert event["U"] <= uid + 1  # no gap
                if market != "spot" and previous_u is not None:
                    assert event["pu"] == previous_u
                _apply(bids, event["b"])
                _apply(asks, event["a"])
                uid = event["u"]
                applied += 1
            previous_u = event["u"]
            if applied == 100:
                break
            event = await ws.receive_json()
        true = await rest(http, f"{prefix}/depth", symbol=symbol, limit=limit)
        assert true["lastUpdateId"] == uid
        assert sorted(bids.items(), reverse=True) == [
            (Decimal(p), Decimal(q)) for p, q in true["bids"]
        ]
        assert sorted(asks.items()) == [(Decimal(p), Decimal(q)) for p, q in true["asks"]]


@limit(LIMIT)
async def test_book_ticker_is_depth_level_one(http: httpx.AsyncClient, autojump_clock: Any) -> None:
    async with aconnect_ws("http://sim/ws/solusdt@bookTicker", http) as ws:
        for _ in range(5):
            event = await ws.receive_json()
            book = await rest(http, "/api/v3/depth", symbol="SOLUSDT", limit=5)
            assert event["u"] == book["lastUpdateId"]
            assert [event["b"], event["B"]] == book["bids"][0]
            assert [event["a"], event["A"]] == book["asks"][0]


@limit(LIMIT)
async def test_missing_pongs_close_the_connection(sim: SimExchange, autojump_clock: Any) -> None:
    raw = Raw(sim, "/ws/btcusdt@miniTicker")
    async with trio.open_nursery() as nursery:
        await nursery.start(raw.run)
        ping = await raw.next("aiocea.websocket.ping")
        assert trio.current_time() == 20
        await raw.to_app.send({"type": "aiocea.websocket.pong", "bytes": ping["bytes"]})
        closed = await raw.next("websocket.close")
        # pings at 20 (answered), 40, 60, ...: the one of 40 is 60 s old at 100
        assert trio.current_time() == 100
        assert closed["code"] == 1008
        assert "pong" in closed["reason"]


@limit(LIMIT)
async def test_futures_ping_rules(sim: SimExchange, autojump_clock: Any) -> None:
    raw = Raw(sim, "/dstream/ws")
    async with trio.open_nursery() as nursery:
        await nursery.start(raw.run)
        await raw.next("aiocea.websocket.ping")
        assert trio.current_time() == 180
        await raw.next("websocket.close")
        assert trio.current_time() == 780


@limit(LIMIT)
async def test_rate_limit_disconnects(sim: SimExchange, autojump_clock: Any) -> None:
    raw = Raw(sim, "/ws")
    async with trio.open_nursery() as nursery:
        await nursery.start(raw.run)
        for i in range(6):
            body = {"method": "LIST_SUBSCRIPTIONS", "id": i}
            await raw.to_app.send({"type": "websocket.receive", "text": json.dumps(body)})
        replies = [await raw.next() for _ in range(6)]
        assert replies[-1]["type"] == "websocket.close"
        assert replies[-1]["reason"] == "too many requests"


@limit(86_400 + LIMIT)
async def test_24h_lifetime(sim: SimExchange, autojump_clock: Any) -> None:
    raw = Raw(sim, "/ws")
    async with trio.open_nursery() as nursery:
        await nursery.start(raw.run)
        while True:
            message = await raw.from_app.receive()
            if message["type"] == "aiocea.websocket.ping":
                await raw.to_app.send({"type": "aiocea.websocket.pong", "bytes": message["bytes"]})
            elif message["type"] == "websocket.close":
                break
        assert trio.current_time() == 86400
        assert "24 h" in message["reason"]


def _crowded(market: str, count: int) -> SimExchange:
    """A simulator with ``count`` more symbols of ``market``, copies of its BTC one."""
    specs = default_symbols(START)
    model = next(s for s in specs if s.market == market and s.base == "BTC")
    quote = model.symbol.removeprefix("BTC")
    extra = [
        attrs.evolve(
            model, symbol=f"X{i}{quote}", base=f"X{i}", pair=f"X{i}USD" if model.pair else ""
        )
        for i in range(count)
    ]
    return SimExchange(seed=3, start_time_ms=START, symbols=[*specs, *extra])


@pytest.mark.parametrize(
    ("market", "path", "cap"), [("spot", "/ws", 1024), ("coinm", "/dstream/ws", 200)]
)
@limit(LIMIT)
async def test_subscribing_past_the_stream_cap_is_refused(
    autojump_clock: Any, market: str, path: str, cap: int
) -> None:
    sim = _crowded(market, 64 if market == "spot" else 14)
    # (klines of at most a day: a month's candle would compute a month of each symbol)
    kinds = [f"kline_{i}" for i in KLINE_INTERVALS[Market(market)] if i[-1] in "smh" or i == "1d"]
    kinds += ["trade", "aggTrade", "bookTicker"]
    crowd = [s.symbol.lower() for s in sim.symbol_specs if s.market == market and s.base[0] == "X"]
    names = [f"{symbol}@{kind}" for symbol in crowd for kind in kinds][:cap]
    assert len(names) == cap
    extra = "btcusdt@trade" if market == "spot" else "btcusd_perp@markPrice"
    async with httpx.AsyncClient(transport=sim.ws_transport(), base_url="http://sim") as http:
        async with aconnect_ws(f"http://sim{path}", http) as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": names, "id": 1})
            assert await reply(ws) == {"result": None, "id": 1}
            await ws.send_json({"method": "SUBSCRIBE", "params": [extra], "id": 2})
            refused = await reply(ws)
            assert refused["code"] == 2
            assert refused["id"] == 2
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert (await reply(ws))["result"] == names
            while "e" not in await ws.receive_json():
                pass  # the existing streams keep flowing
            [conn] = sim.streams.connections
            assert conn.close_code is None


@limit(LIMIT)
async def test_faults(sim: SimExchange, http: httpx.AsyncClient, autojump_clock: Any) -> None:
    async with aconnect_ws("http://sim/stream?streams=btcusdt@depth", http) as ws:
        a = (await ws.receive_json())["data"]
        assert sim.streams.skip_update_id("spot") == 1
        b = (await ws.receive_json())["data"]
        assert b["U"] > a["u"] + 1  # the skipped event's ids are missing
        assert sim.streams.silence(30) == 1
        start = trio.current_time()
        await ws.receive_json()
        assert trio.current_time() - start >= 30
        assert sim.streams.server_shutdown(close_after=5) == 1
        notice = await ws.receive_json()
        while notice.get("stream") != "!serverShutdown":
            notice = await ws.receive_json()
        assert notice["data"]["e"] == "serverShutdown"
        start = trio.current_time()
        with pytest.raises(WebSocketDisconnect) as closed:
            await _until_closed(ws)
        assert (closed.value.code, closed.value.reason) == (1000, "server shutdown")
        assert trio.current_time() - start == 5
    async with aconnect_ws("http://sim/ws/btcusdt@trade", http) as ws:
        await ws.receive_json()
        assert sim.streams.drop() == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            await _until_closed(ws)
        assert closed.value.code == 1011


async def _until_closed(ws: Any) -> None:
    while True:
        await ws.receive_json()


@limit(LIMIT)
async def test_slow_consumer_is_disconnected(sim: SimExchange, autojump_clock: Any) -> None:
    sim.streams.rules["spot"] = sim.streams.rules["spot"].__class__(20, 60, 5, 1024, send_buffer=8)
    raw = Raw(sim, "/stream", b"streams=btcusdt@trade/ethusdt@trade")
    raw._to_client, raw.from_app = trio.open_memory_channel[dict[str, Any]](0)
    async with trio.open_nursery() as nursery:
        await nursery.start(raw.run)
        await trio.sleep(5)  # not reading
        closed = await raw.next("websocket.close")
        assert closed["reason"].startswith("slow consumer")
        nursery.cancel_scope.cancel()


@limit(20)  # real seconds
async def test_served_over_a_socket(sim: SimExchange) -> None:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(sim.serve, "127.0.0.1", 0)
        async with httpx.AsyncClient() as client:
            ws_url = (
                url.replace("http", "ws") + "/fstream/public/stream?streams=btcusdt@depth5@100ms"
            )
            async with aconnect_ws(ws_url, client) as ws:
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
                assert await ws.receive_json() == {"result": ["btcusdt@depth5@100ms"], "id": 1}
                event = await ws.receive_json()
                assert len(event["data"]["b"]) == 5
        nursery.cancel_scope.cancel()


async def _silent_client(url: str, path: str) -> tuple[list[float], CloseConnection]:
    """A bare wsproto client over a socket that never answers pings: the times it saw pings
    at, and the close it got."""
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    ws = WSConnection(ConnectionType.CLIENT)
    pings: list[float] = []
    async with stream:
        await stream.send_all(ws.send(Request(host=host, target=path)))
        while True:
            data = await stream.receive_some()
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Ping):
                    pings.append(trio.current_time())
                elif isinstance(event, CloseConnection):
                    return pings, event
            assert data, "closed without a close frame"


@limit(LIMIT)
async def test_served_pings_and_pong_deadline(sim: SimExchange, autojump_clock: Any) -> None:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(sim.serve, "127.0.0.1", 0)
        ws_url = url.replace("http", "ws")
        # trio-websocket answers pings: the connection outlives several deadlines
        async with open_websocket_url(ws_url + "/ws/btcusdt@miniTicker") as conn:
            start = trio.current_time()
            while trio.current_time() - start < 200:
                json.loads(await conn.get_message())
            [served] = sim.streams.connections
            assert served.has_ping
            assert served.close_code is None
        # a client that does not answer: pings at 20 s, 40 s, ...; closed 60 s after the first
        start = trio.current_time()
        pings, close = await _silent_client(url, "/ws/btcusdt@miniTicker")
        assert [t - start for t in pings] == [20, 40, 60]
        assert trio.current_time() - start == 80
        assert (close.code, close.reason) == (1008, "pong timeout")
        nursery.cancel_scope.cancel()
