"""Client CPU per request: httpx's default transport vs FastTransport (issue 19).

The simulator runs in its own process (``aiocea-trio sim``), so the figures are this
process's CPU only (``time.process_time``, user + system), per request, over keep-alive
connections: ``--requests`` GETs of ``/api/v3/ping`` (a 2-byte JSON answer) at concurrency 1,
16 and 64, each mode run ``--reps`` times in rotation (median reported). Modes:

- ``httpx default``: ``httpx.AsyncClient()`` as it comes (httpcore + h11, httpx's default
  limits: 100 connections, 20 kept alive);
- ``httpx + FastTransport``: ``httpx.AsyncClient(transport=FastTransport())``;
- ``FastTransport direct``: ``FastTransport.handle_async_request`` with one pre-built
  ``httpx.Request`` and ``aread()``: the transport's own cost, without the client's.

The simulator's server (hypercorn) closes a connection after 1,000 requests; every mode pays
for the reconnections alike.

    python benchmarks/bench_transport.py [--requests 3000] [--reps 3] [--quick] [--json PATH]

Prints a table and writes JSON to benchmarks/results/bench_transport.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _harness
import httpx
import trio

from aiocea_trio.transport import FastTransport

RESULTS = Path(__file__).with_name("results")
PATH = "/api/v3/ping"
CONCURRENCY = (1, 16, 64)
MODES = ("httpx default", "httpx + FastTransport", "FastTransport direct")


served_simulator = _harness.served_simulator


Send = Callable[[], Awaitable[Any]]


async def _measure(send: Send, n: int, concurrency: int) -> float:
    """CPU µs per request of ``n`` sends, ``concurrency`` at a time (after a warm-up round)."""
    per_worker = max(1, n // concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            await send()

    async with trio.open_nursery() as nursery:  # warm: the connections are open
        for _ in range(concurrency):
            nursery.start_soon(worker, 1)
    began = time.process_time()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker, per_worker)
    return (time.process_time() - began) / (per_worker * concurrency) * 1e6


async def _run(mode: str, url: str, n: int, concurrency: int) -> float:
    if mode == "FastTransport direct":
        async with FastTransport() as transport:
            request = httpx.Request(
                "GET", url + PATH, extensions={"timeout": httpx.Timeout(5.0).as_dict()}
            )

            async def direct() -> Any:
                response = await transport.handle_async_request(request)
                await response.aread()
                return response

            return await _measure(direct, n, concurrency)
    transport = FastTransport() if mode == "httpx + FastTransport" else None
    async with httpx.AsyncClient(base_url=url, transport=transport) as http:

        async def send() -> Any:
            response = await http.get(PATH)
            return response.json()

        return await _measure(send, n, concurrency)


async def bench(url: str, n: int, reps: int) -> list[dict[str, Any]]:
    rows = []
    for concurrency in CONCURRENCY:
        samples: dict[str, list[float]] = {mode: [] for mode in MODES}
        for rep in range(reps):
            for mode in MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]:
                samples[mode].append(await _run(mode, url, n, concurrency))
        for mode, values in samples.items():
            rows.append(
                {
                    "mode": mode,
                    "concurrency": concurrency,
                    "cpu_us_per_request": round(statistics.median(values), 1),
                    "samples": [round(v, 1) for v in values],
                }
            )
    return rows


def _speedups(rows: list[dict[str, Any]]) -> dict[str, float]:
    """httpx default's CPU over httpx + FastTransport's, per concurrency."""
    cpu = {(r["mode"], r["concurrency"]): r["cpu_us_per_request"] for r in rows}
    return {
        str(c): round(cpu["httpx default", c] / cpu["httpx + FastTransport", c], 2)
        for c in CONCURRENCY
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 64 requests, one rep per mode"
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "bench_transport.json")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.reps = 64, 1
    with served_simulator() as url:
        rows = trio.run(bench, url, args.requests, args.reps)
    speedups = _speedups(rows)
    print(f"{'mode':<22} {'conc':>4} {'CPU µs/request':>15}   samples")
    for r in rows:
        print(
            f"{r['mode']:<22} {r['concurrency']:>4} {r['cpu_us_per_request']:>15.1f}"
            f"   {r['samples']}"
        )
    print("httpx default / httpx + FastTransport:", speedups)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "python": platform.python_version(),
                "versions": {
                    name: version(name)
                    for name in ("httpx", "httpcore", "h11", "httptools", "trio")
                },
                "path": PATH,
                "requests": args.requests,
                "reps": args.reps,
                "quick": args.quick,
                "results": rows,
                "speedup": speedups,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"JSON written to {args.json}")


if __name__ == "__main__":
    main()
