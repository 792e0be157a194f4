"""Peers side by side: aiocea_trio, python-binance, ccxt, raw httpx and raw aiohttp (issue 16).

One child process serves two simulators (hypercorn's trio worker) on free 127.0.0.1 ports:

* ``fast``: weight limits out of the way (10**12 per window), for part 1;
* ``scaled``: Binance's limits scaled to ``WINDOW``-second windows, for part 2: the same
  weight per second as Binance's 6000 (spot) and 2400 (USDⓈ-M, COIN-M) per minute, so 200
  and 80 per 2 s; exchangeInfo advertises them (``X-MBX-USED-WEIGHT-2S``).

The server process counts, per simulator and market, the weight its limiter charged (requests
answered 429 included, as Binance counts them) and the responses by status, archives apart;
the figures below are its deltas around each timed run. It warms its caches first (every hour
of 1m candles in the ranges, every archive file ``source="auto"`` would fetch), so no peer pays
for candle generation that another peer then gets for free.

Every peer runs in its own subprocess (trio or asyncio, and clean CPU accounting). Its fixed
start-up costs are excluded: imports, client creation, ccxt's ``load_markets``, aiocea's
exchangeInfo (limits learned) and time sync, connection set-up (a warm-up round of as many
requests as the concurrency). CPU is ``time.process_time()`` of the peer's process (every
thread) over the timed part only.

Part 1, client CPU per request: ``GET /api/v3/time`` (weight 1, each library's own call for it)
``--requests`` times at concurrency 1 and 64, ``--reps`` rounds with the peers' order rotated;
the median is reported. Peers: raw ``httpx.AsyncClient`` on trio; ``BinanceClient.request``;
``SpotServerTime`` tasks through an ``Operator`` (``max_concurrency`` = the concurrency, the
tasks created inside the timed part); python-binance ``AsyncClient.get_server_time``; ccxt
async ``fetch_time`` (``enableRateLimit`` False); raw ``aiohttp.ClientSession``.

Part 2, history download of the same 1m range of BTCUSDT on spot and USDⓈ-M, each peer as a
user would call it: aiocea ``download_klines`` (``source="rest"``, then ``source="auto"``,
which takes whole months and days from the simulator's archives), python-binance
``get_historical_klines`` / ``futures_historical_klines``, and ccxt ``fetch_ohlcv`` in a
``since`` loop (limit 1000: ccxt caps every Binance market at 1000 rows a page; its
throttler on, ccxt's default, and a 429 waits for the next window and retries). Each market
starts at a fresh window. Every peer must get the same rows (count, first and last open time).

    python benchmarks/bench_peers.py [--requests 1000] [--reps 3]   # about 5 minutes
    python benchmarks/bench_peers.py --quick      # a smoke run (a few requests, tiny ranges)

Prints tables and writes ``benchmarks/results/bench_peers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import trio

RESULTS = Path(__file__).parent / "results" / "bench_peers.json"
WINDOW = 2
SCALED = {"spot": 6000 * WINDOW // 60, "usdm": 2400 * WINDOW // 60, "coinm": 2400 * WINDOW // 60}
UNLIMITED = {"spot": 10**12, "usdm": 10**12, "coinm": 10**12}
NO_ORDER_LIMIT = {m: ((10, 10**12),) for m in ("spot", "usdm", "coinm")}
TIME_PATH = "/api/v3/time"
SYMBOL = "BTCUSDT"
DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01
RANGES = {  # market -> days from START_MS
    "full": {"spot": 121, "usdm": 31},  # four whole months; January
    "quick": {"spot": 2, "usdm": 1},
}
CPU_PEERS = {
    "httpx": "raw httpx.AsyncClient (trio)",
    "aiocea_request": "aiocea BinanceClient.request",
    "aiocea_operator": "aiocea task via Operator",
    "python_binance": "python-binance AsyncClient",
    "ccxt": "ccxt async (no rate limit)",
    "aiohttp": "raw aiohttp.ClientSession",
}
DOWNLOAD_PEERS = {
    "aiocea_rest": "aiocea download_klines rest",
    "aiocea_auto": "aiocea download_klines auto",
    "python_binance": "python-binance historical",
    "ccxt": "ccxt fetch_ohlcv loop",
}
NEEDS = {"python_binance": "binance", "ccxt": "ccxt", "aiohttp": "aiohttp"}
ASYNCIO_PEERS = {"python_binance", "ccxt", "aiohttp"}
EXCLUDED = (
    "start-up costs are excluded: imports, client creation, ccxt load_markets, aiocea's "
    "exchangeInfo (limit learning) and time sync, and connection set-up (a warm-up round)"
)


# -- the simulators' process ----------------------------------------------------------------


def _kind(path: str) -> str:
    if path.startswith("/data/spot/"):
        return "spot archive"
    if path.startswith("/data/futures/um/"):
        return "usdm archive"
    if path.startswith("/fapi/"):
        return "usdm"
    if path.startswith("/dapi/"):
        return "coinm"
    return "spot"


def _counting(app: Any, statuses: Counter[str]) -> Any:
    """An ASGI wrapper counting responses by kind (market, archives apart) and status."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        kind = _kind(scope["path"])

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses[f"{kind} {message['status']}"] += 1
            await send(message)

        await app(scope, receive, counted)

    return wrapped


async def _warm(sim: Any, spans: list[tuple[str, int, int]]) -> None:
    """Fill the scaled simulator's caches, each page from its own made-up IP (no 429)."""
    import httpx

    ips = itertools.count(1)
    paths = {"spot": "/api/v3/klines", "usdm": "/fapi/v1/klines"}
    for market, start, end in spans:
        cursor = start
        while cursor < end:
            n = next(ips)
            ip = f"10.9.{n // 250}.{n % 250 + 1}"
            async with httpx.AsyncClient(transport=sim.transport(ip), base_url="http://s") as c:
                params = {"symbol": SYMBOL, "interval": "1m", "startTime": cursor, "limit": 1000}
                (await c.get(paths[market], params=params)).raise_for_status()
            cursor += 1000 * 60_000
        await sim.warm_archives(market, SYMBOL, "1m", start, end)


def serve_child(spans: list[tuple[str, int, int]]) -> None:
    """Serve both simulators; print their URLs; answer ``stats`` lines on stdin until EOF."""
    from aiocea_trio.sim import SimExchange
    from aiocea_trio.sim.limits import WeightLimiter

    charged: defaultdict[tuple[int, str], int] = defaultdict(int)
    charge = WeightLimiter.charge

    # Count what every limiter charges (this process only; the package is untouched).
    def counting_charge(self: Any, market: str, ip: str, weight: int, now_ms: int) -> int:
        charged[id(self), market] += weight
        return charge(self, market, ip, weight, now_ms)

    WeightLimiter.charge = counting_charge  # type: ignore[method-assign]

    async def main() -> None:
        sims = {
            "fast": SimExchange(seed=1, weight_limits=UNLIMITED, order_limits=NO_ORDER_LIMIT),
            "scaled": SimExchange(seed=1, weight_window=WINDOW, weight_limits=SCALED),
        }
        counts: dict[str, Counter[str]] = {name: Counter() for name in sims}
        for name, sim in sims.items():
            sim.app = _counting(sim.app, counts[name])
        await _warm(sims["scaled"], spans)

        def snapshot() -> dict[str, Any]:
            return {
                name: {
                    "weight": {m: charged[id(sim.limiter), m] for m in ("spot", "usdm", "coinm")},
                    "responses": dict(counts[name]),
                    "answered_429": sim.limiter.answered_429,
                    "answered_418": sim.limiter.answered_418,
                }
                for name, sim in sims.items()
            }

        async with trio.open_nursery() as nursery:
            urls = {name: await nursery.start(sim.serve, "127.0.0.1", 0) for name, sim in sims.items()}
            print(json.dumps(urls), flush=True)
            while line := await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True):
                if line.strip() == "stats":
                    print(json.dumps(snapshot()), flush=True)
            nursery.cancel_scope.cancel()

    trio.run(main)


class Simulators:
    """The parent's handle on the simulators' process."""

    def __init__(self, spans: list[tuple[str, int, int]]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", json.dumps(spans)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulators' process exited before serving")
        self.urls: dict[str, str] = json.loads(line)

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return result

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


def _delta(before: dict[str, Any], after: dict[str, Any], market: str) -> dict[str, Any]:
    def count(kind: str, status: str | None = None) -> int:
        def total(snap: dict[str, Any]) -> int:
            return sum(
                n
                for key, n in snap["responses"].items()
                if key.rsplit(" ", 1)[0] == kind and (status is None or key.endswith(status))
            )

        return total(after) - total(before)

    return {
        "weight": after["weight"][market] - before["weight"][market],
        "requests": count(market),
        "archive_files": count(f"{market} archive"),
        "http_429": count(market, "429"),
        "http_418": count(market, "418"),
    }


# -- measuring, in the peers' processes -------------------------------------------------------


def _figures(n: int, cpu: float, wall: float) -> dict[str, Any]:
    return {
        "requests": n,
        "cpu_us_per_request": round(cpu / n * 1e6, 1),
        "requests_per_s": round(n / wall, 1),
        "wall_s": round(wall, 3),
    }


async def _measure_trio(send: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> dict[str, Any]:
    async with trio.open_nursery() as nursery:  # warm-up: every connection opened
        for _ in range(concurrency):
            nursery.start_soon(send)
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            await send()

    cpu, wall = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return _figures(n, time.process_time() - cpu, time.perf_counter() - wall)


async def _measure_asyncio(send: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> dict[str, Any]:
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(send())
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            await send()

    cpu, wall = time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return _figures(n, time.process_time() - cpu, time.perf_counter() - wall)


def _python_binance(url: str) -> Any:
    import binance

    class SimAsyncClient(binance.AsyncClient):  # type: ignore[misc]
        API_URL = f"{url}/api"
        MARGIN_API_URL = f"{url}/sapi"
        FUTURES_URL = f"{url}/fapi"
        FUTURES_DATA_URL = f"{url}/futures/data"
        FUTURES_COIN_URL = f"{url}/dapi"
        FUTURES_COIN_DATA_URL = f"{url}/futures/data"

    return SimAsyncClient()


def _ccxt(url: str, rate_limit: bool) -> Any:
    import ccxt.async_support

    exchange = ccxt.async_support.binance(
        {
            "enableRateLimit": rate_limit,
            "options": {"fetchMarkets": ["spot", "linear"], "fetchCurrencies": False},
        }
    )
    api = dict(exchange.urls["api"])
    hosts = [f"https://{sub}.binance.com" for sub in ("api", "fapi", "dapi", "eapi", "papi")]
    for key, value in api.items():
        for host in hosts:
            if isinstance(value, str) and value.startswith(host):
                api[key] = url + value[len(host) :]
    stray = [v for v in api.values() if not (isinstance(v, str) and v.startswith(url))]
    if stray:  # nothing may reach the internet
        raise RuntimeError(f"ccxt URLs not redirected to the simulator: {stray}")
    exchange.urls["api"] = api
    return exchange


async def cpu_trio(peer: str, url: str, n: int, levels: list[int]) -> list[dict[str, Any]]:
    import httpx

    from aiocea_trio import BinanceClient
    from aiocea_trio.pipeline import Operator, TaskQueue, TaskState
    from aiocea_trio.tasks import SpotServerTime

    if peer == "httpx":
        async with httpx.AsyncClient(base_url=url) as http:

            async def send_raw() -> int:
                response = await http.get(TIME_PATH)
                response.raise_for_status()
                return int(response.json()["serverTime"])

            return [await _measure_trio(send_raw, n, c) for c in levels]
    async with BinanceClient(base_url=url) as client:
        await client.request("GET", TIME_PATH)  # limits learned, clock synced
        if peer == "aiocea_request":

            async def send() -> int:
                return int((await client.request("GET", TIME_PATH))["serverTime"])

            return [await _measure_trio(send, n, c) for c in levels]
        out = []
        for concurrency in levels:
            warm = [SpotServerTime() for _ in range(concurrency)]
            await Operator(client, max_concurrency=concurrency).add_queue(
                TaskQueue().add_tasks(*warm)
            ).run()
            cpu, wall = time.process_time(), time.perf_counter()
            tasks = [SpotServerTime() for _ in range(n)]
            await Operator(client, max_concurrency=concurrency).add_queue(
                TaskQueue().add_tasks(*tasks)
            ).run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            failed = [t for t in tasks if t.state is not TaskState.DONE]
            if failed:
                raise RuntimeError(f"{len(failed)} tasks failed, e.g. {failed[0]!r}")
            out.append(_figures(n, cpu, wall))
        return out


async def cpu_asyncio(peer: str, url: str, n: int, levels: list[int]) -> list[dict[str, Any]]:
    if peer == "aiohttp":
        import aiohttp

        async with aiohttp.ClientSession(base_url=url) as session:

            async def send_raw() -> int:
                async with session.get(TIME_PATH) as response:
                    response.raise_for_status()
                    return int((await response.json())["serverTime"])

            return [await _measure_asyncio(send_raw, n, c) for c in levels]
    if peer == "python_binance":
        client = _python_binance(url)
        try:
            return [await _measure_asyncio(client.get_server_time, n, c) for c in levels]
        finally:
            await client.close_connection()
    exchange = _ccxt(url, rate_limit=False)
    try:
        return [await _measure_asyncio(exchange.fetch_time, n, c) for c in levels]
    finally:
        await exchange.close()


# Part 2: downloads. The worker prints "ready" once started, waits for "go" on stdin (the
# parent reads the simulator's counters in between), then downloads each market in turn.


def _job_figures(rows: list[Any], wall: float, cpu: float, client_429: int) -> dict[str, Any]:
    return {
        "rows": len(rows),
        "first_open_ms": int(rows[0][0]) if rows else None,
        "last_open_ms": int(rows[-1][0]) if rows else None,
        "seconds": round(wall, 3),
        "rows_per_s": round(len(rows) / wall) if wall else 0,
        "client_cpu_s": round(cpu, 3),
        "client_429": client_429,
    }


def _to_next_window(align: bool = True) -> float:
    """Seconds to the start of the next rate-limit window (+ 50 ms); the sim runs on wall time.
    0 when not aligning (``--quick``)."""
    if not align:
        return 0.0
    return (WINDOW * 1000 - time.time() * 1000 % (WINDOW * 1000)) / 1000 + 0.05


async def download_trio(
    peer: str, url: str, jobs: list[tuple[str, int, int]], align: bool
) -> list[dict[str, Any]]:
    from aiocea_trio import BinanceClient, download_klines

    source = peer.removeprefix("aiocea_")
    out = []
    async with BinanceClient(base_url=url, timeout=30) as client:
        for market, _, _ in jobs:  # limits learned, clock synced: start-up, excluded
            await client.request("GET", "/fapi/v1/time" if market == "usdm" else TIME_PATH)
        print("ready", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        for market, start, end in jobs:
            await trio.sleep(_to_next_window(align))
            before = client.statistics().limiter.markets[market].rate_limited
            cpu, wall = time.process_time(), time.perf_counter()
            rows = await download_klines(client, SYMBOL, "1m", start, end, market=market, source=source)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = client.statistics().limiter.markets[market].rate_limited
            out.append({"market": market, **_job_figures(list(rows), wall, cpu, after - before)})
    return out


async def download_asyncio(
    peer: str, url: str, jobs: list[tuple[str, int, int]], align: bool
) -> list[dict[str, Any]]:
    out = []
    if peer == "python_binance":
        client = _python_binance(url)

        async def fetch(market: str, start: int, end: int) -> tuple[list[Any], int]:
            method = client.futures_historical_klines if market == "usdm" else client.get_historical_klines
            return await method(SYMBOL, "1m", start, end - 1), 0  # endTime is inclusive

        close = client.close_connection
    else:
        import ccxt.async_support

        exchange = _ccxt(url, rate_limit=True)
        await exchange.load_markets()

        async def fetch(market: str, start: int, end: int) -> tuple[list[Any], int]:
            symbol = "BTC/USDT:USDT" if market == "usdm" else "BTC/USDT"
            rows: list[Any] = []
            limited = 0
            since = start
            while since < end:
                try:
                    page = await exchange.fetch_ohlcv(symbol, "1m", since, 1000)
                except ccxt.async_support.DDoSProtection:  # 429 and 418
                    limited += 1
                    await asyncio.sleep(_to_next_window())
                    continue
                if not page:
                    break
                rows.extend(r for r in page if r[0] < end)
                since = page[-1][0] + 60_000
            return rows, limited

        close = exchange.close
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for market, start, end in jobs:
            await asyncio.sleep(_to_next_window(align))
            cpu, wall = time.process_time(), time.perf_counter()
            rows, limited = await fetch(market, start, end)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            out.append({"market": market, **_job_figures(rows, wall, cpu, limited)})
    finally:
        await close()
    return out


def peer_child(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore")  # third-party import-time deprecations
    spec = json.loads(args.peer_args)
    if args.part == "cpu":
        fn: Any = cpu_asyncio if args.peer in ASYNCIO_PEERS else cpu_trio
        call = (args.peer, spec["url"], spec["requests"], spec["levels"])
    else:
        fn = download_asyncio if args.peer in ASYNCIO_PEERS else download_trio
        call = (args.peer, spec["url"], [tuple(j) for j in spec["jobs"]], spec["align"])
    result = asyncio.run(fn(*call)) if args.peer in ASYNCIO_PEERS else trio.run(fn, *call)
    print(json.dumps(result), flush=True)


# -- the parent -------------------------------------------------------------------------------


def _peer_cmd(peer: str, part: str, spec: dict[str, Any]) -> list[str]:
    return [sys.executable, __file__, "--peer", peer, "--part", part, "--peer-args", json.dumps(spec)]


def run_cpu(
    sims: Simulators, peers: list[str], n: int, reps: int, levels: list[int], parallel: bool
) -> list[dict[str, Any]]:
    """Part 1: one subprocess per peer and round, one after another (``parallel`` for the
    smoke run only: the figures are then meaningless, the plumbing is checked)."""
    samples: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    spec = {"url": sims.urls["fast"], "requests": n, "levels": levels}

    def one(peer: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            _peer_cmd(peer, "cpu", spec), capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{peer} failed:\n{done.stderr[-3000:]}")
        figures: list[dict[str, Any]] = json.loads(done.stdout.splitlines()[-1])
        return figures

    for rep in range(reps):
        order = peers[rep % len(peers) :] + peers[: rep % len(peers)]
        if parallel:
            with ThreadPoolExecutor(len(order)) as pool:
                got = dict(zip(order, pool.map(one, order), strict=True))
        else:
            got = {}
            for peer in order:
                got[peer] = one(peer)
                print(f"  part 1, round {rep + 1}/{reps}: {peer} done", file=sys.stderr)
        for peer, figures in got.items():
            for level, figure in zip(levels, figures, strict=True):
                samples[peer, level].append(figure)
    rows = []
    for level in levels:
        base = statistics.median(s["cpu_us_per_request"] for s in samples["httpx", level])
        for peer in peers:
            got = samples[peer, level]
            cpu = statistics.median(s["cpu_us_per_request"] for s in got)
            rows.append(
                {
                    "peer": peer,
                    "label": CPU_PEERS[peer],
                    "concurrency": level,
                    "requests": n,
                    "cpu_us_per_request": round(cpu, 1),
                    "requests_per_s": round(statistics.median(s["requests_per_s"] for s in got), 1),
                    "cpu_vs_raw_httpx": round(cpu / base, 2),
                    "cpu_samples": [s["cpu_us_per_request"] for s in got],
                    "rps_samples": [s["requests_per_s"] for s in got],
                }
            )
    return rows


def run_download(
    sims: Simulators, peers: list[str], jobs: list[tuple[str, int, int]], quick: bool
) -> list[dict[str, Any]]:
    """Part 2: one subprocess per peer, timed one after another. Each starts up, says
    "ready", and waits for "go"; the simulator's counters are read around its run. The full
    run starts each peer just before its turn (an idle keep-alive connection may be closed by
    the server after 30 s); ``quick`` starts them all at once to save time."""
    spec = {"url": sims.urls["scaled"], "jobs": jobs, "align": not quick}

    def start(peer: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            _peer_cmd(peer, "download", spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    started = {peer: start(peer) for peer in peers} if quick else {}
    rows = []
    for peer in peers:
        proc = started.get(peer) or start(peer)
        assert proc.stdin is not None
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.wait(timeout=30)
            raise RuntimeError(f"{peer} failed to start (exit {proc.returncode})")
        before = sims.stats()["scaled"]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        proc.wait(timeout=60)
        after = sims.stats()["scaled"]
        if proc.returncode or not line:
            raise RuntimeError(f"{peer} failed (exit {proc.returncode})")
        for job in json.loads(line):
            rows.append(
                {"peer": peer, "label": DOWNLOAD_PEERS[peer], **job, **_delta(before, after, job["market"])}
            )
        proc.stdin.close()
        proc.stdout.close()
        print(f"  part 2: {peer} done", file=sys.stderr)
    return rows


def ratios(cpu: list[dict[str, Any]], download: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cpu_vs_raw_httpx": {
            f"{r['peer']} c{r['concurrency']}": r["cpu_vs_raw_httpx"] for r in cpu
        },
        "rows_per_s": {},
    }
    for market in ("spot", "usdm"):
        by_peer = {r["peer"]: r["rows_per_s"] for r in download if r["market"] == market}
        for ours in ("aiocea_rest", "aiocea_auto"):
            for peer, rate in by_peer.items():
                if ours in by_peer and peer != ours and not peer.startswith("aiocea") and rate:
                    out["rows_per_s"][f"{market} {ours} / {peer}"] = round(by_peer[ours] / rate, 2)
    return out


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("aiocea-trio", "trio", "httpx", "hypercorn", "python-binance", "ccxt", "aiohttp"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def print_tables(result: dict[str, Any]) -> None:
    print(f"\nPart 1: client CPU per request, GET {TIME_PATH} ({result['cpu']['requests']} requests, median of {result['cpu']['reps']})")
    print(f"({EXCLUDED})")
    print(f"{'peer':<32} {'conc':>4} {'CPU µs/req':>11} {'× httpx':>8} {'req/s':>8}")
    for r in result["cpu"]["results"]:
        print(
            f"{r['label']:<32} {r['concurrency']:>4} {r['cpu_us_per_request']:>11.1f} "
            f"{r['cpu_vs_raw_httpx']:>8.2f} {r['requests_per_s']:>8.0f}"
        )
    print(f"\nPart 2: {SYMBOL} 1m download, limits scaled to {WINDOW} s windows {SCALED}")
    print(
        f"{'market':<6} {'peer':<30} {'rows':>7} {'s':>7} {'rows/s':>8} {'weight':>7} "
        f"{'req':>5} {'files':>5} {'429':>4} {'418':>4} {'CPU s':>6}"
    )
    for r in result["download"]["results"]:
        print(
            f"{r['market']:<6} {r['label']:<30} {r['rows']:>7} {r['seconds']:>7.2f} {r['rows_per_s']:>8} "
            f"{r['weight']:>7} {r['requests']:>5} {r['archive_files']:>5} {r['http_429']:>4} "
            f"{r['http_418']:>4} {r['client_cpu_s']:>6.2f}"
        )
    print(f"rows agree: {result['download']['rows_agree']}")
    for name, value in result["ratios"]["rows_per_s"].items():
        print(f"  rows/s {name}: {value}")
    for note in result["skipped"]:
        print(f"skipped: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per peer and level")
    parser.add_argument("--reps", type=int, default=3, help="rounds of part 1 (median reported)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, tiny ranges")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--peer-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child([tuple(s) for s in json.loads(args.serve)])
        return
    if args.peer:
        peer_child(args)
        return
    if args.quick:
        args.requests, args.reps = min(args.requests, 20), 1
    days = RANGES["quick" if args.quick else "full"]
    jobs = [(m, START_MS, START_MS + d * DAY_MS) for m, d in days.items()]
    skipped = []
    cpu_peers, download_peers = list(CPU_PEERS), list(DOWNLOAD_PEERS)
    for peer, module in NEEDS.items():
        if importlib.util.find_spec(module) is None:
            skipped.append(f"{peer}: {module} is not installed (pip install 'aiocea-trio[bench]')")
            cpu_peers = [p for p in cpu_peers if p != peer]
            download_peers = [p for p in download_peers if p != peer]
    levels = [1, 64]
    began = time.perf_counter()
    sims = Simulators(jobs)
    try:
        before = sims.stats()["fast"]
        cpu = run_cpu(sims, cpu_peers, args.requests, args.reps, levels, parallel=args.quick)
        after = sims.stats()["fast"]
        download = run_download(sims, download_peers, jobs, quick=args.quick)
    finally:
        sims.close()
    agree = all(
        len({(r["rows"], r["first_open_ms"], r["last_open_ms"]) for r in download if r["market"] == m}) == 1
        for m in days
    )
    result = {
        "benchmark": "bench_peers",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count()},
        "python": platform.python_version(),
        "versions": versions(),
        "excluded": EXCLUDED,
        "cpu": {
            "endpoint": f"GET {TIME_PATH}",
            "requests": args.requests,
            "reps": args.reps,
            "levels": levels,
            "peers_in_parallel": args.quick,
            "simulator": "fast (weight limits 10**12 per window)",
            "http_429": after["answered_429"] - before["answered_429"],
            "results": cpu,
        },
        "download": {
            "symbol": SYMBOL,
            "interval": "1m",
            "ranges": {m: {"start_ms": s, "end_ms": e, "days": days[m]} for m, s, e in jobs},
            "window_s": WINDOW,
            "limits": SCALED,
            "scaling": "Binance's weight per minute (spot 6000, futures 2400) kept per second, "
            f"in {WINDOW} s windows",
            "rows_agree": agree,
            "results": download,
        },
        "skipped": skipped,
        "run_seconds": round(time.perf_counter() - began, 1),
    }
    result["ratios"] = ratios(cpu, download)
    print_tables(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
