"""The documentation site builds with ``mkdocs build --strict``.

Strict mode turns every warning into a failure: a page missing from the nav, a broken link
or anchor between pages, a ``::: module`` the reference cannot load, a docstring documenting a
parameter that does not exist. The build runs in a subprocess into a temporary directory; it is
skipped only where mkdocs is not installed (the ``docs`` extra, part of ``test``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed")
def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in (
        "index.html",
        "reference/pipeline/index.html",
        "zh/index.html",
        "changelog/index.html",
    ):
        assert (site / page).is_file(), page
    changelog = (site / "changelog" / "index.html").read_text()
    assert "Unreleased" in changelog, "docs/changelog.md must include CHANGELOG.md"
