"""aiocea_trio.testing: the pytest plugin, the helpers without pytest, the respx recipe.

The sample test modules of docs/testing.md (```python blocks opening with ``# tests/...``,
and the ```toml block opening with ``# pyproject.toml``) are written to a temporary project
and run by pytest in a subprocess, through the entry point and through ``-p``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import respx
import trio

from aiocea_trio import BinanceClient, RateLimiter
from aiocea_trio.testing import (
    DEFAULT_SIM_OPTIONS,
    make_sim,
    mock_exchange_info,
    open_sim_client,
    open_sim_url,
)

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "testing.md"
SAMPLE = re.compile(r"```(?:python|toml)\n# (\S+)\n(.*?)```", re.DOTALL)


def _write_samples(where: Path) -> int:
    """Write the page's sample files under ``where``; return how many tests they hold."""
    tests = 0
    for name, body in SAMPLE.findall(PAGE.read_text()):
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n{body}")
        tests += len(re.findall(r"^async def test_", body, re.MULTILINE))
    return tests


def _pytest(where: Path, *args: str, autoload: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(
        command, cwd=where, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_page_has_samples(tmp_path: Path) -> None:
    assert _write_samples(tmp_path) >= 8
    assert (tmp_path / "pyproject.toml").read_text().count("trio_mode = true") == 1


def test_docs_samples_pass_through_the_entry_point(tmp_path: Path) -> None:
    count = _write_samples(tmp_path)
    result = _pytest(tmp_path, "-W", "error")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} passed" in result.stdout


def test_docs_samples_pass_with_p_and_no_autoload(tmp_path: Path) -> None:
    count = _write_samples(tmp_path)
    plugins = ["-p", "aiocea_trio.testing", "-p", "pytest_trio.plugin", "-p", "respx.plugin"]
    result = _pytest(tmp_path, *plugins, autoload=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} passed" in result.stdout


def _entry_point_name() -> str:
    names = [ep.name for ep in entry_points(group="pytest11") if ep.value == "aiocea_trio.testing"]
    assert names, "the pytest11 entry point of aiocea_trio.testing is not installed"
    return names[0]


def test_p_flag_next_to_the_entry_point(tmp_path: Path) -> None:
    """``-p aiocea_trio.testing`` with autoloading on: pluggy refuses a module registered
    under two names, so the entry point is named like the module."""
    assert _entry_point_name() == "aiocea_trio.testing"
    count = _write_samples(tmp_path)
    result = _pytest(tmp_path, "-p", "aiocea_trio.testing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} passed" in result.stdout


def test_import_is_harmless_without_the_sim_extra_or_pytest() -> None:
    code = """
import sys
for name in ("starlette", "hypercorn", "pytest", "_pytest", "pytest_trio", "respx"):
    sys.modules[name] = None  # as if not installed
import aiocea_trio.testing as kit
assert not any(m.startswith("aiocea_trio.sim") for m in sys.modules), "sim imported"
assert not hasattr(kit, "binance_sim"), "fixtures defined without pytest"
try:
    kit.make_sim()
except ImportError as exc:
    assert "pip install 'aiocea-trio[sim]'" in str(exc), exc
else:
    raise AssertionError("no ImportError")
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_fixture_without_the_sim_extra_names_it(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import sys\nsys.modules['starlette'] = None  # the sim extra is not installed\n"
    )
    (tmp_path / "test_it.py").write_text(
        "def test_unrelated():\n    pass\n\ndef test_needs_the_sim(binance_sim):\n    pass\n"
    )
    result = _pytest(tmp_path)
    assert "1 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "pip install 'aiocea-trio[sim]'" in result.stdout


def test_marker_takes_keywords_only(tmp_path: Path) -> None:
    (tmp_path / "test_it.py").write_text(
        "import pytest\n\n@pytest.mark.binance_sim(3)\ndef test_it(binance_sim):\n    pass\n"
    )
    result = _pytest(tmp_path, "--strict-markers")
    assert "1 error" in result.stdout, result.stdout + result.stderr
    assert "keyword arguments only" in result.stdout


# -- in this session: the fixtures, the helpers, the respx recipe -----------------------


@pytest.mark.binance_sim(seed=9, weight_window=10)
async def test_fixtures_follow_the_marker_and_the_clock(
    binance_sim, binance_client, autojump_clock
) -> None:
    assert binance_sim.config.seed == 9
    assert binance_sim.now_ms() == DEFAULT_SIM_OPTIONS["start_time_ms"]  # first read: anchored
    start = binance_sim.now_ms()
    await trio.sleep(3600)
    await binance_client.request("GET", "/api/v3/ping")
    assert binance_sim.now_ms() == start + 3_600_000
    assert binance_client.statistics().limiter.markets["spot"].window == 10


async def test_helpers_without_pytest(autojump_clock) -> None:
    sim = make_sim(seed=4)
    assert sim.config.seed == 4
    assert sim.config.start_time_ms == DEFAULT_SIM_OPTIONS["start_time_ms"]
    async with open_sim_client(sim) as client:
        account = await client.request("GET", "/api/v3/account", signed=True)
    assert account["accountType"] == "SPOT"
    async with open_sim_url() as url:
        assert url.startswith("http://127.0.0.1:")
        async with BinanceClient(base_url=url) as client:
            assert await client.request("GET", "/fapi/v1/ping") == {}


async def test_mock_exchange_info_answers_limits_and_time(
    respx_mock: respx.MockRouter, autojump_clock
) -> None:
    route = mock_exchange_info(respx_mock)
    respx_mock.get("https://dapi.binance.com/dapi/v1/balance").respond(json=[])
    await trio.sleep(500)
    async with BinanceClient("K" * 64, "secret") as client:
        assert await client.request("GET", "/dapi/v1/balance", signed=True) == []
        paths = [call.request.url.path for call in route.calls]
        assert paths == ["/dapi/v1/exchangeInfo", "/dapi/v1/time"]
        coinm = client.statistics().limiter.markets["coinm"]
        assert (coinm.limit, coinm.window, coinm.learned) == (2400, 60, True)
        # The mock's time follows trio's clock, as the client's does (not 500 s behind).
        assert abs(client.time_offset_ms) < 1000


async def test_unmocked_exchange_info_says_what_to_do(respx_mock: respx.MockRouter) -> None:
    async with BinanceClient() as client:
        with pytest.raises(AssertionError) as caught:
            await client.request("GET", "/fapi/v1/ticker/price", {"symbol": "BTCUSDT"})
    (note,) = caught.value.__notes__
    assert "usdm GET /fapi/v1/exchangeInfo is the client's own request" in note
    assert "mock_exchange_info(respx_mock)" in note
    assert "learn_limits=False" in note


async def test_unmocked_time_says_what_to_do(respx_mock: respx.MockRouter) -> None:
    quiet = RateLimiter(learn_limits=False)
    async with BinanceClient("K" * 64, "secret", limiter=quiet) as client:
        with pytest.raises(AssertionError) as caught:
            await client.request("GET", "/api/v3/account", signed=True)
    (note,) = caught.value.__notes__
    assert "spot GET /api/v3/time is the client's own request" in note
    assert "auto_sync_time=False" in note
