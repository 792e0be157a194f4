"""The public names: everything DESIGN.md promises is importable from aiocea_trio."""

from __future__ import annotations

import importlib

import pytest

import aiocea_trio


def test_every_exported_name_resolves() -> None:
    for name in aiocea_trio.__all__:
        assert getattr(aiocea_trio, name) is not None, name


def test_public_names_of_the_core_modules_are_exported() -> None:
    for module_name in ("errors", "signing", "client", "markets", "limits", "pipeline", "tasks"):
        module = importlib.import_module(f"aiocea_trio.{module_name}")
        missing = set(module.__all__) - set(aiocea_trio.__all__)
        assert not missing, f"aiocea_trio.{module_name} exports {missing} but the package does not"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        aiocea_trio.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
