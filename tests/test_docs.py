"""Every ```python block in README.md and docs/ runs, in order, against the simulator.

Blocks of one page share a namespace, like a reader going down the page. A block
right after an ``<!-- no-test -->`` line is skipped (used only for code that
needs real keys or the internet). The examples carry their own asserts.

``trio.run`` gets trio's autojump ``MockClock`` here, so examples that wait for
rate-limit windows or ring intervals run instantly, as they would in a test.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"(<!-- no-test -->\s*\n)?```python\n(.*?)```", re.DOTALL)


def _blocks(page: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(page.read_text()) if not skip]


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = trio.run

    def run_with_mock_clock(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("clock", trio.testing.MockClock(autojump_threshold=0))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(trio, "run", run_with_mock_clock)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    out = io.StringIO()
    for number, code in enumerate(_blocks(page), 1):
        compiled = compile(code, f"{page.name}[block {number}]", "exec")
        with contextlib.redirect_stdout(out):
            exec(compiled, namespace)


def test_api_reference_is_current() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    assert spec is not None
    assert spec.loader is not None
    gen_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_api)
    current = (ROOT / "docs" / "api.md").read_text()
    assert gen_api.render() == current, "docs/api.md is stale: run python docs/gen_api.py"


def test_cli_page_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``aiocea-trio --sim ...`` line in docs/cli.md's ```sh blocks."""
    import shlex

    from click.testing import CliRunner

    from aiocea_trio.cli._app import cli

    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "cli.md").read_text()
    lines = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
        for line in block.splitlines()
        if line.strip().startswith("aiocea-trio --sim")
    ]
    assert len(lines) >= 8
    runner = CliRunner()
    for line in lines:
        result = runner.invoke(cli, shlex.split(line)[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
