"""What the benchmarks share: the simulator served from a child process.

Run as scripts (``python benchmarks/bench_x.py``), the benchmarks find this module beside
them; a test that imports one puts ``benchmarks/`` on ``sys.path`` first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: Weight limits that no benchmark reaches (per window, every market).
NO_LIMITS = {"spot": 100_000_000, "usdm": 100_000_000, "coinm": 100_000_000}


@contextmanager
def served_simulator(
    limits: Mapping[str, int] = NO_LIMITS, *, window: int | None = None
) -> Iterator[str]:
    """``aiocea-trio sim`` on a free 127.0.0.1 port in a child process (so its CPU is not
    the client's); yields its URL. ``limits`` per market, over ``window``-second windows
    (the simulator's default window when None)."""
    args = [sys.executable, "-m", "aiocea_trio", "sim", "--port", "0"]
    if window is not None:
        args += ["--weight-window", str(window)]
    for market, limit in limits.items():
        args += ["--weight-limit", f"{market}={limit}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().rsplit(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
