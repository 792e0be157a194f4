"""``help(aiocea_trio)`` opens with a short guide whose example runs."""

from __future__ import annotations

import pydoc
import textwrap
import types

import pytest

import aiocea_trio


def test_help_opens_with_the_guide() -> None:
    text = pydoc.render_doc(aiocea_trio, renderer=pydoc.plaintext)
    head = text[: text.index("PACKAGE CONTENTS")]
    assert "Quick start" in head
    assert "Where things are" in head
    assert len(head.splitlines()) < 60  # a guide, not a reference


def test_the_guide_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    doc = aiocea_trio.__doc__
    assert doc is not None
    block = doc.split("::\n\n", 1)[1].split("\nWhere things are", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(textwrap.dedent(block), "aiocea_trio.__doc__", "exec"), namespace)
    out = capsys.readouterr().out
    assert "'symbol': 'BTCUSDT'" in out
    assert out.count("[") >= 3  # two kline rows


def test_no_private_names_but_submodules() -> None:
    private = [n for n in vars(aiocea_trio) if n.startswith("_") and not n.startswith("__")]
    assert all(isinstance(getattr(aiocea_trio, n), types.ModuleType) for n in private), private
