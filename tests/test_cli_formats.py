"""The command line for scripts: --format json|csv, per-command --market, --quiet, narrow
terminals, pipes and shell completion (issue 16). The embedded simulator (--sim) answers."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from aiocea_trio.cli import _app
from aiocea_trio.cli._app import cli
from aiocea_trio.cli._output import Column, fitted_table

EXACT = re.compile(r"-?\d+\.\d{8}")  # how the simulator's spot prices look: 8 decimals, as Binance


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("COLUMNS", raising=False)
    return CliRunner()


def _out(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(cli, ["--sim", *args], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == "", result.stderr
    assert "\x1b" not in result.stdout  # no colour
    return result.stdout


def _no_markup(text: str) -> None:
    assert not re.search(r"\[/?(green|red|bold)", text), text


# -- json ---------------------------------------------------------------------------------------


def test_ticker_json_is_the_exchanges_objects_with_exact_strings(runner: CliRunner) -> None:
    out = _out(runner, "ticker", "BTCUSDT", "ETHUSDT", "--format", "json")
    _no_markup(out)
    rows = json.loads(out)
    assert [row["symbol"] for row in rows] == ["BTCUSDT", "ETHUSDT"]
    for row in rows:
        for key in ("lastPrice", "highPrice", "lowPrice", "volume", "priceChangePercent"):
            assert isinstance(row[key], str), key  # never a float
        assert EXACT.fullmatch(row["lastPrice"])
        assert row["lastPrice"] in out  # the exchange's text, digit for digit
        assert isinstance(row["openTime"], int)


def test_depth_json_is_the_book(runner: CliRunner) -> None:
    book = json.loads(_out(runner, "depth", "BTCUSDT", "--limit", "5", "--format", "json"))
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert all(isinstance(x, str) and EXACT.fullmatch(x) for level in book["bids"] for x in level)
    assert book["bids"][0][0] < book["asks"][0][0] or float(book["bids"][0][0]) < float(
        book["asks"][0][0]
    )


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (["ping"], {"market", "host", "ms"}),
        (["time"], {"market", "serverTime", "utc", "offsetMs"}),
    ],
)
def test_one_line_commands_give_one_object(
    runner: CliRunner, args: list[str], keys: set[str]
) -> None:
    doc = json.loads(_out(runner, *args, "--format", "json"))
    assert set(doc) == keys
    assert doc["market"] == "spot"


def test_account_and_order_json(runner: CliRunner) -> None:
    balances = json.loads(_out(runner, "account", "--format", "json"))
    assert any(b["asset"] == "USDT" and isinstance(b["free"], str) for b in balances)
    placed = json.loads(_out(runner, "order", "BUY", "BTCUSDT", "0.001", "--yes",
                             "--format", "json"))
    assert placed["status"] == "FILLED"
    assert placed["symbol"] == "BTCUSDT"
    assert isinstance(placed["executedQty"], str)


def test_order_prompt_goes_to_stderr(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--sim", "order", "BUY", "BTCUSDT", "0.001", "--format", "json"],
                           input="y\n")
    assert result.exit_code == 0, result.output
    assert "Place " in result.stderr
    assert json.loads(result.stdout)["status"] == "FILLED"


def test_klines_summary_json_and_csv(runner: CliRunner, tmp_path: Path) -> None:
    args = ["klines", "BTCUSDT", "1h", "--start", "2024-01-01", "--end", "2024-01-02"]
    doc = json.loads(_out(runner, *args, "-o", str(tmp_path / "a.csv"), "--format", "json"))
    assert doc["rows"] == 24
    assert doc["output"] == str(tmp_path / "a.csv")
    assert (doc["market"], doc["symbol"], doc["interval"]) == ("spot", "BTCUSDT", "1h")
    rows = list(csv.DictReader(io.StringIO(
        _out(runner, *args, "-o", str(tmp_path / "b.csv"), "--format", "csv"))))
    assert len(rows) == 1
    assert rows[0]["rows"] == "24"


def test_watch_json_lines(runner: CliRunner) -> None:
    out = _out(runner, "watch", "BTCUSDT", "ETHUSDT", "--every", "0s", "--rounds", "3",
               "--format", "json")
    lines = out.splitlines()
    assert len(lines) == 6
    objects = [json.loads(line) for line in lines]  # each line a whole object
    assert [(o["round"], o["symbol"]) for o in objects] == [
        (r, s) for r in (1, 2, 3) for s in ("BTCUSDT", "ETHUSDT")
    ]
    assert all(isinstance(o["lastPrice"], str) for o in objects)


# -- csv ----------------------------------------------------------------------------------------


def test_ticker_csv_has_a_header_and_exact_strings(runner: CliRunner) -> None:
    out = _out(runner, "ticker", "BTCUSDT", "ETHUSDT", "BNBUSDT", "--format", "csv")
    _no_markup(out)
    assert out.endswith("\n")
    assert "\r" not in out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["symbol"] for r in rows] == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert out.splitlines()[0].startswith("symbol,")
    assert all(EXACT.fullmatch(r["lastPrice"]) for r in rows)
    assert all(r["openTime"].isdigit() for r in rows)


def test_depth_csv_rows_per_level(runner: CliRunner) -> None:
    out = _out(runner, "depth", "BTCUSDT", "--limit", "3", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == "side,level,price,quantity"
    assert [(r["side"], r["level"]) for r in rows] == [
        ("bid", "1"), ("bid", "2"), ("bid", "3"), ("ask", "1"), ("ask", "2"), ("ask", "3")
    ]
    assert all(EXACT.fullmatch(r["price"]) and EXACT.fullmatch(r["quantity"]) for r in rows)


def test_account_and_order_csv(runner: CliRunner) -> None:
    rows = list(csv.DictReader(io.StringIO(_out(runner, "account", "--format", "csv"))))
    assert "USDT" in [r["asset"] for r in rows]
    out = _out(runner, "order", "BUY", "BTCUSDT", "0.001", "--yes", "--format", "csv")
    (placed,) = csv.DictReader(io.StringIO(out))
    assert placed["status"] == "FILLED"
    if "fills" in placed:  # nested values are JSON inside their cell
        assert isinstance(json.loads(placed["fills"]), list)


def test_watch_csv_has_one_header_and_a_row_per_ticker_per_round(runner: CliRunner) -> None:
    out = _out(runner, "watch", "BTCUSDT", "ETHUSDT", "--every", "0s", "--rounds", "2",
               "--format", "csv")
    assert out.count("round,symbol,") == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["round"], r["symbol"]) for r in rows] == [
        ("1", "BTCUSDT"), ("1", "ETHUSDT"), ("2", "BTCUSDT"), ("2", "ETHUSDT")
    ]


def test_a_bad_format_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--sim", "ticker", "BTCUSDT", "--format", "xml"])
    assert result.exit_code == 2
    assert "--format" in result.output
    assert result.output.count("\n") == 1


# -- per-command --market -----------------------------------------------------------------------


def test_market_after_the_command(runner: CliRunner) -> None:
    assert "BTCUSD_PERP" in _out(runner, "ticker", "BTCUSD_PERP", "--market", "coinm")
    doc = json.loads(_out(runner, "time", "--market", "usdm", "--format", "json"))
    assert doc["market"] == "usdm"


def test_the_commands_market_wins(runner: CliRunner) -> None:
    doc = json.loads(_out(runner, "--market", "usdm", "ping", "--market", "coinm",
                          "--format", "json"))
    assert doc["market"] == "coinm"
    doc = json.loads(_out(runner, "--market", "usdm", "ping", "--format", "json"))
    assert doc["market"] == "usdm"  # the global one still works alone


@pytest.mark.parametrize("command", [["ping"], ["time"], ["ticker", "BTCUSDT"],
                                     ["depth", "BTCUSDT"], ["account"],
                                     ["watch", "BTCUSDT", "--rounds", "1"],
                                     ["order", "BUY", "BTCUSDT", "1", "--yes"],
                                     ["klines", "BTCUSDT", "1h", "--start", "today", "-o", "x"]])
def test_every_market_command_validates_its_market(
    runner: CliRunner, command: list[str]
) -> None:
    result = runner.invoke(cli, ["--sim", *command, "--market", "nasdaq"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: Invalid value for '--market': 'nasdaq' is not one of")
    assert result.output.count("\n") == 1


# -- narrow terminals and pipes -----------------------------------------------------------------


ROW = ["BTCUSDT", "64496.27000000", "+0.59", "65086.39000000", "64098.75000000",
       "1592449172.63412583"]
COLUMNS = [Column("symbol", numeric=False), Column("last"), Column("change %"),
           Column("high", optional=True), Column("low", optional=True),
           Column("volume", optional=True)]


def _render(width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(fitted_table(console, "tickers", COLUMNS, [ROW]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("width", [80, 60, 45])
def test_narrow_tables_leave_columns_out_rather_than_cut_prices(width: int) -> None:
    text = _render(width)
    assert all(len(line) <= width for line in text.splitlines())
    assert "…" not in text
    assert ROW[1] in text  # the last price, whole, on one line
    assert "left out to fit" in text


def test_wide_tables_keep_every_column() -> None:
    text = _render(200)
    assert all(value in text for value in ROW)
    assert "left out" not in text


def test_very_narrow_tables_fold_prices_instead_of_cutting_them() -> None:
    text = _render(24)
    assert "…" not in text
    digits = "".join(re.findall(r"[\d.]", "".join(
        line.split("│")[2] for line in text.splitlines() if line.count("│") >= 3)))
    assert ROW[1] in digits  # every digit is there, over two or more lines


def test_ticker_at_80_columns_keeps_full_prices(runner: CliRunner) -> None:
    out = _out(runner, "ticker", "BTCUSDT", "ETHUSDT", "BNBUSDT", env={"COLUMNS": "80"})
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "…" not in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert EXACT.fullmatch(cells[1]), cells  # last, whole
    for depth_line in _out(runner, "depth", "BTCUSDT", env={"COLUMNS": "80"}).splitlines():
        assert len(depth_line) <= 80
        assert "…" not in depth_line


def test_into_a_pipe_tables_are_never_cut(runner: CliRunner) -> None:
    out = _out(runner, "--market", "usdm", "ticker", "BTCUSDT", "ETHUSDT")  # COLUMNS unset
    assert "volume" in out
    assert "left out" not in out
    assert "…" not in out
    long = "BTCUSDT" + "X" * 120  # an error message is one line whatever its length
    result = runner.invoke(cli, ["--sim", "depth", long + "/"])
    assert result.output.count("\n") == 1


def _through_head(command: str, lines: int = 3) -> tuple[list[str], str, str]:
    script = (f"'{sys.executable}' -m aiocea_trio --sim {command} | head -n {lines}; "
              'echo "rc=${PIPESTATUS[0]}" >&2')
    done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60, check=True)
    err = done.stderr.decode()
    rc = err.splitlines()[-1]
    return done.stdout.decode().splitlines(), rc, "\n".join(err.splitlines()[:-1])


@pytest.mark.parametrize(
    "command",
    [
        "watch BTCUSDT ETHUSDT --every 0s --format json",  # endless: only head ends it
        "watch BTCUSDT --every 0s --format csv",
        "watch BTCUSDT --every 0s",
        "ticker BTCUSDT ETHUSDT BNBUSDT SOLUSDT --format csv",
    ],
)
def test_piping_into_head_ends_quietly(command: str) -> None:
    lines, rc, err = _through_head(command)
    assert len(lines) == 3
    assert rc in ("rc=0", "rc=141")
    assert err == ""  # no BrokenPipeError, no traceback
    if "json" in command:
        assert [json.loads(line)["round"] for line in lines] == [1, 1, 2]


# -- --quiet ------------------------------------------------------------------------------------


def _warning_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every command's trio program logs a warning first (as a rate-limit pause would)."""
    real = _app.run_trio

    def run(settings: _app.Settings, fn: Callable[[], Awaitable[Any]]) -> Any:
        logging.getLogger("aiocea_trio.limits").warning("pausing 3 s: the weight is near 1200")
        return real(settings, fn)

    monkeypatch.setattr(_app, "run_trio", run)


def test_quiet_leaves_only_the_data(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _warning_first(monkeypatch)
    loud = runner.invoke(cli, ["--sim", "ticker", "BTCUSDT", "--format", "json"])
    assert loud.exit_code == 0
    assert "warning: aiocea_trio.limits: pausing" in loud.stderr
    quiet = runner.invoke(cli, ["--sim", "--quiet", "ticker", "BTCUSDT", "--format", "json"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)[0]["symbol"] == "BTCUSDT"


def test_quiet_hides_the_progress_bar(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shown: list[object] = []

    async def show_progress(progress: object, scope: object) -> None:
        shown.append(progress)

    monkeypatch.setattr(_app, "_show_progress", show_progress)
    monkeypatch.setattr(_app.err_console, "_force_terminal", True)  # as if stderr were a tty
    args = ["klines", "BTCUSDT", "1h", "--start", "2024-01-01", "--end", "2024-01-02"]
    _out(runner, *args, "-o", str(tmp_path / "a.csv"))
    assert len(shown) == 1
    result = runner.invoke(cli, ["--sim", "-q", *args, "-o", str(tmp_path / "b.csv")])
    assert result.exit_code == 0, result.output
    assert len(shown) == 1  # no bar this time
    assert result.stderr == ""
    assert "24 rows written" in result.stdout


def test_quiet_and_verbose_contradict(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--sim", "-q", "-v", "ping"])
    assert result.exit_code == 2
    assert "--quiet and --verbose" in result.output


# -- shell completion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "words"),
    [
        ("bash", "complete -o nosort -F _aiocea_trio_completion aiocea-trio"),
        ("zsh", "#compdef aiocea-trio"),
        ("fish", "complete --no-files --command aiocea-trio"),
    ],
)
def test_completion_source_for_each_shell(runner: CliRunner, shell: str, words: str) -> None:
    result = runner.invoke(cli, [], prog_name="aiocea-trio",
                           env={"_AIOCEA_TRIO_COMPLETE": f"{shell}_source"})
    assert result.exit_code == 0, result.output
    assert words in result.output
    assert "_AIOCEA_TRIO_COMPLETE" in result.output


def test_completion_source_from_the_installed_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aiocea_trio"],
        env={**_env(), "_AIOCEA_TRIO_COMPLETE": "bash_source"},
        capture_output=True, timeout=30, check=True,
    )
    assert b"_aiocea_trio_completion()" in done.stdout
    assert done.stderr == b""


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("aiocea-trio ti", {"ticker", "time"}),
        ("aiocea-trio ticker --format ", {"table", "json", "csv"}),
        ("aiocea-trio depth --market ", {"spot", "usdm", "coinm"}),
    ],
)
def test_completion_completes(runner: CliRunner, line: str, expected: set[str]) -> None:
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    result = runner.invoke(cli, [], prog_name="aiocea-trio", env={
        "_AIOCEA_TRIO_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(cword),
    })
    assert result.exit_code == 0, result.output
    assert {item.split(",", 1)[1] for item in result.output.splitlines()} == expected


# -- streams ------------------------------------------------------------------------------------


def test_stream_json_lines_are_binances_messages(runner: CliRunner) -> None:
    out = _out(runner, "stream", "btcusdt@trade", "--count", "3", "--format", "json")
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 3
    assert {e["stream"] for e in events} == {"btcusdt@trade"}
    assert all(e["data"]["e"] == "trade" and EXACT.fullmatch(e["data"]["p"]) for e in events)
    ids = [e["data"]["t"] for e in events]
    assert ids == list(range(ids[0], ids[0] + 3))


def test_stream_csv_and_table(runner: CliRunner) -> None:
    rows = list(csv.DictReader(io.StringIO(
        _out(runner, "stream", "ethusdt@aggTrade", "--count", "2", "--format", "csv")
    )))
    assert [r["stream"] for r in rows] == ["ethusdt@aggTrade"] * 2
    assert json.loads(rows[0]["data"])["e"] == "aggTrade"
    table = _out(runner, "stream", "btcusdt@trade", "--count", "2")
    assert table.count("btcusdt@trade Trade") == 2
    _no_markup(table)


def test_book_json_is_a_local_book_per_refresh(runner: CliRunner) -> None:
    out = _out(runner, "book", "BTCUSDT", "--market", "usdm", "--levels", "3", "--count", "2",
               "--every", "0s", "--format", "json")
    books = [json.loads(line) for line in out.splitlines()]
    assert [b["refresh"] for b in books] == [1, 2]
    for b in books:
        assert b["synced"] is True
        assert len(b["bids"]) == len(b["asks"]) == 3
        assert Decimal(b["bids"][0][0]) < Decimal(b["asks"][0][0])
    assert books[1]["lastUpdateId"] > books[0]["lastUpdateId"]


def test_stream_and_book_refuse_bad_counts(runner: CliRunner) -> None:
    for args in (["stream", "btcusdt@trade", "--count", "0"], ["book", "BTCUSDT", "--levels", "0"]):
        result = runner.invoke(cli, ["--sim", *args])
        assert result.exit_code == 2
        assert "must be at least 1" in result.output


def test_an_endless_stream_piped_into_head_ends_quietly() -> None:
    lines, rc, err = _through_head("stream btcusdt@trade --format json")
    assert len(lines) == 3
    assert rc in ("rc=0", "rc=141")
    assert err == ""
    assert all(json.loads(line)["stream"] == "btcusdt@trade" for line in lines)
