"""Benchmark the operator: memory of a long ring, and per-task overhead over a plain loop.

Part 1 (memory): a ``TaskRing`` of one cheap task (``CoinMPing``) runs ``--iterations``
times (default 100,000) through ``Operator.completed()`` against the in-process simulator.
RSS is sampled every ``--sample-every`` tasks (default 10,000); the figure is the RSS growth
from the end of the warm-up (``--warmup``, default 5,000 tasks) to the end. Target: < 5 MB.

Part 2 (overhead): the same task, the same simulator and client, executed ``--overhead-n``
times (default 5,000) by a plain loop (``for _ in range(n): await task.execute(client)``),
by ``Operator(...).run()`` over a ring, and by streaming the ring through ``completed()``.
The modes alternate over ``--reps`` repetitions (order rotated every repetition); the
medians are compared. Target: within 10 % of the plain loop. For reference, a plain loop
that sends each task into an unbuffered trio memory channel read by another trio task is
timed too: the floor for any streaming design in trio. A no-I/O task (a
``FunctionTask`` over one checkpoint) is timed the same way, to show the operator's own
cost per task in microseconds without the HTTP stack around it.

Rate limits are out of the way: the simulator's weight limits and the client's
``RateLimiter`` are both set to 10**9 per window.

Run: ``python benchmarks/bench_operator.py [--iterations 100000] [--json PATH]`` on an idle
machine (the load average before and after is recorded in the JSON).
Prints a table (rich when installed) and writes JSON to benchmarks/results/bench_operator.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import trio

import aiocea_trio
from aiocea_trio.limits import RateLimiter
from aiocea_trio.pipeline import FunctionTask, Operator, Task, TaskRing, TaskState
from aiocea_trio.sim import SimExchange
from aiocea_trio.tasks import CoinMPing

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "bench_operator.json"
HUGE = 10**9
LIMITS = {"spot": HUGE, "usdm": HUGE, "coinm": HUGE}
MB = 1024 * 1024
RSS_TARGET_MB = 5.0
OVERHEAD_TARGET_PCT = 10.0

Runner = Callable[[Any, Task, int], Awaitable[int]]
OPERATOR_MODES = ("Operator.run()", "Operator.completed()")


def rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def open_client() -> Any:
    """A client of a fresh in-process simulator, with rate limits far out of the way."""
    sim = SimExchange(seed=1, weight_limits=LIMITS)
    return sim.client(limiter=RateLimiter(LIMITS, learn_limits=False))


# -- part 1: memory of a long ring -------------------------------------------------------------


async def ring_memory(iterations: int, warmup: int, sample_every: int) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    failed = 0
    count = 0
    baseline: int | None = None
    ring = TaskRing(iter_num=iterations)
    ring += CoinMPing()

    def sample() -> int:
        gc.collect()  # what stays allocated, not garbage waiting for the next collection
        rss = rss_bytes()
        samples.append(
            {"tasks": count, "rss_mb": rss / MB, "elapsed_s": time.perf_counter() - start}
        )
        return rss

    async with open_client() as client:
        start = time.perf_counter()
        sample()
        async with Operator(client).add_queue(ring).completed() as finished:
            async for task in finished:
                count += 1
                if task.state is not TaskState.DONE:
                    failed += 1
                if count == warmup:
                    baseline = sample()
                elif count % sample_every == 0:
                    sample()
        elapsed = time.perf_counter() - start
        if count % sample_every:
            sample()
    end_rss = int(samples[-1]["rss_mb"] * MB)
    if baseline is None:  # fewer iterations than the warm-up: measure from the start
        baseline = int(samples[0]["rss_mb"] * MB)
    growth_mb = (end_rss - baseline) / MB
    return {
        "iterations": count,
        "failed": failed,
        "warmup": warmup,
        "elapsed_s": elapsed,
        "requests_per_s": count / elapsed,
        "rss_after_warmup_mb": baseline / MB,
        "rss_end_mb": end_rss / MB,
        "rss_growth_mb": growth_mb,
        "target_mb": RSS_TARGET_MB,
        "ok": growth_mb < RSS_TARGET_MB and failed == 0 and count == iterations,
        "samples": samples,
    }


# -- part 2: overhead over a plain loop ----------------------------------------------------------


async def plain_loop(client: Any, task: Task, n: int) -> int:
    done = 0
    for _ in range(n):
        await task.execute(client)
        done += task.state is TaskState.DONE
    return done


async def operator_run(client: Any, task: Task, n: int) -> int:
    ring = TaskRing(iter_num=n)
    ring += task
    await Operator(client).add_queue(ring).run()
    return n if task.state is TaskState.DONE else 0  # run() keeps only the last outcome


async def operator_stream(client: Any, task: Task, n: int) -> int:
    ring = TaskRing(iter_num=n)
    ring += task
    done = 0
    async with Operator(client).add_queue(ring).completed() as finished:
        async for t in finished:
            done += t.state is TaskState.DONE
    return done


async def channel_stream(client: Any, task: Task, n: int) -> int:
    """The floor for streaming in trio: a plain loop sending into an unbuffered channel."""
    send, receive = trio.open_memory_channel[Task](0)

    async def producer() -> None:
        with send:
            for _ in range(n):
                await task.execute(client)
                await send.send(task)

    done = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        async for t in receive:
            done += t.state is TaskState.DONE
    return done


MODES: dict[str, Runner] = {
    "plain loop": plain_loop,
    "plain loop + channel(0)": channel_stream,
    "Operator.run()": operator_run,
    "Operator.completed()": operator_stream,
}


async def compare(client: Any, make_task: Callable[[], Task], n: int, reps: int) -> dict[str, Any]:
    """Time every mode `reps` times, alternating (rotated order), and take the medians."""
    names = list(MODES)
    times: dict[str, list[float]] = {name: [] for name in names}
    failures = 0
    # One untimed round of each mode: connections, caches and code paths warmed up.
    for name in names:
        await MODES[name](client, make_task(), max(1, n // 10))
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            task = make_task()
            gc.collect()
            t0 = time.perf_counter()
            done = await MODES[name](client, task, n)
            times[name].append(time.perf_counter() - t0)
            failures += n - done
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians["plain loop"]
    modes = {}
    for name in names:
        med = medians[name]
        modes[name] = {
            "times_s": times[name],
            "median_s": med,
            "per_task_us": med / n * 1e6,
            "tasks_per_s": n / med,
            "overhead_pct": (med - base) / base * 100.0,
            "overhead_us_per_task": (med - base) / n * 1e6,
        }
    return {"n": n, "reps": reps, "failures": failures, "modes": modes}


async def overhead(n: int, reps: int, noop_n: int) -> dict[str, Any]:
    async with open_client() as client:
        ping = await compare(client, CoinMPing, n, reps)

    async def nothing() -> None:
        await trio.lowlevel.checkpoint()

    noop = await compare(None, lambda: FunctionTask(nothing), noop_n, reps)
    worst = max(m["overhead_pct"] for name, m in ping["modes"].items() if name in OPERATOR_MODES)
    ping["target_pct"] = OVERHEAD_TARGET_PCT
    ping["ok"] = worst <= OVERHEAD_TARGET_PCT and ping["failures"] == 0
    return {"ping": ping, "noop": noop}


# -- reporting ----------------------------------------------------------------------------------


def rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    mem = report["ring_memory"]
    out = [
        ("ring iterations (CoinMPing)", f"{mem['iterations']:,}", f"{mem['failed']} failed"),
        ("ring wall time", f"{mem['elapsed_s']:.1f} s", ""),
        ("ring requests/s", f"{mem['requests_per_s']:,.0f}", "through completed()"),
        (
            f"RSS after warm-up ({mem['warmup']:,})",
            f"{mem['rss_after_warmup_mb']:.1f} MB",
            "",
        ),
        ("RSS at the end", f"{mem['rss_end_mb']:.1f} MB", ""),
        (
            "RSS growth",
            f"{mem['rss_growth_mb']:+.2f} MB",
            f"target < {RSS_TARGET_MB:g} MB: {'ok' if mem['ok'] else 'MISSED'}",
        ),
    ]
    for label, part in (
        ("ping", report["overhead"]["ping"]),
        ("no-op", report["overhead"]["noop"]),
    ):
        for name, m in part["modes"].items():
            note = f"median of {part['reps']} x {part['n']:,}"
            if name != "plain loop":
                note = f"{m['overhead_pct']:+.1f} % ({m['overhead_us_per_task']:+.1f} µs/task) vs plain"
                if label == "ping" and name in OPERATOR_MODES:
                    ok = m["overhead_pct"] <= OVERHEAD_TARGET_PCT
                    note += f"; target ≤ {OVERHEAD_TARGET_PCT:g} %: {'ok' if ok else 'MISSED'}"
            out.append(
                (
                    f"{label}: {name}",
                    f"{m['per_task_us']:.1f} µs/task, {m['tasks_per_s']:,.0f}/s",
                    note,
                )
            )
    return out


def print_table(report: dict[str, Any]) -> None:
    table_rows = rows(report)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(r[0]) for r in table_rows)
        vwidth = max(len(r[1]) for r in table_rows)
        print("bench_operator")
        for name, value, note in table_rows:
            print(f"  {name:<{width}}  {value:>{vwidth}}  {note}")
        return
    table = Table(title="bench_operator")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    for row in table_rows:
        table.add_row(*row)
    Console(width=max(Console().width, 130)).print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=100_000, help="ring length (part 1)")
    p.add_argument("--warmup", type=int, default=5_000, help="tasks before the RSS baseline")
    p.add_argument("--sample-every", type=int, default=10_000, help="RSS sample period (tasks)")
    p.add_argument("--overhead-n", type=int, default=5_000, help="tasks per timed run (part 2)")
    p.add_argument("--noop-n", type=int, default=100_000, help="tasks per no-op timed run")
    p.add_argument("--reps", type=int, default=5, help="alternating repetitions (part 2)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    args = p.parse_args(argv)
    for name in ("iterations", "warmup", "sample_every", "overhead_n", "noop_n", "reps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


async def main(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    memory = await ring_memory(args.iterations, args.warmup, args.sample_every)
    over = await overhead(args.overhead_n, args.reps, args.noop_n)
    return {
        "benchmark": "bench_operator",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "trio": trio.__version__,
            "aiocea_trio": aiocea_trio.__version__,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "ring_memory": memory,
        "overhead": over,
    }


if __name__ == "__main__":
    arguments = parse_args()
    result = trio.run(main, arguments)
    print_table(result)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"JSON written to {arguments.json}")
