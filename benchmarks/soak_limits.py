"""Window edges: mixed bursts against the simulator, started at many offsets into a window.

The limiter must never let the simulator answer 429, wherever in a window the first
request falls (the first requests learn the limits and the exchange's clock), with one
client or two sharing a limiter, with 5xx and dropped connections, and with Binance's
one-minute windows. Time is trio's MockClock, so each run takes a fraction of a second.

    python benchmarks/soak_limits.py            # 3 seeds x 40 offsets x 4 scenarios
    python benchmarks/soak_limits.py --seeds 1
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing

from aiocea_trio import BinanceClient, RateLimiter
from aiocea_trio.sim import FaultConfig, SimExchange

RESULTS = Path(__file__).with_name("results")
TIGHT = {"spot": 120, "usdm": 60, "coinm": 60}
MIXED: list[tuple[str, dict[str, Any]]] = [
    ("/api/v3/ping", {}),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5}),
    ("/api/v3/klines", {"symbol": "ETHUSDT", "interval": "1m", "limit": 10}),
    ("/api/v3/ticker/price", {"symbol": "BNBUSDT"}),
    ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "5m", "limit": 499}),
    ("/fapi/v1/depth", {"symbol": "ETHUSDT", "limit": 100}),
    ("/dapi/v1/klines", {"symbol": "BTCUSD_PERP", "interval": "1h", "limit": 1000}),
    ("/dapi/v1/ticker/price", {"symbol": "ETHUSD_PERP"}),
]
BASE_MS = 1_700_000_040_000  # a whole minute


async def burst(client: BinanceClient, count: int, workers: int, seed: int) -> None:
    rng = random.Random(seed)
    calls = [rng.choice(MIXED) for _ in range(count)]

    async def worker(mine: list[tuple[str, dict[str, Any]]]) -> None:
        for path, params in mine:
            await client.request("GET", path, params)

    async with trio.open_nursery() as nursery:
        for w in range(workers):
            nursery.start_soon(worker, calls[w::workers])


async def single(seed: int, start_ms: int) -> int:
    sim = SimExchange(weight_window=5, weight_limits=TIGHT, start_time_ms=start_ms)
    async with sim.client() as client:
        await burst(client, 400, 40, seed)
    return sim.limiter.answered_429


async def shared(seed: int, start_ms: int) -> int:
    sim = SimExchange(weight_window=5, weight_limits=TIGHT, start_time_ms=start_ms)
    limiter = RateLimiter()
    async with sim.client(limiter=limiter) as one, sim.client(limiter=limiter) as two:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(burst, one, 300, 10, seed)
            nursery.start_soon(burst, two, 300, 10, seed + 100)
    return sim.limiter.answered_429


async def faulty(seed: int, start_ms: int) -> int:
    faults = FaultConfig(error_rate=0.1, drop_rate=0.1)
    sim = SimExchange(
        weight_window=5, weight_limits=TIGHT, start_time_ms=start_ms, faults=faults, seed=seed
    )
    async with sim.client(retries=8) as client:
        await burst(client, 300, 20, seed)
    return sim.limiter.answered_429


async def minute(seed: int, start_ms: int) -> int:
    sim = SimExchange(weight_limits={"spot": 300, "usdm": 200, "coinm": 200}, start_time_ms=start_ms)
    async with sim.client() as client:
        await burst(client, 400, 40, seed)
    return sim.limiter.answered_429


SCENARIOS: dict[str, tuple[Callable[[int, int], Awaitable[int]], int]] = {
    "one client, 5 s windows": (single, 5_000),
    "two clients, one limiter": (shared, 5_000),
    "10 % 5xx + 10 % drops": (faulty, 5_000),
    "one client, 60 s windows": (minute, 60_000),
}


def offsets(window_ms: int, count: int = 40) -> list[int]:
    """The window's edges (where the races are) and points spread over the rest."""
    guard = min(max(window_ms // 100, 10), 1000)
    edges = [0, 1, guard // 2, guard - 1, guard, guard + 1, window_ms - 1, window_ms - guard]
    return sorted(set(edges + [window_ms * i // (count - len(edges)) for i in range(count - len(edges))]))


def main(seeds: int) -> list[dict[str, Any]]:
    rows = []
    for name, (scenario, window_ms) in SCENARIOS.items():
        runs = failed = answered = 0
        for seed in range(seeds):
            for offset in offsets(window_ms):
                clock = trio.testing.MockClock(autojump_threshold=0)
                n = trio.run(scenario, seed, BASE_MS + offset, clock=clock)
                runs += 1
                failed += n > 0
                answered += n
        rows.append({"scenario": name, "runs": runs, "runs_with_429": failed, "http_429": answered})
    return rows


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)  # "could not learn ... limits" under faults, etc.
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    rows = main(parser.parse_args().seeds)
    width = max(len(r["scenario"]) for r in rows)
    print(f"{'scenario':<{width}}  runs  runs with 429  429s")
    for r in rows:
        print(f"{r['scenario']:<{width}}  {r['runs']:>4}  {r['runs_with_429']:>13}  {r['http_429']:>4}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "soak_limits.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")
