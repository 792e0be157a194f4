"""Four separate interpreters, one served simulator, one real Redis: never over the IP's
budget together (issue 18's end-to-end claim, in a short run of the benchmark's own parts).

The simulator runs Binance's spot limit scaled to 2-second windows (200 weight per 2 s) in a
child process; each worker is ``benchmarks/bench_shared_limits.py --worker`` (kline downloads
and a ticker GET every second) with ``RateLimiter(shared=redis_url)``. The full benchmark runs
60 windows and the Redis-restart scenario; this runs 5 windows, enough for four processes to
press on the limit in every one of them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_shared_limits.py"


def _bench() -> ModuleType:
    if str(SCRIPT.parent) not in sys.path:  # the benchmarks import their _harness beside them
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("bench_shared_limits", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_shared_limits", module)
    spec.loader.exec_module(module)
    return module


def test_four_processes_sharing_redis_draw_no_429_and_use_the_budget() -> None:
    pytest.importorskip("coredis")
    bench = _bench()
    try:
        redis = bench.Redis()
    except (RuntimeError, FileNotFoundError) as exc:  # no redis-server: the test extra has it
        pytest.fail(f"no redis-server to run against: {exc}")
    redis.start()
    try:
        with bench.served_simulator() as sim_url:
            result = bench.run("shared", sim_url, redis, 4, 1, 10.0)
    finally:
        redis.kill()
    assert result["finished"] == 4, result
    assert result["hung"] == 0
    assert result["http_429"] == 0
    assert result["http_418"] == 0
    assert result["errors"] == 0
    assert result["windows_over_limit"] == 0
    assert result["windows"] >= 4
    assert result["rows"] > 0
    # Four processes wanting more than the budget keep every window busy.
    assert result["utilization"] >= 0.6, result["utilization"]
    assert len({w["worker"] for w in result["per_worker"]}) == 4
