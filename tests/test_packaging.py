"""The wheel and sdist carry the licence, the metadata users look for, and nothing else."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import pytest

hatchling_build = pytest.importorskip("hatchling.build")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        wheel = out / hatchling_build.build_wheel(str(out))
        sdist = out / hatchling_build.build_sdist(str(out))
    finally:
        os.chdir(cwd)
    return wheel, sdist


def test_wheel_has_license_metadata_and_the_package_only(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(meta_name).decode()
        license_text = z.read(next(n for n in names if n.endswith("licenses/LICENSE"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "MIT License" in license_text
    assert {n.split("/")[0] for n in names} == {"aiocea_trio", meta_name.split("/")[0]}
    assert "aiocea_trio/py.typed" in names
    assert "License-Expression: MIT" in meta
    urls = [line for line in meta.splitlines() if line.startswith("Project-URL: ")]
    assert {u.split(",")[0].removeprefix("Project-URL: ") for u in urls} >= {
        "Homepage",
        "Documentation",
        "Repository",
        "Issues",
        "Changelog",
    }
    assert "binance" in next(line for line in meta.splitlines() if line.startswith("Keywords:"))
    assert "aiocea_trio.testing = aiocea_trio.testing" in entry_points  # the pytest plugin
    assert "aiocea-trio = aiocea_trio.cli:main" in entry_points


def test_sdist_leaves_out_what_users_do_not_need(built: tuple[Path, Path]) -> None:
    _, sdist = built
    with tarfile.open(sdist) as t:
        top = {n.split("/", 2)[1] for n in t.getnames() if n.count("/") >= 1}
    assert {"LICENSE", "README.md", "pyproject.toml", "aiocea_trio", "tests", "docs"} <= top
    assert not top & {".ci", "benchmarks", ".hypothesis", ".mypy_cache", "site", "venv"}
