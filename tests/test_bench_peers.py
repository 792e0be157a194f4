"""benchmarks/bench_peers.py's smoke run: every peer measured, every figure positive.

The script serves the simulator in a child process on 127.0.0.1 and runs each peer in its own
subprocess; ``--quick`` sends a few requests and downloads two days of klines. A peer whose
library is missing is skipped by the script with a note, and here too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench_runs import quick_run

CPU_PEERS = {"httpx", "aiocea_request", "aiocea_operator", "python_binance", "ccxt", "aiohttp"}
DOWNLOAD_PEERS = {"aiocea_rest", "aiocea_auto", "python_binance", "ccxt"}
NEEDS = {"python_binance": "binance", "ccxt": "ccxt", "aiohttp": "aiohttp"}


@pytest.mark.slow
def test_quick_run_covers_every_peer(tmp_path: Path) -> None:
    result, _ = quick_run("bench_peers.py", tmp_path / "peers.json")
    missing = {p for p, module in NEEDS.items() if importlib.util.find_spec(module) is None}
    assert len(result["skipped"]) == len(missing)
    assert {"date", "machine", "python", "versions", "excluded"} <= set(result)
    assert result["machine"]["cpu_count"] >= 1

    cpu = result["cpu"]["results"]
    assert {(r["peer"], r["concurrency"]) for r in cpu} == {
        (p, c) for p in CPU_PEERS - missing for c in (1, 64)
    }
    for r in cpu:
        assert r["cpu_us_per_request"] > 0, r
        assert r["requests_per_s"] > 0, r
    assert result["cpu"]["http_429"] == 0

    download = result["download"]["results"]
    assert {(r["peer"], r["market"]) for r in download} == {
        (p, m) for p in DOWNLOAD_PEERS - missing for m in ("spot", "usdm")
    }
    assert result["download"]["rows_agree"]
    for r in download:
        assert r["rows"] == {"spot": 2 * 1440, "usdm": 1440}[r["market"]], r
        assert r["rows_per_s"] > 0, r
        assert r["http_418"] == 0, r
        # REST peers pay weight; aiocea's auto source takes whole days from the archives
        if r["peer"] == "aiocea_auto":
            assert r["archive_files"] > 0, r
        else:
            assert r["weight"] > 0, r
    assert result["ratios"]["cpu_vs_raw_httpx"]["httpx c1"] == 1.0
