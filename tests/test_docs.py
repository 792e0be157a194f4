"""Every ```python block in README.md, docs/ and docs/zh/ runs, against the simulator.

Each block stands alone: it runs in a fresh namespace, as a reader who copies one example would
run it. A page whose examples build on each other says so at its top, visibly and with the
marker line ``<!-- examples: chained -->``; its blocks then share one namespace, in order, like
a reader going down the page. A block right after an ``<!-- no-test -->`` line is skipped (used
only for code that needs real keys or the internet, or aiocea's own code). The examples carry
their own asserts.

The Chinese pages in docs/zh/ translate the prose and keep the code: each has the same python
blocks as its English original, comments and string contents aside, so they run here too and
cannot fall out of step.

``trio.run`` gets trio's autojump ``MockClock`` here, so examples that wait for rate-limit
windows or ring intervals run instantly, as they would in a test. Each page runs in its own
temporary working directory.
"""

from __future__ import annotations

import contextlib
import io
import re
import tokenize
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *(DOCS / "zh").glob("*.md")])
BLOCK = re.compile(r"(<!-- no-test -->\s*\n)?```python\n(.*?)```", re.DOTALL)
CHAINED = "<!-- examples: chained -->"
#: Each Chinese page and the English page it translates.
TRANSLATIONS = {
    DOCS / "zh" / "README.md": ROOT / "README.md",
    DOCS / "zh" / "migration.md": DOCS / "migration.md",
}


def _blocks(page: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(page.read_text()) if not skip]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=_page_id)
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = trio.run

    def run_with_mock_clock(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("clock", trio.testing.MockClock(autojump_threshold=0))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(trio, "run", run_with_mock_clock)
    monkeypatch.chdir(tmp_path)
    chained = CHAINED in page.read_text()
    name = _page_id(page)
    namespace: dict[str, object] = {}
    out = io.StringIO()
    for number, code in enumerate(_blocks(page), 1):
        if not chained or not namespace:
            namespace = {"__name__": f"docs_{page.stem}_{number}"}
        compiled = compile(code, f"{name}[block {number}]", "exec")
        with contextlib.redirect_stdout(out):
            exec(compiled, namespace)


def test_chained_pages_say_so() -> None:
    """The marker sits at the top of the page, with a sentence a reader sees."""
    for page in PAGES:
        text = page.read_text()
        if CHAINED not in text:
            continue
        head = text.split("```", 1)[0]
        assert CHAINED in head, f"{_page_id(page)}: the marker must come before the first code"
        assert "build on each other" in head or "依次" in head, (
            f"{_page_id(page)}: say in words that the examples build on each other"
        )


def _code_only(code: str) -> list[tuple[int, str]]:
    """The block's tokens without comments and string contents (those may be translated)."""
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    kept = []
    for token in tokens:
        if token.type in (tokenize.COMMENT, tokenize.NL):
            continue
        if token.type == tokenize.STRING:
            kept.append((token.type, "<str>"))
            continue
        kept.append((token.type, token.string))
    return kept


@pytest.mark.parametrize("page", sorted(TRANSLATIONS), ids=_page_id)
def test_translation_keeps_the_code(page: Path) -> None:
    original = TRANSLATIONS[page]
    ours = BLOCK.findall(page.read_text())
    theirs = BLOCK.findall(original.read_text())
    assert len(ours) == len(theirs), (
        f"{_page_id(page)} has {len(ours)} python blocks, {_page_id(original)} {len(theirs)}"
    )
    for number, ((skip_ours, code_ours), (skip_theirs, code_theirs)) in enumerate(
        zip(ours, theirs, strict=True), 1
    ):
        assert bool(skip_ours) == bool(skip_theirs), f"block {number}: no-test differs"
        assert _code_only(code_ours) == _code_only(code_theirs), (
            f"{_page_id(page)} block {number} differs from {_page_id(original)}'s"
        )


def test_every_translation_is_listed() -> None:
    assert set((DOCS / "zh").glob("*.md")) == set(TRANSLATIONS)


def test_no_links_outside_the_repository() -> None:
    """Docs speak of what they mean, not of files that only exist beside the repository."""
    outside = re.compile(r"\.\./shared|shared/|DESIGN\.md|binance-api\.md")
    # the package's docstrings are pages too: the API reference renders them
    sources = sorted((ROOT / "aiocea_trio").rglob("*.py"))
    for page in [*PAGES, ROOT / "CHANGELOG.md", *sources]:
        found = outside.findall(page.read_text())
        assert not found, f"{_page_id(page)} refers to files outside the repository: {found}"


def test_cli_page_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``aiocea-trio --sim ...`` line in docs/cli.md's ```sh blocks."""
    import shlex

    from click.testing import CliRunner

    from aiocea_trio.cli._app import cli

    monkeypatch.chdir(tmp_path)
    text = (DOCS / "cli.md").read_text()
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
