"""What the benchmark smoke tests share: a script's ``--quick`` run, its JSON read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def quick_run(script: str, out: Path) -> tuple[dict[str, Any], str]:
    """``python benchmarks/<script> --quick --json <out>`` in a subprocess, which must exit
    0: the JSON it wrote, and what it printed."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result, done.stdout
