"""benchmarks/bench_streams.py's smoke run: every client got messages, every figure positive.

The script serves the simulator (with its bench-only paced feed) in a child process on
127.0.0.1 and runs each client in its own subprocess; ``--quick`` runs 10k msgs/s for 0.3 s,
one round. A peer whose library is missing is skipped by the script with a note, and here too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.bench_runs import quick_run

CLIENTS = {"aiocea_typed", "aiocea_raw", "python_binance", "ccxt", "ws_recv", "ws_json"}
NEEDS = {"python_binance": "binance", "ccxt": "ccxt"}


@pytest.mark.slow
def test_quick_run_covers_every_client(tmp_path: Path) -> None:
    result, _ = quick_run("bench_streams.py", tmp_path / "streams.json")
    missing = {p for p, module in NEEDS.items() if importlib.util.find_spec(module) is None}
    assert len(result["skipped"]) == len(missing)
    assert {"date", "machine", "python", "versions", "excluded", "verdict"} <= set(result)

    rows = result["results"]["10000"]
    assert set(rows) == CLIENTS - missing
    for name, r in rows.items():
        assert r["complete"], name
        assert r["messages"] >= 0.3 * 10_000, (name, r)
        assert r["cpu_us_per_msg"] > 0, (name, r)
        assert r["msgs_per_s"] > 0, (name, r)
        assert r["delay_p50_ms"] > 0, (name, r)
        assert r["delay_p99_ms"] >= r["delay_p50_ms"], (name, r)
        assert r["server_sent_per_s"] > 0, (name, r)
    assert result["micro"]["json_loads_us"] > 0
