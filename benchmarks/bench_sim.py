"""Throughput of the simulator: requests per second over loopback and in-process.

The served case runs the simulator (hypercorn's trio worker) in a child process, so the load
generator does not share its interpreter; a few concurrent httpx clients (trio tasks) send a
bounded number of requests per scenario, each scenario also bounded in time. The in-process case
drives the ASGI app through ``SimExchange.transport()`` (no sockets). Prints a table and writes
``benchmarks/results/bench_sim.json``.

    python benchmarks/bench_sim.py [--requests 2000] [--concurrency 8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import trio

from aiocea_trio.sim import DEMO_API_KEY, DEMO_API_SECRET, SimExchange

RESULTS = Path(__file__).parent / "results" / "bench_sim.json"
UNLIMITED = {"spot": 10**12, "usdm": 10**12, "coinm": 10**12}
NO_ORDER_LIMIT = {m: ((10, 10**12),) for m in ("spot", "usdm", "coinm")}


def _signed(params: dict[str, str], now_ms: int) -> str:
    query = urlencode({**params, "timestamp": str(now_ms)})
    sig = hmac.new(DEMO_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={sig}"


Request = Callable[[httpx.AsyncClient, int], Any]


def scenarios() -> dict[str, Request]:
    """name -> async function sending one request (i is the request number)."""

    async def ping(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.get("/api/v3/ping")

    async def ticker(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})

    async def depth(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": "100"})

    async def klines(http: httpx.AsyncClient, i: int) -> httpx.Response:
        # walk a year of 1m history backwards, 500 rows per request (mostly uncached)
        end = 1_767_225_600_000 - i * 500 * 60_000
        return await http.get(
            "/api/v3/klines",
            params={"symbol": "ETHUSDT", "interval": "1m", "endTime": str(end), "limit": "500"},
        )

    async def klines_1000(http: httpx.AsyncClient, i: int) -> httpx.Response:
        # walk forward from 2020, 1000 new 1m candles per request (never cached)
        start = 1_577_836_800_000 + i * 1000 * 60_000
        return await http.get(
            "/api/v3/klines",
            params={
                "symbol": "BTCUSDT",
                "interval": "1m",
                "startTime": str(start),
                "limit": "1000",
            },
        )

    async def archive(http: httpx.AsyncClient, i: int) -> httpx.Response:
        # a daily 1m zip (1440 rows, ~80 kB) of one of 60 days: built once each, then cached
        day = time.strftime("%Y-%m-%d", time.gmtime(1_704_067_200 + (i % 60) * 86_400))
        name = f"BTCUSDT-1m-{day}.zip"
        return await http.get(f"/data/spot/daily/klines/BTCUSDT/1m/{name}")

    async def account(http: httpx.AsyncClient, i: int) -> httpx.Response:
        now = int(time.time() * 1000)
        return await http.get(
            f"/api/v3/account?{_signed({}, now)}", headers={"X-MBX-APIKEY": DEMO_API_KEY}
        )

    async def order(http: httpx.AsyncClient, i: int) -> httpx.Response:
        now = int(time.time() * 1000)
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "IOC",
            "quantity": "0.001",
            "price": "10000",
        }
        return await http.post(
            f"/api/v3/order?{_signed(params, now)}", headers={"X-MBX-APIKEY": DEMO_API_KEY}
        )

    return {
        "ping": ping,
        "ticker/price": ticker,
        "fapi depth 100": depth,
        "klines 1m x500": klines,
        "klines 1m x1000": klines_1000,
        "archive 1m day": archive,
        "signed account": account,
        "order (IOC)": order,
    }


async def run_scenario(
    make_client: Callable[[], httpx.AsyncClient],
    fn: Request,
    total: int,
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    counter = iter(range(total))
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    async def worker() -> None:
        async with make_client() as http:
            for i in counter:
                t0 = time.perf_counter()
                r = await fn(http, i)
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    start = time.perf_counter()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    elapsed = time.perf_counter() - start
    done = len(latencies)
    latencies.sort()
    return {
        "requests": done,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(latencies[done // 2] * 1000, 2) if done else None,
        "p99_ms": round(latencies[min(done - 1, int(done * 0.99))] * 1000, 2) if done else None,
        "statuses": statuses,
    }


def serve_child(port: int) -> None:
    """Child process: serve the simulator and print the URL."""

    async def main() -> None:
        sim = SimExchange(seed=1, weight_limits=UNLIMITED, order_limits=NO_ORDER_LIMIT)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(sim.serve, "127.0.0.1", port)
            print(url, flush=True)

    trio.run(main)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"served": {}, "in_process": {}}
    proc = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--serve"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        buffer = b""
        with trio.fail_after(30):
            while b"\n" not in buffer:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    raise RuntimeError("the simulator process exited before serving")
                buffer += chunk
        url = buffer.split(b"\n")[0].decode().strip()
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        for name, fn in scenarios().items():
            results["served"][name] = await run_scenario(
                lambda: httpx.AsyncClient(base_url=url, limits=limits),
                fn,
                args.requests,
                args.concurrency,
                args.seconds,
            )
    finally:
        proc.terminate()
        with trio.move_on_after(10):
            await proc.wait()
    sim = SimExchange(seed=1, weight_limits=UNLIMITED, order_limits=NO_ORDER_LIMIT)
    for name, fn in scenarios().items():
        results["in_process"][name] = await run_scenario(
            lambda: httpx.AsyncClient(transport=sim.transport(), base_url="http://sim"),
            fn,
            args.requests,
            args.concurrency,
            args.seconds,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound per scenario")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.port)
        return
    results = trio.run(bench, args)
    print(
        f"{'scenario':<18} {'mode':<11} {'req':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        "  statuses"
    )
    for mode in ("served", "in_process"):
        for name, r in results[mode].items():
            print(
                f"{name:<18} {mode:<11} {r['requests']:>6} {r['requests_per_second']:>9.1f} "
                f"{r['p50_ms']:>8} {r['p99_ms']:>8}  {r['statuses']}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "bench_sim",
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "requests_per_scenario": args.requests,
                "concurrency": args.concurrency,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
