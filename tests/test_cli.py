"""The command line through click's runner (sync tests: each command runs its own trio.run)."""

from __future__ import annotations

import pytest
import respx
from click.testing import CliRunner

from aiocea_trio.cli._app import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "ping" in result.output
    assert "time" in result.output


def test_ping_and_time_against_a_host(runner: CliRunner) -> None:
    with respx.mock(base_url="https://fapi.binance.com") as mock:
        mock.get("/fapi/v1/ping").respond(json={})
        mock.get("/fapi/v1/time").respond(json={"serverTime": 1_700_000_000_000})
        result = runner.invoke(cli, ["--market", "usdm", "ping"])
        assert result.exit_code == 0, result.output
        assert "pong from USDⓈ-M (https://fapi.binance.com)" in result.output
        result = runner.invoke(cli, ["--market", "usdm", "time"])
        assert result.exit_code == 0, result.output
        assert "2023-11-14T22:13:20.000+00:00 (1700000000000)" in result.output


def test_errors_are_one_line_and_exit_non_zero(runner: CliRunner) -> None:
    with respx.mock() as mock:
        mock.get("https://api.binance.com/api/v3/ping").respond(
            502, text="<html>bad gateway</html>"
        )
        result = runner.invoke(cli, ["ping"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error: spot GET /api/v3/ping: HTTP 502")


def test_debug_shows_the_traceback(runner: CliRunner) -> None:
    with respx.mock() as mock:
        mock.get("https://api.binance.com/api/v3/ping").respond(502, text="oops")
        result = runner.invoke(cli, ["--debug", "ping"])
    assert result.exit_code == 1
    assert result.exception is not None
    assert type(result.exception).__name__ == "BinanceResponseError"


def test_sim_conflicts_with_base_url(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--sim", "--base-url", "http://127.0.0.1:1", "ping"])
    assert result.exit_code == 2
    assert "--sim runs the embedded simulator" in result.output


def test_python_dash_m_and_main_share_the_command() -> None:
    from aiocea_trio.__main__ import main as module_main
    from aiocea_trio.cli import main

    assert module_main is main
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
