"""WebSocket streams side by side: aiocea_trio, python-binance and ccxt pro (issue 17).

One child process serves the simulator (hypercorn's trio worker) on a free 127.0.0.1 port,
streams included. Every client runs in its own subprocess, one after another, and reads the
same spot stream, ``btcusdt@trade``, from it:

* ``aiocea_typed``: ``open_stream(client, "btcusdt@trade")``, typed ``Trade`` events;
* ``aiocea_raw``: the same with ``raw=True`` (``{"stream", "data"}`` dicts);
* ``python_binance``: ``BinanceSocketManager(client).trade_socket("BTCUSDT")``, its
  ``STREAM_URL`` pointed at the simulator (``max_queue_size`` raised from 100 to 10**6, or it
  would drop the connection when it falls behind at 10k msgs/s);
* ``ccxt``: ``ccxt.pro.binance().watch_trades("BTC/USDT")``, REST and WebSocket URLs pointed at
  the simulator (``tradesLimit`` raised to 10**5 so no trade leaves its cache unread);
* two floors, to split aiocea_trio's cost by layer: ``ws_recv``, websockets' trio client
  alone (``recv()`` in a loop, the two fields read by string search), and ``ws_json``, the
  same plus ``json.loads`` — what aiocea_trio's reader does before its own layers.

The bench feed. The simulator normally pushes each second's trades in one burst when the
second completes (a real symbol has ~10–30 trades a second). Here the serving process
replaces ``StreamConnection._pusher`` (in that process only; the package is untouched) by a
paced one: for a connection subscribed to a ``@trade`` stream it sends ``count`` synthetic
trades at ``rate`` a second, spread evenly — trio's timer resolution is 1 ms, so at 10k/s a
wake-up sends the ~10 messages then due, each built and stamped at its own send time — or, at
rate 0 ("max"), as fast as the server can write them (a flood, with the server's queue kept
under 2,000 messages). Each trade's ``t`` is its sequence number and its ``E`` is the
simulator's wall clock in microseconds when it was built (Binance's ``timeUnit=MICROSECOND``
format; ``T`` stays in ms for the parsers), so every client can report the delay from the
simulator's send to the consumer with the same clock (``time.time_ns()``). The server's send
queue is raised to 10**6 messages, so a client that falls behind builds up delay rather than
being disconnected as a slow consumer.

Measured in each client's process, from its ``warm``-th message to the last one (so
imports, client creation, ccxt's ``load_markets``, the connection and subscription are
excluded): client CPU µs per message (``time.process_time``, every thread), messages per
second, the share of one core used (CPU/wall) and the p50/p99/max delay. At 1k and 10k
msgs/s the rate is the simulator's: a client keeping up shows that rate and a flat delay. At
"max" the simulator floods: messages/s is the lesser of the server's and the client's pace;
``1e6 / CPU µs`` is what the client's path would take on one core.

``--reps`` rounds (3 by default, clients' order rotated), medians reported.

    python benchmarks/bench_streams.py                # about 6 minutes
    python benchmarks/bench_streams.py --quick        # a smoke run: 10k msgs/s, ~15 s
    python benchmarks/bench_streams.py --profile      # + cProfile of aiocea typed at max

Prints tables and writes ``benchmarks/results/bench_streams.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio

RESULTS = Path(__file__).parent / "results" / "bench_streams.json"
STREAM = "btcusdt@trade"
CLIENTS = {
    "aiocea_typed": "aiocea open_stream (typed)",
    "aiocea_raw": "aiocea open_stream raw=True",
    "python_binance": "python-binance trade_socket",
    "ccxt": "ccxt.pro watch_trades",
    "ws_recv": "floor: websockets recv",
    "ws_json": "floor: websockets recv+json",
}
PEERS = ("aiocea_typed", "aiocea_raw", "python_binance", "ccxt")
NEEDS = {"python_binance": "binance", "ccxt": "ccxt"}
ASYNCIO_CLIENTS = {"python_binance", "ccxt"}
EXCLUDED = (
    "start-up costs are excluded: imports, client creation, ccxt's load_markets, the "
    "connection and the subscription, and the first `warm` messages"
)
GOAL = "aiocea_trio the lowest CPU per message of the three; p99 delay under 5 ms at 10k msgs/s"
FLOOD_QUEUE = 2000


# -- the simulator's process: the paced bench feed ---------------------------------------------


class Feed:
    """What the next subscribed ``@trade`` connection is sent, and what happened last time."""

    rate = 1000
    count = 1000
    last: dict[str, Any] = {}  # noqa: RUF012 - one process-wide setting


_PRICES = [f"{43_250 + i * 0.01:.8f}" for i in range(100)]


def _payload(i: int) -> dict[str, Any]:
    now_us = time.time_ns() // 1000
    return {
        "e": "trade",
        "E": now_us,
        "s": "BTCUSDT",
        "t": i,
        "p": _PRICES[i % 100],
        "q": "0.00150000",
        "T": now_us // 1000,
        "m": bool(i & 1),
        "M": True,
    }


async def _paced_pusher(self: Any) -> None:
    """Replaces ``StreamConnection._pusher`` in the serving process (see the module doc)."""
    while True:
        trades = [s for s in self.streams.values() if s.kind == "trade"]
        if trades:
            break
        self._changed = trio.Event()
        await self._changed.wait()
    name = trades[0].name
    rate, count = Feed.rate, Feed.count
    lags: list[float] = []
    cpu0, t0 = time.process_time(), trio.current_time()
    i = 0
    while i < count:
        if rate:
            now = trio.current_time()
            due = min(count, int((now - t0) * rate) + 1)
            while i < due:
                lags.append(trio.current_time() - (t0 + i / rate))
                self._push(name, _payload(i))
                i += 1
            if i < count:
                await trio.sleep_until(t0 + i / rate)
        else:
            for _ in range(min(256, count - i)):
                self._push(name, _payload(i))
                i += 1
            await trio.lowlevel.checkpoint()
            while self._out.statistics().current_buffer_used > FLOOD_QUEUE:  # noqa: ASYNC110
                await trio.sleep(0.001)  # (the queue has no "drained" event to wait for)
    wall = trio.current_time() - t0
    lags.sort()
    Feed.last = {
        "sent": count,
        "rate": rate,
        "seconds": round(wall, 3),
        "sent_per_s": round(count / wall) if wall else None,
        "server_cpu_share": round((time.process_time() - cpu0) / wall, 2) if wall else None,
        "schedule_lag_p99_ms": round(lags[int(len(lags) * 0.99)] * 1e3, 3) if lags else None,
    }
    await trio.sleep_forever()


async def _serve_ws_lean(app: Any, stream: trio.SocketStream) -> None:
    """One WebSocket connection of the lean server: wsproto handshake, the ASGI app called
    as hypercorn would, and every frame the app sends appended to one buffer that a flusher
    writes with a single ``send_all`` per wake-up (hypercorn writes each message with its own
    ``send_all``, ~100 µs a message here). No pings (no ping extension)."""
    import wsproto
    import wsproto.events as ev
    from wsproto.utilities import LocalProtocolError

    ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    inbox_send, inbox = trio.open_memory_channel[dict[str, Any]](1000)
    out = bytearray()
    ready = trio.lowlevel.ParkingLot()
    drained = trio.lowlevel.ParkingLot()
    closing = False
    request = None
    while request is None:
        data = await stream.receive_some(65536)
        if not data:
            await stream.aclose()
            return
        ws.receive_data(data)
        request = next((e for e in ws.events() if isinstance(e, ev.Request)), None)
    path, _, query = request.target.partition("?")
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "subprotocols": [],
        "extensions": {},
    }
    inbox_send.send_nowait({"type": "websocket.connect"})

    async def receive() -> dict[str, Any]:
        return await inbox.receive()

    async def send(message: dict[str, Any]) -> None:
        nonlocal closing
        kind = message["type"]
        if kind == "websocket.accept":
            out.extend(ws.send(ev.AcceptConnection()))
        elif kind == "websocket.send":
            while len(out) > 1 << 18:
                await drained.park()
            out.extend(ws.send(ev.TextMessage(message["text"])))
        elif kind == "websocket.close":
            with contextlib.suppress(LocalProtocolError):
                out.extend(ws.send(ev.CloseConnection(message.get("code", 1000))))
            closing = True
        ready.unpark_all()

    async def reader() -> None:
        while data := await stream.receive_some(65536):
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, ev.TextMessage):
                    await inbox_send.send({"type": "websocket.receive", "text": event.data})
                elif isinstance(event, ev.Ping):
                    out.extend(ws.send(event.response()))
                    ready.unpark_all()
                elif isinstance(event, ev.CloseConnection):
                    with contextlib.suppress(LocalProtocolError):
                        out.extend(ws.send(event.response()))
                    ready.unpark_all()
                    await inbox_send.send({"type": "websocket.disconnect", "code": event.code})
                    return
        await inbox_send.send({"type": "websocket.disconnect", "code": 1006})

    async def flusher() -> None:
        while True:
            while not out:
                if closing:
                    return
                await ready.park()
            data = bytes(out)
            out.clear()
            drained.unpark_all()
            await stream.send_all(data)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(flusher)
            await app(scope, receive, send)
            closing = True
            ready.unpark_all()
            with trio.move_on_after(2):
                while out:  # noqa: ASYNC110 - a last flush, polled
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        with trio.move_on_after(1, shield=True):
            await stream.aclose()


def serve_child() -> None:
    """Serve the simulator with the bench feed; print its URL; then answer stdin lines:
    ``feed RATE COUNT`` (the next connection's feed) and ``stats`` (the last feed's figures)."""
    import attrs

    from aiocea_trio.sim import SimExchange
    from aiocea_trio.sim.streams import StreamConnection

    StreamConnection._pusher = _paced_pusher  # type: ignore[method-assign]

    async def main() -> None:
        unlimited = {"spot": 10**12, "usdm": 10**12, "coinm": 10**12}
        sim = SimExchange(seed=1, weight_limits=unlimited)
        for market, rules in sim.streams.rules.items():
            sim.streams.rules[market] = attrs.evolve(rules, send_buffer=10**6)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(sim.serve, "127.0.0.1", 0)
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listeners[0].socket.getsockname()[1]
            nursery.start_soon(trio.serve_listeners, partial(_serve_ws_lean, sim.app), listeners)
            print(json.dumps({"rest": url, "lean": f"http://127.0.0.1:{port}"}), flush=True)
            while line := await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True):
                words = line.split()
                if words[0] == "feed":
                    Feed.rate, Feed.count = int(words[1]), int(words[2])
                    Feed.last = {}
                    print("ok", flush=True)
                elif words[0] == "stats":
                    print(json.dumps(Feed.last), flush=True)
            nursery.cancel_scope.cancel()

    trio.run(main)


class Simulator:
    """The parent's handle on the serving process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.urls: dict[str, str] = json.loads(self._line())

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator's process exited")
        return line.strip()

    def ask(self, text: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- the clients' processes ---------------------------------------------------------------------


class Recorder:
    """Counts messages from the ``warm``-th on, their delays, and CPU and wall over them."""

    def __init__(self, warm: int, last: int) -> None:
        self.warm, self.last = warm, last
        self.n = 0
        self.delays: list[int] = []
        self.cpu0 = self.wall0 = 0.0
        self.cpu = self.wall = 0.0
        self.done = False

    def add(self, t: int, e_us: int) -> bool:
        """One message (trade id ``t``, sent at ``e_us``); True once the last one came."""
        if t >= self.warm:
            self.delays.append(time.time_ns() // 1000 - e_us)
            if self.n == 0:
                self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
            self.n += 1
        if t >= self.last:
            self.cpu = time.process_time() - self.cpu0
            self.wall = time.perf_counter() - self.wall0
            self.done = True
        return self.done

    def result(self) -> dict[str, Any]:
        if not self.done:
            self.cpu = time.process_time() - self.cpu0
            self.wall = time.perf_counter() - self.wall0
        d = sorted(self.delays)

        def pct(q: float) -> float | None:
            return round(d[min(len(d) - 1, int(len(d) * q))] / 1000, 3) if d else None

        n = max(self.n - 1, 1)  # intervals between the first timed message and the last
        return {
            "messages": self.n,
            "complete": self.done,
            "cpu_us_per_msg": round(self.cpu / n * 1e6, 2),
            "msgs_per_s": round(n / self.wall) if self.wall else 0,
            "core_share": round(self.cpu / self.wall, 2) if self.wall else 0,
            "delay_p50_ms": pct(0.5),
            "delay_p99_ms": pct(0.99),
            "delay_max_ms": pct(1.0),
        }


def _field(text: str, key: str) -> int:
    i = text.find(key) + len(key)
    return int(text[i : text.find(",", i)])


async def client_trio(name: str, urls: dict[str, str], rec: Recorder, deadline: float) -> None:
    url = urls["stream"]
    ws_url = url.replace("http://", "ws://")
    with trio.move_on_after(deadline):
        if name in ("ws_recv", "ws_json"):
            from websockets.trio.client import connect

            loads = json.loads
            async with connect(
                f"{ws_url}/stream?streams={STREAM}", ping_interval=None, compression=None
            ) as ws:
                while True:
                    text = await ws.recv()
                    if name == "ws_json":
                        data = loads(text)["data"]
                        if rec.add(data["t"], data["E"]):
                            return
                    elif rec.add(_field(text, '"t":'), _field(text, '"E":')):
                        return
        from aiocea_trio import BinanceClient
        from aiocea_trio.streams import open_stream

        raw = name == "aiocea_raw"
        async with BinanceClient(base_url=url) as client:
            async with open_stream(client, STREAM, raw=raw) as stream:
                if raw:
                    async for event in stream:
                        data = event["data"]
                        if rec.add(data["t"], data["E"]):
                            return
                else:
                    async for event in stream:
                        if rec.add(event.trade_id, event.event_time):
                            return


async def client_asyncio(name: str, urls: dict[str, str], rec: Recorder, deadline: float) -> None:
    url, ws_url = urls["rest"], urls["stream"].replace("http://", "ws://")
    try:
        async with asyncio.timeout(deadline):
            if name == "python_binance":
                await _python_binance(url, ws_url, rec)
            else:
                await _ccxt(url, ws_url, rec)
    except TimeoutError:
        pass


async def _python_binance(url: str, ws_url: str, rec: Recorder) -> None:
    import binance

    client = binance.AsyncClient()
    client.API_URL = f"{url}/api"
    manager = binance.BinanceSocketManager(client, max_queue_size=10**6)
    manager.STREAM_URL = f"{ws_url}/"
    try:
        async with manager.trade_socket("BTCUSDT") as socket:
            while True:
                msg = await socket.recv()
                if msg.get("e") == "error":
                    raise RuntimeError(f"python-binance: {msg}")
                if rec.add(msg["t"], msg["E"]):
                    return
    finally:
        await client.close_connection()


async def _ccxt(url: str, ws_url: str, rec: Recorder) -> None:
    import ccxt.pro

    exchange = ccxt.pro.binance(
        {
            "options": {"fetchMarkets": ["spot"], "fetchCurrencies": False, "tradesLimit": 10**5},
        }
    )
    api = dict(exchange.urls["api"])
    for key, value in api.items():
        if isinstance(value, str) and value.startswith("https://api.binance.com"):
            api[key] = url + value[len("https://api.binance.com") :]
    ws = dict(api["ws"])
    ws["spot"] = f"{ws_url}/ws"
    api["ws"] = ws
    exchange.urls["api"] = api
    try:
        await exchange.load_markets()
        while True:
            for trade in await exchange.watch_trades("BTC/USDT"):
                info = trade["info"]
                if rec.add(int(info["t"]), int(info["E"])):
                    return
    finally:
        await exchange.close()


def client_child(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore")  # third-party import-time deprecations
    spec = json.loads(args.client_args)
    rec = Recorder(spec["warm"], spec["count"] - 1)
    call = (args.client, spec["urls"], rec, spec["deadline"])
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if args.client in ASYNCIO_CLIENTS:
        asyncio.run(client_asyncio(*call))
    else:
        trio.run(client_trio, *call)
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue(), file=sys.stderr)
    print(json.dumps(rec.result()), flush=True)


# -- the parent ---------------------------------------------------------------------------------


def run_one(
    sim: Simulator,
    name: str,
    rate: int,
    count: int,
    warm: int,
    *,
    via: str = "lean",
    profile: bool = False,
) -> dict[str, Any]:
    """One client in its own process; ``via`` is the server its stream comes through
    (``lean`` or ``rest``: hypercorn)."""
    assert sim.ask(f"feed {rate} {count}") == "ok"
    deadline = (count / rate if rate else count / 5000) * 3 + 30
    urls = {"rest": sim.urls["rest"], "stream": sim.urls[via]}
    spec = {"urls": urls, "count": count, "warm": warm, "deadline": deadline}
    cmd = [sys.executable, __file__, "--client", name, "--client-args", json.dumps(spec)]
    if profile:
        cmd.append("--profile")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline + 60, check=False)
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    if profile:
        print(done.stderr, file=sys.stderr)
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    figures["server"] = json.loads(sim.ask("stats"))
    return figures


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> Any:
        values = [s[key] for s in samples if s[key] is not None]
        return round(statistics.median(values), 3) if values else None

    out = {
        key: med(key)
        for key in ("cpu_us_per_msg", "msgs_per_s", "core_share", "delay_p50_ms", "delay_p99_ms")
    }
    out["delay_max_ms"] = max((s["delay_max_ms"] or 0) for s in samples)
    out["capacity_msgs_per_s"] = round(1e6 / out["cpu_us_per_msg"]) if out["cpu_us_per_msg"] else 0
    out["messages"] = min(s["messages"] for s in samples)
    out["complete"] = all(s["complete"] for s in samples)
    out["server_sent_per_s"] = statistics.median(
        s["server"].get("sent_per_s") or 0 for s in samples
    )
    out["server_cpu_share"] = statistics.median(
        s["server"].get("server_cpu_share") or 0 for s in samples
    )
    out["cpu_samples"] = [s["cpu_us_per_msg"] for s in samples]
    out["p99_samples"] = [s["delay_p99_ms"] for s in samples]
    return out


def micro_layers(n: int = 20000) -> dict[str, float]:
    """In-process µs per message of the pure-CPU steps of aiocea's path, on the same payload."""
    from aiocea_trio.streams.events import parser_for

    text = json.dumps({"stream": STREAM, "data": _payload(12345)}, separators=(",", ":"))
    data = json.loads(text)["data"]
    parse = parser_for(STREAM)

    def per(fn: Callable[[], object]) -> float:
        return round(min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6, 3)

    return {
        "json_loads_us": per(lambda: json.loads(text)),
        "typed_parse_us": per(lambda: parse(STREAM, data)),
        "message_bytes": len(text),
    }


def layer_account(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Aiocea's CPU per message at "max", split by differences between the clients."""
    got = {
        name: rows[name]["cpu_us_per_msg"]
        for name in ("ws_recv", "ws_json", "aiocea_raw", "aiocea_typed")
        if name in rows
    }
    if len(got) < 4:
        return {}
    return {
        "websockets_recv_us": got["ws_recv"],
        "json_loads_us": round(got["ws_json"] - got["ws_recv"], 2),
        "stream_layer_us": round(got["aiocea_raw"] - got["ws_json"], 2),
        "typed_events_us": round(got["aiocea_typed"] - got["aiocea_raw"], 2),
        "total_us": got["aiocea_typed"],
        "stream_layer_is": "reader task (frame dispatch, _on_data, _deliver: key, dedup, "
        "server_time_ms), Buffer.put/get with ParkingLot wake-up, the consumer's checkpoint "
        "and the {stream, data} wrapper",
    }


def verdict(by_rate: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"goal": GOAL}
    for rate, rows in by_rate.items():
        cpu = {p: rows[p]["cpu_us_per_msg"] for p in PEERS if p in rows}
        theirs = [v for p, v in cpu.items() if not p.startswith("aiocea")]
        if "aiocea_typed" in cpu and theirs:
            out[f"lowest_cpu_at_{rate}"] = {
                "typed": cpu["aiocea_typed"] < min(theirs),
                "raw": cpu.get("aiocea_raw", math.inf) < min(theirs),
            }
    ten = by_rate.get("10000", {})
    if "aiocea_typed" in ten:
        out["p99_under_5ms_at_10k"] = {
            p: (ten[p]["delay_p99_ms"] or math.inf) < 5
            for p in ("aiocea_typed", "aiocea_raw")
            if p in ten
        }
    return out


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in (
        "aiocea-trio",
        "trio",
        "websockets",
        "hypercorn",
        "python-binance",
        "ccxt",
        "aiohttp",
        "orjson",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _rate_label(rate: int) -> str:
    return "max" if rate == 0 else f"{rate // 1000}k"


def print_tables(result: dict[str, Any]) -> None:
    print(f"\n{STREAM} from the served simulator, median of {result['reps']} ({EXCLUDED})")
    print(
        f"{'rate':>4} {'client':<30} {'CPU µs/msg':>10} {'msgs/s':>8} {'core':>5} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'1-core cap':>10}"
    )
    for rate, rows in result["results"].items():
        for name, r in rows.items():
            print(
                f"{_rate_label(int(rate)):>4} {CLIENTS[name]:<30} {r['cpu_us_per_msg']:>10.2f} "
                f"{r['msgs_per_s']:>8,.0f} {r['core_share']:>5.2f} {r['delay_p50_ms'] or 0:>7.2f} "
                f"{r['delay_p99_ms'] or 0:>7.2f} {r['delay_max_ms'] or 0:>7.1f} "
                f"{r['capacity_msgs_per_s']:>10,}"
            )
    if result["layers"]:
        print("\naiocea_trio typed at max rate, CPU µs per message by layer:")
        for key, value in result["layers"].items():
            print(f"  {key}: {value}")
    print(f"micro (in-process): {result['micro']}")
    for key, r in result["through_hypercorn"].items():
        print(
            f"through hypercorn, {key}: {r['msgs_per_s']:,} msgs/s (server sent "
            f"{r['server'].get('sent_per_s')}/s), p99 {r['delay_p99_ms']} ms, "
            f"{r['cpu_us_per_msg']} µs/msg"
        )
    print(f"verdict: {json.dumps(result['verdict'])}")
    for note in result["skipped"]:
        print(f"skipped: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per paced run")
    parser.add_argument("--flood", type=int, default=50_000, help="timed messages at max rate")
    parser.add_argument("--warm", type=int, default=500, help="messages before timing starts")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (~15 s): 10k msgs/s only, 1 round"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile aiocea typed at max")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--client-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child()
        return
    if args.client:
        client_child(args)
        return
    if args.quick:
        args.seconds, args.warm, args.reps = 0.3, 100, 1
    rates = [10_000] if args.quick else [1000, 10_000, 0]
    clients = list(CLIENTS)
    skipped = []
    for peer, module in NEEDS.items():
        if importlib.util.find_spec(module) is None:
            skipped.append(f"{peer}: {module} is not installed (pip install 'aiocea-trio[bench]')")
            clients.remove(peer)
    began = time.perf_counter()
    samples: dict[tuple[int, str], list[dict[str, Any]]] = {}
    hypercorn: dict[str, dict[str, Any]] = {}
    sim = Simulator()
    try:
        for rep in range(args.reps):
            order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
            for rate in rates:
                timed = args.flood if rate == 0 else int(rate * args.seconds)
                for name in order:
                    got = run_one(sim, name, rate, args.warm + timed, args.warm)
                    samples.setdefault((rate, name), []).append(got)
                    print(
                        f"  round {rep + 1}/{args.reps} {_rate_label(rate)} {name}: "
                        f"{got['cpu_us_per_msg']} µs/msg, p99 {got['delay_p99_ms']} ms",
                        file=sys.stderr,
                    )
        if args.profile:
            run_one(sim, "aiocea_typed", 0, args.warm + args.flood, args.warm, profile=True)
        # the same simulator's streams through hypercorn (what `sim.serve` gives users)
        for name, rate in () if args.quick else (("ws_json", 0), ("aiocea_typed", 10_000)):
            timed = args.flood if rate == 0 else int(rate * args.seconds)
            hypercorn[f"{name} {_rate_label(rate)}"] = run_one(
                sim, name, rate, args.warm + timed, args.warm, via="rest"
            )
    finally:
        sim.close()
    by_rate = {
        str(rate): {name: summarise(samples[rate, name]) for name in clients} for rate in rates
    }
    result = {
        "benchmark": "bench_streams",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "python": platform.python_version(),
        "versions": versions(),
        "stream": STREAM,
        "excluded": EXCLUDED,
        "feed": "bench-only paced pusher in the serving process; E = send time in µs",
        "rates": {str(r): f"{_rate_label(r)} msgs/s" for r in rates},
        "seconds_per_paced_run": args.seconds,
        "flood_messages": args.flood,
        "warm": args.warm,
        "reps": args.reps,
        "quick": args.quick,
        "results": by_rate,
        "layers": layer_account(by_rate.get("0", {})),
        "through_hypercorn": hypercorn,
        "micro": micro_layers(),
        "skipped": skipped,
        "run_seconds": round(time.perf_counter() - began, 1),
    }
    result["verdict"] = verdict(by_rate)
    print_tables(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
