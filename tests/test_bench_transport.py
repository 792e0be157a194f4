"""benchmarks/bench_transport.py's smoke run: every mode and concurrency measured, positive.

``--quick`` serves the simulator in a child process on 127.0.0.1 and runs 64 requests per
mode and concurrency, one rep.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench_runs import quick_run

MODES = {"httpx default", "httpx + FastTransport", "FastTransport direct"}


def test_quick_run_measures_every_mode(tmp_path: Path) -> None:
    result, printed = quick_run("bench_transport.py", tmp_path / "transport.json")
    assert {"date", "machine", "python", "versions", "requests", "reps", "results"} <= set(result)
    assert result["quick"] is True
    assert {"httpx", "httpcore", "httptools", "trio"} <= set(result["versions"])
    rows = result["results"]
    assert {(r["mode"], r["concurrency"]) for r in rows} == {
        (mode, c) for mode in MODES for c in (1, 16, 64)
    }
    for r in rows:
        assert r["cpu_us_per_request"] > 0, r
        assert all(s > 0 for s in r["samples"]), r
    assert set(result["speedup"]) == {"1", "16", "64"}
    assert all(v > 0 for v in result["speedup"].values())
    assert "CPU µs/request" in printed
