"""The command line through click's runner (sync tests: each command runs its own trio.run)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
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


# -- every command against the embedded simulator (--sim) ---------------------------------


def _ok(runner: CliRunner, *args: str, input: str | None = None) -> str:
    result = runner.invoke(cli, ["--sim", *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(runner: CliRunner, code: int, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_sim_ping_and_time(runner: CliRunner) -> None:
    assert "pong from spot (embedded simulator)" in _ok(runner, "ping")
    assert "COIN-M server time: 20" in _ok(runner, "--market", "coinm", "time")


def test_sim_ticker_for_each_market(runner: CliRunner) -> None:
    out = _ok(runner, "ticker", "BTCUSDT", "ethusdt")
    assert "BTCUSDT" in out
    assert "ETHUSDT" in out
    assert "change %" in out
    assert "BTCUSD_PERP" in _ok(runner, "--market", "coinm", "ticker", "BTCUSD_PERP")
    assert "ETHUSDT" in _ok(runner, "--market", "usdm", "ticker", "ETHUSDT")


def test_sim_depth(runner: CliRunner) -> None:
    out = _ok(runner, "depth", "BTCUSDT", "--limit", "5")
    assert "order book" in out
    rows = [line for line in out.splitlines() if line.count("│") >= 4]
    assert len(rows) == 5  # five levels per side


def test_sim_klines_to_csv_and_resume(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "btc.csv"
    out = _ok(runner, "klines", "BTCUSDT", "1h", "--start", "2024-01-01", "--end", "2024-01-03",
              "-o", str(target))
    assert "48 rows written" in out
    out = _ok(runner, "klines", "BTCUSDT", "1h", "--start", "2024-01-01", "--end", "2024-01-04",
              "-o", str(target))
    assert "24 rows written" in out  # resumed after the last row, nothing twice
    lines = target.read_text().splitlines()
    assert lines[0].startswith("open_time,open,high,low,close,volume")
    opens = [int(line.split(",")[0]) for line in lines[1:]]
    assert len(opens) == 72
    assert opens == list(range(opens[0], opens[0] + 72 * 3_600_000, 3_600_000))


def test_sim_klines_to_parquet(runner: CliRunner, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    target = tmp_path / "eth.parquet"
    out = _ok(runner, "--market", "usdm", "klines", "ETHUSDT", "15m", "--start", "2024-03-01",
              "--end", "2024-03-02", "-o", str(target))
    assert "96 rows written" in out
    table = pq.read_table(target)
    assert table.num_rows == 96
    assert table.column_names[0] == "open_time"
    assert table.column("open_time")[0].as_py() == 1709251200000


def test_sim_watch_a_few_rounds(runner: CliRunner) -> None:
    out = _ok(runner, "watch", "BTCUSDT", "BNBUSDT", "--every", "10ms", "--rounds", "2")
    assert "BNBUSDT" in out


def test_sim_demo_runs_the_seed_examples(runner: CliRunner) -> None:
    out = _ok(runner, "demo", "--rounds", "1")
    for title in ("1. Fetch the server time", "5. Fetch two symbols' klines at once"):
        assert title in out
    assert "Gather (2):" in out
    assert "serverTime" in out
    assert out.count("finish") >= 3


def test_sim_account_and_order(runner: CliRunner) -> None:
    assert "USDT" in _ok(runner, "account")
    out = _ok(runner, "order", "buy", "BTCUSDT", "0.001", "--yes")
    assert "placed: order" in out
    assert "FILLED" in out
    out = _ok(runner, "order", "SELL", "BTCUSDT", "0.001", "--price", "999999", "--yes")
    assert "NEW" in out


def test_order_asks_first(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--sim", "order", "BUY", "BTCUSDT", "0.001"], input="n\n")
    assert result.exit_code == 1
    assert "Place " in result.output
    assert "not placed" in result.output


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--sim", "ticker", "NOPE"], 1, "unknown symbol"),
        (["--sim", "klines", "BTCUSDT", "2m", "--start", "2024-01-01", "-o", "x.csv"], 2,
         "interval must be one of"),
        (["--sim", "klines", "BTCUSDT", "1m", "--start", "yesterday", "-o", "x.csv"], 2,
         "not a time"),
        (["--sim", "order", "HOLD", "BTCUSDT", "1"], 2, "HOLD"),
        (["--sim", "order", "BUY", "BTCUSDT", "0", "--yes"], 2, "quantity"),
        (["--sim", "watch", "BTCUSDT", "--every", "soon"], 2, "not a period"),
        (["--sim", "sim", "--weight-limit", "nasdaq=5"], 2, "MARKET=N"),
    ],
)
def test_bad_input_is_one_clear_line(
    runner: CliRunner, args: list[str], code: int, words: str, tmp_path: Path
) -> None:
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    out = _fails(runner, code, *args)
    assert words in out


def test_signed_commands_need_keys(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    out = _fails(runner, 2, "account")
    assert "BINANCE_API_KEY" in out


def test_keys_come_from_a_key_file_and_are_never_echoed(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    keys = tmp_path / "keys.env"
    keys.write_text("BINANCE_API_KEY=k-123456\nBINANCE_API_SECRET='s-very-secret'\n")
    with respx.mock() as mock:
        mock.get("https://api.binance.com/api/v3/time").respond(json={"serverTime": 1})
        route = mock.get("https://api.binance.com/api/v3/account").respond(
            400, json={"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        )
        result = runner.invoke(cli, ["--key-file", str(keys), "account"])
    assert result.exit_code == 1
    assert route.calls.last.request.headers["X-MBX-APIKEY"] == "k-123456"
    assert "s-very-secret" not in result.output
    assert "k-123456" not in result.output
    assert "check BINANCE_API_KEY" in result.output


def test_sim_command_serves_over_a_socket() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiocea_trio", "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.rsplit(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert "BINANCE_API_KEY=" in proc.stdout.readline()
        response = httpx.get(f"{url}/api/v3/ping", timeout=10)
        assert response.json() == {}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
