"""The command line through click's runner (sync tests: each command runs its own trio.run)."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
from pathlib import Path

import click
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
    assert table.column("open_time")[0].as_py() == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert str(table.schema.field("open").type) == "double"  # typed by default


def test_sim_klines_to_parquet_with_string_columns(runner: CliRunner, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    target = tmp_path / "eth.parquet"
    out = _ok(runner, "klines", "ETHUSDT", "1h", "--start", "2024-03-01", "--end", "2024-03-02",
              "-o", str(target), "--string-columns")
    assert "24 rows written" in out
    table = pq.read_table(target)
    assert table.column("open_time")[0].as_py() == 1709251200000
    assert str(table.schema.field("open").type) == "string"
    assert "." in table.column("open")[0].as_py()  # Binance's exact text


def test_string_columns_is_for_parquet_only(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "eth.csv"
    result = runner.invoke(cli, ["--sim", "klines", "ETHUSDT", "1h", "--start", "2024-03-01",
                                 "-o", str(target), "--string-columns"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: Invalid value for --string-columns: ")
    assert not target.exists()


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
        (["--sim", "klines", "BTCUSDT", "1m", "--start", "next tuesday", "-o", "x.csv"], 2,
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


# -- how a command ends (issue 12: classes 8, 10 and 13, CLI side) -------------------------


def _ended_by(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> tuple[int, str]:
    """Run ``--sim ping`` with its trio program raising ``error``."""
    import aiocea_trio.cli._app as app

    def run(program: object) -> None:
        raise error

    monkeypatch.setattr(app.trio, "run", run)
    result = runner.invoke(cli, ["--sim", "ping"])
    assert not isinstance(result.exception, BaseException) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


def _groups_around(error: BaseException) -> list[BaseException]:
    import trio

    return [
        error,
        BaseExceptionGroup("one", [error]),
        BaseExceptionGroup("nested", [BaseExceptionGroup("inner", [error])]),
        BaseExceptionGroup("with others", [ValueError("x"), trio.Cancelled._create(), error]),
    ]


@pytest.mark.parametrize("shape", range(4))
def test_ctrl_c_anywhere_in_a_group_is_one_line_and_130(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, shape: int
) -> None:
    code, output = _ended_by(runner, monkeypatch, _groups_around(KeyboardInterrupt())[shape])
    assert code == 130
    assert output == "interrupted\n"


@pytest.mark.parametrize("shape", range(3))
def test_a_closed_stdout_is_a_quiet_141(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, shape: int
) -> None:
    code, output = _ended_by(runner, monkeypatch, _groups_around(BrokenPipeError())[shape])
    assert (code, output) == (141, "")


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (ValueError("start (2) is after end (1): nothing to download"), 2,
         "error: start (2) is after end (1): nothing to download\n"),
        (ExceptionGroup("one", [ValueError("symbol must be ...")]), 2,
         "error: symbol must be ...\n"),
        (OSError(28, "No space left on device"), 1,
         "error: [Errno 28] No space left on device\n"),
        (BaseExceptionGroup("exit", [SystemExit(3)]), 3, ""),
    ],
)
def test_failures_and_refusals_are_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, error: BaseException, code: int,
    line: str,
) -> None:
    assert _ended_by(runner, monkeypatch, error) == (code, line)


def test_ctrl_c_at_the_order_prompt_is_130(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def confirm(*args: object, **kwargs: object) -> bool:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise click.Abort() from exc

    monkeypatch.setattr(click, "confirm", confirm)
    result = runner.invoke(cli, ["--sim", "order", "BUY", "BTCUSDT", "0.001"])
    assert result.exit_code == 130
    assert result.output.endswith("interrupted\n")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--start", "2024-01-08", "--end", "2024-01-01"], "--start"),
        (["--start", "2024-01-01", "--end", "2024-01-01"], "--start"),
        (["--start", "1709251200000000"], "--start"),
        (["--start", "2024-01-01", "--end", "1709251200"], "--end"),
    ],
)
def test_klines_bad_ranges_exit_2_naming_the_option(
    runner: CliRunner, tmp_path: Path, args: list[str], option: str
) -> None:
    target = tmp_path / "x.csv"
    result = runner.invoke(cli, ["--sim", "klines", "BTCUSDT", "1h", *args, "-o", str(target)])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: Invalid value for {option}:")
    assert "rows written" not in result.output
    assert not target.exists()


def test_klines_range_refused_by_the_library_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    # No --end: "now" is only known once the client runs, so the library refuses it.
    result = runner.invoke(
        cli, ["--sim", "klines", "BTCUSDT", "1h", "--start", "2099-01-01", "-o",
              str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: start (")
    assert len(result.output.splitlines()) == 1


@pytest.mark.parametrize("command", [["klines", "{}", "1h", "--start", "2024-01-01", "-o", "x.csv"],
                                     ["ticker", "BTCUSDT", "{}"], ["depth", "{}"],
                                     ["watch", "{}", "--rounds", "1"]])
@pytest.mark.parametrize("symbol", ["BTC/USDT", "../../x/escaped", "BTC USDT"])
def test_bad_symbols_are_refused_before_any_request(
    runner: CliRunner, tmp_path: Path, command: list[str], symbol: str
) -> None:
    args = [symbol if a == "{}" else str(tmp_path / a) if a == "x.csv" else a for a in command]
    with respx.mock() as mock:  # nothing may be sent (the simulator is in-process anyway)
        result = runner.invoke(cli, ["--sim", *args])
    assert not mock.calls
    assert result.exit_code == 2, result.output
    assert len(result.output.splitlines()) == 1
    assert "Invalid value for SYMBOL" in result.output
    assert not list(tmp_path.iterdir())


def test_a_file_of_another_symbol_is_refused_with_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "btc.csv")
    _ok(runner, "klines", "BTCUSDT", "1h", "--start", "2024-01-01", "--end", "2024-01-02",
        "-o", target)
    result = runner.invoke(cli, ["--sim", "klines", "ETHUSDT", "1h", "--start", "2024-01-01",
                                 "--end", "2024-01-03", "-o", target])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert "ETHUSDT" in result.output
    assert len(result.output.splitlines()) == 1


def test_usage_errors_are_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--sim", "ticker"])
    assert result.exit_code == 2
    assert result.output.startswith("error: Missing argument 'SYMBOLS...'. (see '")
    assert result.output.endswith(" ticker --help')\n")
    assert result.output.count("\n") == 1


def _flaky_ping(mock: respx.MockRouter) -> None:
    mock.get("https://api.binance.com/api/v3/ping").mock(
        side_effect=[httpx.Response(502, text="busy"), httpx.Response(200, json={})]
    )


def test_retries_show_only_with_verbose(runner: CliRunner) -> None:
    with respx.mock() as mock:
        _flaky_ping(mock)
        quiet = runner.invoke(cli, ["ping"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    with respx.mock() as mock:
        _flaky_ping(mock)
        loud = runner.invoke(cli, ["-v", "ping"])
    assert loud.exit_code == 0, loud.output
    lines = loud.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("info: aiocea_trio.retries: spot GET /api/v3/ping failed")
    assert "retry 1 of" in lines[0]
    assert "stamina" not in loud.output


def test_httpx_request_lines_never_show(
    runner: CliRunner, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)  # as if a user configured logging at DEBUG everywhere
    monkeypatch.setenv("BINANCE_API_KEY", "k-123456")
    monkeypatch.setenv("BINANCE_API_SECRET", "s-very-secret")
    with respx.mock() as mock:
        mock.get("https://api.binance.com/api/v3/time").respond(json={"serverTime": 1})
        mock.get("https://api.binance.com/api/v3/account").respond(json={"balances": []})
        result = runner.invoke(cli, ["-vv", "account"])
    assert result.exit_code == 0, result.output
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert re.search(r"signature=[0-9a-f]", result.output) is None
    assert "s-very-secret" not in result.output
    assert "HTTP Request" not in result.output
    assert "debug: aiocea_trio.client:" in result.stderr
    # and logging is as it was once the command is over
    assert logging.getLogger("aiocea_trio").propagate
    assert logging.getLogger("httpx").level == logging.NOTSET


def test_messages_do_not_wrap_when_piped(runner: CliRunner, tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "and-a-long-file-name-too.csv"
    deep.parent.mkdir()
    out = _ok(runner, "klines", "BTCUSDT", "1h", "--start", "2024-01-01", "--end", "2024-01-02",
              "-o", str(deep))
    assert out.splitlines() == [f"24 rows written to {deep} (0 REST pages, 0 weight)"] or (
        out.count("\n") == 1 and str(deep) in out
    ), out
    result = runner.invoke(cli, ["--sim", "depth", "BTC/USDT" + "X" * 100])
    assert len(result.output.splitlines()) == 1


def test_demo_into_a_pipe_closed_early_exits_quietly() -> None:
    """``aiocea-trio --sim demo | head -2``: no error text, exit 0 or 141."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiocea_trio", "--sim", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        first_two = [proc.stdout.readline(), proc.stdout.readline()]
        proc.stdout.close()  # what head does after its two lines
        err = proc.stderr.read()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert b"1. Fetch the server time" in first_two[0]
    assert code in (0, 141), err
    assert err == b""


def test_demo_through_a_shell_pipe_into_head() -> None:
    script = f"'{sys.executable}' -m aiocea_trio --sim demo | head -2; echo \"rc=${{PIPESTATUS[0]}}\""
    done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30, check=True)
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 3
    assert lines[-1] in ("rc=0", "rc=141")
    assert done.stderr == b""


def test_an_unawaited_coroutine_after_ctrl_c_is_not_reported_without_debug() -> None:
    # Ctrl-C can land between making a coroutine and awaiting it; Python then warns about
    # the dropped coroutine on stderr, before the one "interrupted" line. Real processes
    # in tests/reliability/test_interrupts.py hit it at random; here it is made to happen.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from aiocea_trio.cli._app import cli\n"
        "async def never(): pass\n"
        "@cli.command('drop-a-coroutine')\n"
        "def drop():\n"
        "    never()\n"
        "    raise KeyboardInterrupt\n"
        "cli.main(sys.argv[1:], prog_name='aiocea-trio')\n"
    )
    for extra, warned in (([], False), (["--debug"], True)):
        done = subprocess.run(
            [sys.executable, "-c", code, *extra, "drop-a-coroutine"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 130, done.stderr
        assert done.stderr.strip().splitlines()[-1] == "interrupted"
        assert ("was never awaited" in done.stderr) is warned, done.stderr
