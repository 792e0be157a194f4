"""Five years of spot 1m klines from the served simulator: archives + REST tail vs REST only.

The simulator runs in its own process (``aiocea-trio sim``) on 127.0.0.1 with Binance's
real spot limit scaled to 2-second windows (6000 per minute = 200 per 2 s), as in
bench_download.py. The same range is downloaded six ways: into memory with
``download_klines``, into a CSV file with ``download_klines_to_file`` and into a Parquet
file with ``download_klines_to_parquet`` (what the CLI's ``klines`` command does), each
with ``source="auto"`` and ``source="rest"``:

- ``source="rest"``: 2,629 pages of 1000 rows, weight 2 each: bound by the rate limit;
- ``source="auto"``: 60 monthly zip archives (checksum-verified, unzipped in worker
  threads) and nothing else, since every month of the range is complete. In memory each
  file becomes 44,640 Python lists; to a file its CSV is written as it is.

The simulator builds each archive on first request and caches it, where Binance serves
static files; an untimed first ``auto`` run stands in for that, and the timed one
downloads every file again (no client cache). The auto and rest results are checked
identical: the same rows in memory, the same bytes in the files (Parquet: the sha256 of
the file pyarrow writes for the same table).

Typed frames (issue 16): the same five years with ``download_klines_frame`` into a typed
pandas and a polars DataFrame (``source="auto"``), each run in a fresh process so that its
peak RSS (``VmHWM``: imports included) is its own; three runs each, best and median
reported. Each process imports only the library it builds (pandas brings pyarrow; polars
does not, and the JSON records that pyarrow stayed out). Targets: under 3 s and under
400 MB. With ``--frames-only`` the polars download is also cut in phases (fetch and
inflate only; and polars' reader; the whole frame), each a fresh process, to show where
time and memory go.

    python benchmarks/bench_archives.py                 # five years, every way
    python benchmarks/bench_archives.py --years 1       # a shorter run
    python benchmarks/bench_archives.py --frames-only   # only the typed frames
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _harness
import trio

from aiocea_trio import (
    BinanceClient,
    Progress,
    download_klines,
    download_klines_frame,
    download_klines_to_file,
    download_klines_to_parquet,
)

RESULTS = Path(__file__).with_name("results")
WINDOW = 2
SPOT_LIMIT = 6000 * WINDOW // 60


def served_simulator() -> Iterator[str]:
    return _harness.served_simulator({"spot": SPOT_LIMIT}, window=WINDOW)


async def timed(
    url: str, source: str, start: str, end: str, target: Path | None
) -> tuple[dict[str, Any], Any]:
    """One download; returns its figures and what it made (the rows, or the file's sha256)."""
    if target is not None:
        await trio.Path(target).unlink(missing_ok=True)
    async with BinanceClient(base_url=url, timeout=60) as client:
        progress = Progress()
        began = time.perf_counter()
        if target is None:
            made: Any = await download_klines(
                client, "BTCUSDT", "1m", start, end, progress=progress, source=source
            )
            rows = len(made)
        else:
            to = download_klines_to_parquet if target.suffix == ".parquet" else download_klines_to_file
            rows = await to(
                client, target, "BTCUSDT", "1m", start, end, progress=progress, source=source
            )
        seconds = time.perf_counter() - began
        stats = client.statistics().limiter.markets.get("spot")
    if target is not None:
        made = hashlib.sha256(await trio.Path(target).read_bytes()).hexdigest()
        await trio.Path(target).unlink()
    # Weight as the exchange counted it: the download's REST pages, plus the client's
    # one-off exchangeInfo (weight 20) when it made any REST request at all.
    return {
        "into": "memory" if target is None else target.suffix.lstrip(".") + " file",
        "source": source,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "archive_files": progress.archives_done,
        "rest_pages": progress.pages_done,
        "weight": progress.weight + (20 if stats is not None and stats.learned else 0),
        "http_429": stats.rate_limited if stats is not None else 0,
    }, made


FRAME_RUNS = 3


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM: since exec, where ``ru_maxrss`` keeps the forking
    parent's peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


async def frame_child(url: str, library: str, start: str, end: str) -> dict[str, Any]:
    """One typed-frame download in this (fresh) process: seconds, rows, peak RSS."""
    __import__(library)  # the imports' memory, measured apart from the download's
    imports_mb = peak_rss_mb()
    async with BinanceClient(base_url=url, timeout=60) as client:
        progress = Progress()
        began = time.perf_counter()
        frame = await download_klines_frame(
            client, "BTCUSDT", "1m", start, end, library=library, progress=progress
        )
        seconds = time.perf_counter() - began
    dtypes = sorted({str(t) for t in (frame.dtypes if library == "pandas" else frame.schema.dtypes())})
    return {
        "library": library,
        "rows": len(frame),
        "seconds": round(seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
        "imports_rss_mb": imports_mb,
        "archive_files": progress.archives_done,
        "rest_pages": progress.pages_done,
        "dtypes": dtypes,
        "pyarrow_imported": "pyarrow" in sys.modules,
    }


PHASES = ("fetch", "read", "frame")


async def phase_child(url: str, phase: str, start: str, end: str) -> dict[str, Any]:
    """One phase of the polars frame download in this (fresh) process: ``fetch`` (download,
    checksum, inflate, nothing kept), ``read`` (and polars' reader in the fetch jobs,
    the columns dropped), ``frame`` (the whole ``download_klines_frame``)."""
    from aiocea_trio import _native_frames as native
    from aiocea_trio import frames as fr
    from aiocea_trio.archives import archive_csv
    from aiocea_trio.history.klines import checked_kline_args, kline_column_stream
    from aiocea_trio.history.source import HistoryOptions

    __import__("polars")
    imports_mb = peak_rss_mb()

    async def inflated(host: Any, file: Any) -> list[Any]:
        await host.unzipped(file, archive_csv)
        return [[0]]

    async with BinanceClient(base_url=url, timeout=60) as client:
        began = time.perf_counter()
        if phase == "frame":
            await download_klines_frame(client, "BTCUSDT", "1m", start, end, library="polars")
        else:
            query, options = checked_kline_args(
                "spot", "BTCUSDT", "1m", start, end,
                lambda: HistoryOptions(max_concurrency=fr._FRAME_CONCURRENCY),
            )
            load = inflated if phase == "fetch" else fr._file_loader(native.read_polars)
            async with kline_column_stream(client, query, options, None, [], load) as batches:
                async for _ in batches:
                    pass
        seconds = time.perf_counter() - began
    return {"phase": phase, "seconds": round(seconds, 2),
            "rss_over_imports_mb": peak_rss_mb() - imports_mb}


def phases(url: str, start: str, end: str) -> dict[str, Any]:
    """Each phase ``FRAME_RUNS`` times, each in its own process: medians."""
    out: dict[str, Any] = {}
    for phase in PHASES:
        runs = [
            json.loads(subprocess.run(
                [sys.executable, __file__, "--phase-child", phase, "--url", url,
                 "--start", start, "--end", end],
                check=True, capture_output=True, text=True,
            ).stdout.splitlines()[-1])
            for _ in range(FRAME_RUNS)
        ]
        out[phase] = {
            "seconds_median": statistics.median(r["seconds"] for r in runs),
            "rss_over_imports_mb_median": statistics.median(
                r["rss_over_imports_mb"] for r in runs
            ),
        }
    return out


def frames(url: str, start: str, end: str) -> dict[str, Any]:
    """``FRAME_RUNS`` runs per library, each in its own process: every run and the summary."""
    out: dict[str, Any] = {"runs": []}
    for library in ("pandas", "polars"):
        runs = []
        for _ in range(FRAME_RUNS):
            child = subprocess.run(
                [sys.executable, __file__, "--frame-child", library, "--url", url,
                 "--start", start, "--end", end],
                check=True, capture_output=True, text=True,
            )
            runs.append(json.loads(child.stdout.splitlines()[-1]))
        out["runs"] += runs
        seconds = [r["seconds"] for r in runs]
        rss = [r["peak_rss_mb"] for r in runs]
        growth = [r["peak_rss_mb"] - r["imports_rss_mb"] for r in runs]
        out[library] = {
            "rows": runs[0]["rows"],
            "seconds_best": min(seconds),
            "seconds_median": statistics.median(seconds),
            "peak_rss_mb_best": min(rss),
            "peak_rss_mb_median": statistics.median(rss),
            "rss_over_imports_mb_median": statistics.median(growth),
            "dtypes": runs[0]["dtypes"],
        }
    return out


async def main(years: int, out_dir: Path, frames_only: bool = False) -> dict[str, Any]:
    start = "2020-06-01"
    end = f"{2020 + years}-06-01"
    report: dict[str, Any] = {
        "range": [start, end], "window_s": WINDOW, "spot_limit_per_window": SPOT_LIMIT
    }
    with served_simulator() as url:
        await timed(url, "auto", start, end, None)  # warm the simulator's archive cache
        report["frames"] = await trio.to_thread.run_sync(frames, url, start, end)
        if frames_only:
            report["frames"]["phases"] = await trio.to_thread.run_sync(phases, url, start, end)
            return report
        for into, target in (
            ("memory", None),
            ("csv", out_dir / "bench_archives.csv"),
            ("parquet", out_dir / "bench_archives.parquet"),
        ):
            made = {}
            for source in ("auto", "rest"):
                gc.collect()  # each timed run starts from a clean heap
                figures, made[source] = await timed(url, source, start, end, target)
                report.setdefault("results", []).append(figures)
            auto, rest = report["results"][-2:]
            report[into] = {
                "identical": made["auto"] == made["rest"],
                "speedup": round(rest["seconds"] / auto["seconds"], 1),
            }
            del made
    return report


def print_frames(report: dict[str, Any]) -> None:
    print(f"Typed frames, spot BTCUSDT 1m {report['range'][0]} to {report['range'][1]}, "
          f"{FRAME_RUNS} runs each (fresh process):")
    for library in ("pandas", "polars"):
        f = report["frames"][library]
        print(
            f"  {library:7} rows={f['rows']} seconds best={f['seconds_best']} "
            f"median={f['seconds_median']}  peak RSS MB best={f['peak_rss_mb_best']} "
            f"median={f['peak_rss_mb_median']} (download: {f['rss_over_imports_mb_median']})  "
            f"dtypes={', '.join(f['dtypes'])}"
        )
    for phase, f in report["frames"].get("phases", {}).items():
        print(f"  polars phase {phase:5}: {f['seconds_median']} s, "
              f"{f['rss_over_imports_mb_median']} MB over the imports (medians)")


def print_table(report: dict[str, Any]) -> None:
    if "results" not in report:
        return
    cols = ["into", "source", "rows", "seconds", "rows_per_s", "archive_files", "rest_pages",
            "weight", "http_429"]
    title = (
        f"Spot BTCUSDT 1m {report['range'][0]} to {report['range'][1]}: auto is "
        f"{report['memory']['speedup']}x faster into memory, {report['csv']['speedup']}x "
        f"into CSV, {report['parquet']['speedup']}x into Parquet; identical: "
        + ", ".join(f"{into} {report[into]['identical']}" for into in ("memory", "csv", "parquet"))
    )
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for col in cols:
            table.add_column(col, justify="left" if col in ("into", "source") else "right")
        for r in report["results"]:
            table.add_row(*(str(r[c]) for c in cols))
        Console(width=150).print(table)
    except ImportError:
        print(title)
        for r in report["results"]:
            print(" | ".join(f"{c}={r[c]}" for c in cols))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--frames-only", action="store_true", help="only the typed frames")
    parser.add_argument("--frame-child", help=argparse.SUPPRESS)
    parser.add_argument("--phase-child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.frame_child:
        figures = trio.run(frame_child, options.url, options.frame_child, options.start, options.end)
        print(json.dumps(figures))
        sys.exit()
    if options.phase_child:
        figures = trio.run(phase_child, options.url, options.phase_child, options.start, options.end)
        print(json.dumps(figures))
        sys.exit()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        report = trio.run(main, options.years, Path(scratch), options.frames_only)
    print_table(report)
    print_frames(report)
    out = RESULTS / "bench_archives.json"
    if options.frames_only and out.exists():  # keep the other figures of the last full run
        report = {**json.loads(out.read_text()), "frames": report["frames"]}
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    if "results" in report and not all(
        report[into]["identical"] for into in ("memory", "csv", "parquet")
    ):
        sys.exit("auto and rest results differ")
