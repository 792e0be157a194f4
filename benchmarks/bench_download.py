"""Kline downloads against the served simulator, as fast as the rate limit allows.

The simulator runs in its own process (``aiocea-trio sim``) on 127.0.0.1 with
Binance's real limits scaled to a short window: the same weight per second as
Binance's 6000 (spot) and 2400 (futures) per minute, in windows of a few
seconds, so a benchmark "minute" passes quickly. The client learns the limits
from exchangeInfo, exactly as it would from Binance.

Reported per scenario: rows, wall time, rows/s, weight spent, the 429 and 418
counts, and utilization: for every rate-limit window the download spanned
(except the last, where it ran out of work), the weight the exchange counted
in it (its X-MBX-USED-WEIGHT header) over the window's limit, averaged.

    python benchmarks/bench_download.py            # both scenarios
    python benchmarks/bench_download.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _harness
import httpx
import trio

from aiocea_trio import BinanceClient, Progress, download_klines

RESULTS = Path(__file__).with_name("results")
# Binance: spot 6000 and futures 2400 weight per 60 s. Scaled to WINDOW seconds.
WINDOW = 2
LIMITS = {"spot": 6000 * WINDOW // 60, "usdm": 2400 * WINDOW // 60, "coinm": 2400 * WINDOW // 60}


def served_simulator() -> Iterator[str]:
    return _harness.served_simulator(LIMITS, window=WINDOW)


async def scenario(url: str, name: str, market: str, symbol: str, start: str, end: str) -> dict[str, Any]:
    used_by_window: dict[int, int] = {}
    client = BinanceClient(base_url=url, timeout=30)

    async def record(response: httpx.Response) -> None:
        header = response.headers.get(f"x-mbx-used-weight-{WINDOW}s")
        if header is not None:
            window = client.server_time_ms() // (WINDOW * 1000)
            used_by_window[window] = max(used_by_window.get(window, 0), int(header))

    async with client:
        client.http_client.event_hooks["response"].append(record)
        await client.sync_time(market)
        # Start on a fresh window so that the first one is a whole window too.
        now = client.server_time_ms()
        await trio.sleep((WINDOW * 1000 - now % (WINDOW * 1000)) / 1000 + 0.05)
        used_by_window.clear()  # the learning and time-sync calls are not the download
        progress = Progress()
        began = time.perf_counter()
        rows = await download_klines(
            client, symbol, "1m", start, end, market=market, progress=progress, source="rest",
            max_concurrency=16,
        )
        elapsed = time.perf_counter() - began
        stats = client.statistics()
    windows = sorted(used_by_window)
    full = windows[:-1] if len(windows) > 1 else windows
    limit = LIMITS[market]
    utilization = statistics.fmean(min(used_by_window[w], limit) / limit for w in full)
    market_stats = stats.limiter.markets[market]
    return {
        "scenario": name,
        "market": market,
        "rows": len(rows),
        "seconds": round(elapsed, 2),
        "rows_per_s": round(len(rows) / elapsed),
        "pages": progress.pages_done,
        "weight": progress.weight,
        "limit_per_window": limit,
        "window_s": WINDOW,
        "windows": len(windows),
        "utilization": round(utilization, 4),
        "weight_rate_vs_permitted": round((progress.weight / elapsed) / (limit / WINDOW), 4),
        "http_429": market_stats.rate_limited,
        "http_418": market_stats.banned,
        "gaps": len(rows.gaps),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    cols = ["scenario", "rows", "seconds", "rows_per_s", "weight", "windows", "utilization", "http_429", "http_418"]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Kline download against the served simulator (limits scaled to 2 s windows)")
        for col in cols:
            table.add_column(col, justify="left" if col == "scenario" else "right")
        for r in results:
            table.add_row(*(f"{r[c]:.1%}" if c == "utilization" else str(r[c]) for c in cols))
        Console(width=150).print(table)
    except ImportError:
        print(" | ".join(cols))
        for r in results:
            print(" | ".join(str(r[c]) for c in cols))


async def main(quick: bool) -> list[dict[str, Any]]:
    end_spot = "2023-01-15" if quick else "2024-01-01"
    end_usdm = "2023-01-05" if quick else "2023-04-01"
    with served_simulator() as url:
        return [
            await scenario(url, "spot BTCUSDT 1m, one year" if not quick else "spot (quick)", "spot", "BTCUSDT", "2023-01-01", end_spot),
            await scenario(url, "USDⓈ-M ETHUSDT 1m, 90 days" if not quick else "usdm (quick)", "usdm", "ETHUSDT", "2023-01-01", end_usdm),
        ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small ranges, for a smoke run")
    options = parser.parse_args()
    results = trio.run(main, options.quick)
    print_table(results)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_download.json"
    out.write_text(json.dumps({"window_s": WINDOW, "limits": LIMITS, "results": results}, indent=2))
    print(f"wrote {out}")
