"""Client CPU per request: raw httpx on trio, ``client.request`` and a catalog task.

The simulator runs in its own process (``aiocea-trio sim``), so the figures are this
process's CPU only (``time.process_time``), per request, over keep-alive connections:
``--requests`` ticker requests (default 3,000) at concurrency 1 and 16, each mode run
``--reps`` times in rotation (median reported). Limits are out of the way (the served
simulator's weight limits are raised, the client's limiter learns them).

    python benchmarks/bench_request.py [--requests 3000] [--reps 3] [--json PATH]

Prints a table and writes JSON to benchmarks/results/bench_request.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _harness
import httpx
import trio

import aiocea_trio
from aiocea_trio import BinanceClient
from aiocea_trio.tasks import SpotFetchTicker

RESULTS = Path(__file__).with_name("results")
PATH = "/api/v3/ticker/price"
PARAMS = {"symbol": "BTCUSDT"}


served_simulator = _harness.served_simulator


Send = Callable[[], Awaitable[Any]]


async def _measure(send: Send, n: int, concurrency: int) -> float:
    """CPU µs per request of ``n`` sends, ``concurrency`` at a time."""
    per_worker = n // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await send()

    await send()  # warm: connection open, limits learned
    began = time.process_time()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return (time.process_time() - began) / (per_worker * concurrency) * 1e6


async def _modes(url: str) -> dict[str, Callable[[int, int], Awaitable[float]]]:
    async def raw(n: int, concurrency: int) -> float:
        async with httpx.AsyncClient(base_url=url) as http:

            async def send() -> Any:
                response = await http.get(PATH, params=PARAMS)
                return response.json()

            return await _measure(send, n, concurrency)

    async def request(n: int, concurrency: int) -> float:
        async with BinanceClient(base_url=url) as client:
            return await _measure(lambda: client.request("GET", PATH, PARAMS), n, concurrency)

    async def task(n: int, concurrency: int) -> float:
        async with BinanceClient(base_url=url) as client:
            return await _measure(
                lambda: SpotFetchTicker(symbol="BTCUSDT").execute(client), n, concurrency
            )

    return {"raw httpx": raw, "client.request": request, "catalog task": task}


async def bench(url: str, n: int, reps: int) -> list[dict[str, Any]]:
    modes = await _modes(url)
    rows = []
    for concurrency in (1, 16):
        samples: dict[str, list[float]] = {name: [] for name in modes}
        names = list(modes)
        for rep in range(reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                samples[name].append(await modes[name](n, concurrency))
        for name, values in samples.items():
            rows.append(
                {
                    "mode": name,
                    "concurrency": concurrency,
                    "cpu_us_per_request": round(statistics.median(values), 1),
                    "samples": [round(v, 1) for v in values],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS / "bench_request.json")
    args = parser.parse_args()
    with served_simulator() as url:
        rows = trio.run(bench, url, args.requests, args.reps)
    print(f"{'mode':<16} {'conc':>4} {'CPU µs/request':>15}   samples")
    for r in rows:
        print(f"{r['mode']:<16} {r['concurrency']:>4} {r['cpu_us_per_request']:>15.1f}   {r['samples']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "python": platform.python_version(),
                "aiocea_trio": aiocea_trio.__file__,
                "httpx": httpx.__version__,
                "trio": trio.__version__,
                "requests": args.requests,
                "reps": args.reps,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"JSON written to {args.json}")


if __name__ == "__main__":
    main()
