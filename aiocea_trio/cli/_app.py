"""Click commands; each one runs a small trio program and prints with rich.

How a run ends is decided in one place, `_Cli` (the group's ``main`` and ``invoke``):

| what happened | stderr | exit |
| --- | --- | --- |
| success | nothing | 0 |
| a failure (the exchange, the network, the disk) | ``error: ...`` (one line) | 1 |
| bad input (click's checks, the library's ``ValueError``) | ``error: ...`` (one line) | 2 |
| Ctrl-C (a ``KeyboardInterrupt``, bare or anywhere in a group) | ``interrupted`` | 130 |
| stdout closed by its reader (``| head``) | nothing | 141 |
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attrs
import click
import trio
from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Progress_
from rich.rule import Rule
from rich.table import Table

from .._groups import leaves
from ..client import BinanceClient
from ..endpoints import PING, SERVER_TIME
from ..errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceError,
    BinanceRateLimitError,
    BinanceTransportError,
)
from ..limits import RateLimiter
from ..markets import Market
from . import _times
from ._output import FORMATS, Column, CsvStream, fitted_table, print_csv, print_json

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a process stopped by Ctrl-C
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what `yes | head -1` reports for `yes`
PIPE_WIDTH = 10_000
"""Columns of stdout when it is not a terminal (and COLUMNS is unset): wide enough that
rich never wraps or cuts a table or a message in a pipe or a file."""


class _Console(Console):
    """A rich console that reports a closed pipe as `BrokenPipeError`.

    rich's own `on_broken_pipe` raises `SystemExit(1)`; the CLI decides the exit in one
    place instead (see `_pipe_closed`).
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("the reader of this output went away")

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size; into a pipe or a file, `PIPE_WIDTH` columns unless COLUMNS
        says otherwise (rich's default there is 80, which cuts prices and sentences)."""
        dimensions = super().size
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console()
# Messages are never wrapped by rich (`say`, and everything on stderr): a terminal wraps
# long lines itself, and a pipe or a file gets each message on one line (rich would cut
# them at 80 columns there). Tables keep rich's layout.
err_console = _Console(stderr=True, soft_wrap=True, highlight=False)


def say(message: str) -> None:
    """One message on stdout, never wrapped mid-sentence."""
    console.print(message, soft_wrap=True)



_HINTS = {
    -1021: "the clock is off: check this machine's time, or raise --recv-window",
    -1022: "the signature was refused: check BINANCE_API_SECRET",
    -1121: "unknown symbol: symbols are upper case, like BTCUSDT (spot), BTCUSD_PERP (COIN-M)",
    -1120: "unknown interval: use one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M",
    -2014: "the API key is malformed: check BINANCE_API_KEY",
    -2015: "the API key was refused: check BINANCE_API_KEY, its permissions and IP whitelist",
}


@attrs.define
class Settings:
    """What the global options say; every command builds its client from it."""

    sim: bool = False
    base_url: str | None = None
    testnet: bool = False
    market: Market = Market.SPOT
    debug: bool = False
    key_file: Path | None = None
    quiet: bool = False

    def credentials(self) -> tuple[str | None, str | None]:
        """Keys from the environment or a key file; never echoed anywhere."""
        key = os.environ.get("BINANCE_API_KEY")
        secret = os.environ.get("BINANCE_API_SECRET")
        if self.key_file is not None:
            values = _read_key_file(self.key_file)
            key = values.get("BINANCE_API_KEY", key)
            secret = values.get("BINANCE_API_SECRET", secret)
        return key or None, secret or None

    @asynccontextmanager
    async def open_client(
        self, *, signed: bool = False, learn_limits: bool = False
    ) -> AsyncIterator[BinanceClient]:
        """The client the options describe: the embedded simulator, a host, or Binance.

        One-shot commands skip learning the rate limits (a weight-20 exchangeInfo
        call); downloads learn them, since they run near the limit.
        """
        limiter = RateLimiter(learn_limits=learn_limits)
        if self.sim:
            from ..sim import SimExchange

            async with SimExchange().client(limiter=limiter) as client:
                yield client
            return
        key, secret = self.credentials()
        if signed and not (key and secret):
            raise click.UsageError(
                "this command is signed: set BINANCE_API_KEY and BINANCE_API_SECRET "
                "(or --key-file), or use --sim"
            )
        async with BinanceClient(
            key, secret, base_url=self.base_url, testnet=self.testnet, limiter=limiter
        ) as client:
            yield client


def _read_key_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines, like a .env file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise click.UsageError(f"cannot read the key file {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip().strip("'\"")
    return values


def _describe(exc: BaseException) -> str:
    """One readable line: what failed and, where we know it, what to do."""
    if isinstance(exc, BinanceBanError):
        until = exc.banned_until
        when = _fmt_ms(until) if until else f"in {exc.retry_after or '?'} s"
        return f"{exc} — the IP is banned; wait until {when} before sending anything"
    if isinstance(exc, BinanceRateLimitError):
        return f"{exc} — rate limit hit; wait {exc.retry_after or 60} s before retrying"
    if isinstance(exc, BinanceAPIError) and exc.code in _HINTS:
        return f"{exc} — {_HINTS[exc.code]}"
    if isinstance(exc, BinanceTransportError):
        return f"{exc} — check the network, or --base-url / --sim"
    return str(exc) or type(exc).__name__


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, bare or anywhere in a group (or click's `Abort` for it, at a prompt)."""
    if isinstance(exc, click.Abort):
        return isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
    return any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves(exc))


def _is_pipe_closed(exc: BaseException) -> bool:
    return any(isinstance(leaf, BrokenPipeError) for leaf in leaves(exc))


def _exit_of(exc: BaseException) -> SystemExit | None:
    """A `SystemExit` anywhere in a group (some code asked to exit)."""
    return next((leaf for leaf in leaves(exc) if isinstance(leaf, SystemExit)), None)


def _errors(exc: BaseException) -> list[BaseException]:
    """What really failed: the leaves of a group, without trio's cancellations."""
    found = [leaf for leaf in leaves(exc) if not isinstance(leaf, trio.Cancelled)]
    return found or [exc]


def run_trio(settings: Settings, fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's trio program.

    Whatever it raises goes on to `_Cli`, which ends every command the same way (see
    `_end`); ``settings`` is for the program (``fn`` usually opens its client).
    """

    async def program() -> T:
        return await fn()

    return trio.run(program)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """``error: message`` on stderr (one line), then exit ``code``."""
    _tell(f"[bold red]error:[/] {message}")
    raise SystemExit(code)


def _tell(message: str) -> None:
    """A line on stderr; nothing if stderr itself is gone."""
    with suppress(OSError):
        err_console.print(message, soft_wrap=True, highlight=False)


def _interrupted() -> NoReturn:
    _tell("interrupted")
    raise SystemExit(EXIT_INTERRUPTED)


def _pipe_closed() -> NoReturn:
    """Whoever read stdout went away (``| head``): exit quietly.

    As Python's documentation on SIGPIPE recommends, stdout is pointed at devnull so
    that flushing it at exit does not fail again with a second error message.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (click's test runner)
        pass
    raise SystemExit(EXIT_PIPE_CLOSED)


def _end(exc: BaseException, *, debug: bool = False) -> None:
    """Decide how a command that raised ``exc`` ends; returns only to let it propagate.

    Ctrl-C: exit 130. A closed stdout: exit 141. The exchange, the network or the disk
    failing (`BinanceError`, `OSError`): one line, exit 1. The library refusing an input
    (a `ValueError`: a reversed range, a bad symbol, a file of another symbol): one line,
    exit 2. Groups count by their leaves. Anything else is a bug and keeps its traceback,
    as everything does with ``--debug``.
    """
    if isinstance(exc, click.exceptions.Exit | click.ClickException):
        return
    if _is_interrupt(exc):
        _interrupted()
    if _is_pipe_closed(exc):
        _pipe_closed()
    if isinstance(exc, SystemExit):
        return
    exit_ = _exit_of(exc)
    if exit_ is not None:
        raise SystemExit(exit_.code) from None
    errors = _errors(exc)
    for error in errors:
        if isinstance(error, click.ClickException):
            raise error from None
    if debug or not all(isinstance(e, BinanceError | ValueError | OSError) for e in errors):
        return
    usage = all(isinstance(error, ValueError) for error in errors)
    fail("; ".join(_describe(error) for error in errors), EXIT_USAGE if usage else EXIT_FAILURE)


def _usage_line(exc: click.ClickException) -> str:
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


class _Cli(click.Group):
    """The ``aiocea-trio`` group: every command ends in one of the ways of this module's table.

    Errors of click's own (usage, bad values) are one ``error:`` line like any other,
    instead of click's usage block; Ctrl-C anywhere (a prompt, a trio program, printing
    the result) is ``interrupted`` and exit 130; a closed stdout is a quiet exit 141.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as exc:
            _end(exc, debug=isinstance(ctx.obj, Settings) and ctx.obj.debug)
            raise

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(args) if args is not None else sys.argv[1:]
        if "--debug" not in argv:
            # Ctrl-C lands between two bytecodes: one that made a coroutine and the
            # ``await`` of it. The coroutine is then dropped unawaited and Python says so
            # on stderr, before the one ``interrupted`` line; harmless after an interrupt.
            warnings.filterwarnings(
                "ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning
            )
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            fail(_usage_line(exc), exc.exit_code)
        except click.Abort as exc:
            if _is_interrupt(exc):
                _interrupted()
            fail("aborted")
        except BaseException as exc:  # failures were reported by `invoke`; --debug keeps them
            if _is_interrupt(exc):
                _interrupted()
            if _is_pipe_closed(exc):
                _pipe_closed()
            raise
        raise SystemExit(result if isinstance(result, int) else 0)


_QUIET_LOGGERS = ("httpx", "httpcore", "stamina")
"""Never below WARNING here: httpx logs each request line (a signed URL) at INFO."""


class _LogLines(logging.Handler):
    """Log records as one stderr line each, through rich (so live displays stay intact)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def _configure_logging(verbose: int, *, quiet: bool = False) -> Callable[[], None]:
    """Show the library's records on stderr: WARNING, INFO with -v, DEBUG with -vv;
    only ERROR with ``quiet``.

    Returns the function that puts logging back as it was (the CLI runs inside other
    programs too: tests, click's runner).
    """
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    if quiet:
        level = logging.ERROR
    ours = logging.getLogger("aiocea_trio")
    muted = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    saved = (ours.level, ours.propagate, [(log, log.level) for log in muted])
    handler = _LogLines()
    ours.addHandler(handler)
    ours.setLevel(level)
    ours.propagate = False
    for log in muted:
        log.setLevel(max(log.getEffectiveLevel(), logging.WARNING))

    def restore() -> None:
        ours.removeHandler(handler)
        ours.setLevel(saved[0])
        ours.propagate = saved[1]
        for log, old in saved[2]:
            log.setLevel(old)

    return restore


def _fmt_ms(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


pass_settings = click.make_pass_decorator(Settings)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sim", is_flag=True, help="Run against an embedded, in-process simulator.")
@click.option("--base-url", metavar="URL", help="Send every market to this host.")
@click.option("--testnet", is_flag=True, help="Use Binance's testnet hosts.")
@click.option(
    "--market",
    type=click.Choice([m.value for m in Market]),
    default="spot",
    show_default=True,
    help="Which market commands address.",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file of BINANCE_API_KEY=... and BINANCE_API_SECRET=... lines.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show the library's log on stderr: -v retries and notes (INFO), -vv DEBUG.",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Only the data (and errors): no progress bars or warnings on stderr.",
)
@click.version_option(package_name="aiocea-trio")
@click.pass_context
def cli(
    ctx: click.Context,
    sim: bool,
    base_url: str | None,
    testnet: bool,
    market: str,
    key_file: Path | None,
    debug: bool,
    verbose: int,
    quiet: bool,
) -> None:
    """Drive Binance's REST APIs (spot, USDⓈ-M, COIN-M) from the terminal.

    Keys come from BINANCE_API_KEY / BINANCE_API_SECRET (or --key-file) and are
    never printed. With --sim nothing leaves this machine.
    """
    if sim and (base_url or testnet):
        raise click.UsageError("--sim runs the embedded simulator: drop --base-url/--testnet")
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other: choose one")
    ctx.call_on_close(_configure_logging(verbose, quiet=quiet))
    ctx.obj = Settings(
        sim=sim,
        base_url=base_url,
        testnet=testnet,
        market=Market(market),
        debug=debug,
        key_file=key_file,
        quiet=quiet,
    )


_MARKETS = [m.value for m in Market]
_C = TypeVar("_C", bound=Callable[..., Any])


def _command_market(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """A command's own ``--market`` wins over the global one."""
    settings = ctx.find_object(Settings)
    if value is not None and settings is not None:
        settings.market = Market(value)


def market_option(fn: _C) -> _C:
    """``--market`` on a command, as well as before it (the command's wins)."""
    return click.option(
        "--market",
        type=click.Choice(_MARKETS),
        default=None,
        expose_value=False,
        callback=_command_market,
        help="Which market this command addresses (overrides the global --market).",
    )(fn)


def format_option(fn: _C) -> _C:
    """``--format table|json|csv``, passed to the command as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json or csv (exact strings, no colour) for scripts.",
    )(fn)


def _record(fmt: str, record: dict[str, Any]) -> bool:
    """Print one record as ``fmt`` (json, csv); False for ``table`` (the caller's text)."""
    if fmt == "json":
        print_json(record)
    elif fmt == "csv":
        print_csv([record])
    return fmt != "table"


@cli.command()
@market_option
@format_option
@pass_settings
def ping(settings: Settings, fmt: str) -> None:
    """Check that the market answers, and how fast."""

    async def go() -> tuple[str, float]:
        async with settings.open_client() as client:
            start = trio.current_time()
            await client.call(PING[settings.market])
            return client.base_url_for(settings.market), trio.current_time() - start

    host, seconds = run_trio(settings, go)
    shown = "embedded simulator" if settings.sim else host
    record = {"market": settings.market.value, "host": shown, "ms": round(seconds * 1000, 3)}
    if _record(fmt, record):
        return
    say(f"pong from {settings.market.label} ({shown}) in {seconds * 1000:.1f} ms")


@cli.command(name="time")
@market_option
@format_option
@pass_settings
def server_time(settings: Settings, fmt: str) -> None:
    """Show the server's time and this machine's offset from it."""

    async def go() -> tuple[int, int]:
        async with settings.open_client() as client:
            data: dict[str, Any] = await client.call(SERVER_TIME[settings.market])
            offset = await client.sync_time(settings.market)
            return int(data["serverTime"]), offset

    server, offset = run_trio(settings, go)
    record = {
        "market": settings.market.value,
        "serverTime": server,
        "utc": _fmt_ms(server),
        "offsetMs": offset,
    }
    if _record(fmt, record):
        return
    say(f"{settings.market.label} server time: {_fmt_ms(server)} ({server})")
    say(f"this machine is {abs(offset)} ms {'behind' if offset >= 0 else 'ahead'}")


_FAMILIES = {Market.SPOT: "Spot", Market.USDM: "UsdM", Market.COINM: "CoinM"}


def _task_class(market: Market, name: str) -> Any:
    """The catalog task ``<Family><name>`` for a market (e.g. ``UsdMFetchTicker24h``)."""
    from .. import tasks

    return getattr(tasks, f"{_FAMILIES[market]}{name}")


def _symbols(values: Sequence[str], hint: str = "SYMBOLS") -> list[str]:
    """Upper-cased symbols, each checked against Binance's alphabet before any request."""
    out = [_symbol(v, hint) for v in values if v.strip()]
    if not out:
        raise click.UsageError("give at least one symbol, e.g. BTCUSDT")
    return out


def _symbol(value: str, hint: str = "SYMBOL") -> str:
    from ..symbols import symbol_problem

    name = value.strip().upper()
    problem = symbol_problem(name)
    if problem is not None:
        raise click.BadParameter(f"{value!r}: {problem}", param_hint=hint)
    return name


_TICKER_COLUMNS = (
    Column("symbol", numeric=False),
    Column("last"),
    Column("change %"),
    Column("high", optional=True),
    Column("low", optional=True),
    Column("volume", optional=True),
)


def _ticker_table(market: Market, rows: Sequence[dict[str, Any]]) -> Table:
    """Tickers as a table that fits the terminal (volume, then low and high, go first)."""
    cells = []
    for row in rows:
        change = float(row.get("priceChangePercent", 0) or 0)
        colour = "green" if change >= 0 else "red"
        cells.append([
            str(row["symbol"]),
            str(row["lastPrice"]),
            f"[{colour}]{change:+.2f}[/]",
            str(row["highPrice"]),
            str(row["lowPrice"]),
            str(row["volume"]),
        ])
    return fitted_table(console, f"{market.label} 24h tickers", _TICKER_COLUMNS, cells)


def _one(result: Any) -> dict[str, Any]:
    """COIN-M answers ticker requests with a list even for one symbol."""
    if isinstance(result, list):
        if not result:
            raise ValueError("the exchange returned no ticker")
        return dict(result[0])
    return dict(result)


@cli.command()
@click.argument("symbols", nargs=-1, required=True)
@market_option
@format_option
@pass_settings
def ticker(settings: Settings, symbols: tuple[str, ...], fmt: str) -> None:
    """24-hour ticker of one or more SYMBOLS, fetched at once."""
    from ..pipeline import GatherTask

    names = _symbols(symbols)
    cls = _task_class(settings.market, "FetchTicker24h")
    gather = GatherTask(*(cls(symbol=s) for s in names))

    async def go() -> list[Any]:
        async with settings.open_client() as client:
            await gather.execute(client, raise_errors=True)
            return list(gather.result)

    rows = [_one(r) for r in run_trio(settings, go)]
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        print_csv(rows)
    else:
        console.print(_ticker_table(settings.market, rows))


@cli.command()
@click.argument("symbol")
@click.option("--limit", default=10, show_default=True, help="Price levels per side.")
@market_option
@format_option
@pass_settings
def depth(settings: Settings, symbol: str, limit: int, fmt: str) -> None:
    """The order book of SYMBOL: best bids and asks."""
    symbol = _symbol(symbol)
    cls = _task_class(settings.market, "FetchOrderBook")
    task = cls(symbol=symbol, limit=limit)

    async def go() -> dict[str, Any]:
        async with settings.open_client() as client:
            await task.execute(client, raise_errors=True)
            return dict(task.result)

    book = run_trio(settings, go)
    bids, asks = book.get("bids", []), book.get("asks", [])
    if fmt == "json":
        print_json(book)
        return
    if fmt == "csv":
        print_csv(
            [{"side": side, "level": i, "price": level[0], "quantity": level[1]}
             for side, levels in (("bid", bids), ("ask", asks))
             for i, level in enumerate(levels, 1)],
            header=("side", "level", "price", "quantity"),
        )
        return
    cells = []
    for i in range(max(len(bids), len(asks))):
        bid = bids[i] if i < len(bids) else ["", ""]
        ask = asks[i] if i < len(asks) else ["", ""]
        cells.append([bid[1], f"[green]{bid[0]}[/]", f"[red]{ask[0]}[/]", ask[1]])
    columns = [Column("bid qty"), Column("bid"), Column("ask"), Column("ask qty")]
    title = f"{settings.market.label} {symbol} order book"
    console.print(fitted_table(console, title, columns, cells))


@cli.command()
@click.argument("symbol")
@click.argument("interval")
@click.option(
    "--start",
    required=True,
    metavar="TIME",
    help="Inclusive: epoch ms, ISO date/time, now, today, yesterday, '30 days ago' (UTC).",
)
@click.option(
    "--end", default=None, metavar="TIME", help="Exclusive, same forms as --start [now]."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="CSV file (appended to and resumed), or .parquet when pyarrow is installed.",
)
@click.option("--concurrency", default=8, show_default=True, help="Pages in flight.")
@click.option(
    "--source",
    type=click.Choice(["auto", "rest", "archive"]),
    default="auto",
    show_default=True,
    help="auto: Binance's zip archives for past months and days, REST for the rest.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep verified archives here; a second run downloads nothing.",
)
@click.option(
    "--string-columns",
    is_flag=True,
    help="the pre-0.2 all-string Parquet layout (only for a .parquet output).",
)
@market_option
@format_option
@pass_settings
# Over 60 lines: click passes every option as an argument; the body itself is short.
def klines(
    settings: Settings,
    symbol: str,
    interval: str,
    start: str,
    end: str | None,
    output: Path,
    concurrency: int,
    source: str,
    cache_dir: Path | None,
    string_columns: bool,
    fmt: str,
) -> None:
    """Download SYMBOL's INTERVAL klines from --start to --end into a file."""
    from ..history import Progress, download_klines_to_file, interval_ms

    symbol = _symbol(symbol)
    try:
        interval_ms(interval)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="INTERVAL") from None
    now = _times.utc_now()  # read once: "--start '1 day ago' --end now" is one day exactly
    lo = _time_option(start, "--start", now)
    hi = _time_option(end, "--end", now) if end is not None else None
    if hi is not None and lo >= hi:
        raise click.BadParameter(
            f"{_fmt_ms(lo)} is not before --end ({_fmt_ms(hi)}): the range [start, end) "
            "would hold nothing",
            param_hint="--start",
        )
    parquet = output.suffix.lower() == ".parquet"
    if string_columns and not parquet:
        raise click.BadParameter(
            f"{output} is a CSV file, always Binance's text; --string-columns is for .parquet",
            param_hint="--string-columns",
        )
    if parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise click.BadParameter(
                "writing Parquet needs pyarrow (pip install pyarrow); or use a .csv file",
                param_hint="--output",
            ) from None
    progress = Progress()

    async def go() -> int:
        async with settings.open_client(learn_limits=True) as client:
            stop = hi if hi is not None else client.server_time_ms()
            async with trio.open_nursery() as nursery:
                # A bar in a log file is noise (and a stray line); --quiet asks for none.
                if err_console.is_terminal and not settings.quiet:
                    nursery.start_soon(_show_progress, progress, nursery.cancel_scope)
                if parquet:
                    from ..parquet import download_klines_to_parquet

                    written = await download_klines_to_parquet(
                        client, output, symbol, interval, lo, stop,
                        market=settings.market, max_concurrency=concurrency, progress=progress,
                        source=source, cache_dir=cache_dir, string_columns=string_columns,
                    )
                else:
                    written = await download_klines_to_file(
                        client, output, symbol, interval, lo, stop,
                        market=settings.market, max_concurrency=concurrency, progress=progress,
                        source=source, cache_dir=cache_dir,
                    )
                nursery.cancel_scope.cancel()
            return written

    written = run_trio(settings, go)
    record = {
        "market": settings.market.value,
        "symbol": symbol,
        "interval": interval,
        "output": str(output),
        "rows": written,
        "archiveFiles": progress.archives_done,
        "restPages": progress.pages_done,
        "weight": progress.weight,
    }
    if _record(fmt, record):
        return
    archived = f"{progress.archives_done} archive files and " if progress.archives_total else ""
    say(
        f"{written} rows written to {output} "
        f"({archived}{progress.pages_done} REST pages, {progress.weight} weight)"
    )


def _time_option(value: str, option: str, now: dt.datetime) -> int:
    """Epoch ms from ``value`` (`_times`' grammar, relative to ``now``), within the
    library's sane range; a click error naming ``option`` otherwise."""
    from ..history import _time_arg

    try:
        return _time_arg(option.lstrip("-"), _times.parse_time(value, now=now))
    except (ValueError, TypeError) as exc:
        message = str(exc).removeprefix(f"{option.lstrip('-')}: ")
        raise click.BadParameter(message, param_hint=option) from None


async def _show_progress(progress: Any, scope: trio.CancelScope) -> None:
    """A rich progress bar per source (archives, REST pages), redrawn from ``Progress``."""
    with Progress_(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        archives = bar.add_task("archives", total=None, detail="", visible=False)
        rest = bar.add_task("REST", total=None, detail="")
        while True:
            bar.update(
                archives,
                total=progress.archives_total or None,
                completed=progress.archives_done,
                detail=f"{progress.archive_rows} rows, no weight",
                visible=progress.archives_total > 0,
            )
            bar.update(
                rest,
                total=progress.pages_total or None,
                completed=progress.pages_done,
                detail=f"{progress.rows} rows in all, {progress.weight} weight",
            )
            await trio.sleep(0.1)


@cli.command()
@click.argument("symbols", nargs=-1, required=True)
@click.option("--every", default="1s", show_default=True, help="Refresh period, e.g. 500ms, 2s.")
@click.option("--rounds", type=int, default=None, help="Stop after this many refreshes.")
@market_option
@format_option
@pass_settings
def watch(
    settings: Settings, symbols: tuple[str, ...], every: str, rounds: int | None, fmt: str
) -> None:
    """A live table of SYMBOLS' tickers: a TaskRing of GatherTasks, one per period.

    With --format json, one JSON object per ticker per round (JSON lines); with csv, a
    header and then a row per ticker per round. Each round is flushed as it comes.
    """
    from rich.live import Live

    from ..pipeline import GatherTask, Operator, TaskRing

    names = _symbols(symbols)
    period = _parse_period(every)
    cls = _task_class(settings.market, "FetchTicker24h")
    ring = TaskRing(iter_num=rounds, iter_interval=period)
    ring += GatherTask(*(cls(symbol=s) for s in names))

    # On a terminal the table is redrawn in place; into a pipe or a file, where nothing can
    # be redrawn, each round's table is printed after the last.
    # Machine formats are streams: never a live display, whatever stdout is.
    redraw = console.is_terminal and fmt == "table"
    live = Live(console=console, auto_refresh=False) if redraw else None
    stream = CsvStream()  # --format csv: the header once, then rows as rounds come

    def show(number: int, tickers: list[dict[str, Any]]) -> None:
        if fmt == "json":
            for row in tickers:
                print_json({"round": number, **row}, line=True)
        elif fmt == "csv":
            stream.write([{"round": number, **row} for row in tickers])
        elif live is not None:
            live.update(_ticker_table(settings.market, tickers), refresh=True)
        else:
            console.print(_ticker_table(settings.market, tickers))

    async def go() -> int:
        shown = 0
        async with settings.open_client() as client:
            with live if live is not None else nullcontext():
                async with Operator(client).add_queue(ring).completed() as finished:
                    async for task in finished:
                        if task.error is not None:
                            raise task.error
                        shown += 1
                        show(shown, [_one(r) for r in task.result])
        return shown

    run_trio(settings, go)


def _event_row(event: Any) -> dict[str, Any]:
    """A typed stream event as a flat record: its kind, then its fields (levels as counts)."""
    row: dict[str, Any] = {"kind": type(event).__name__}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if isinstance(value, tuple):  # depth levels: too many for one line
            value = f"{len(value)} levels"
        row[field.name] = value
    return row


@cli.command()
@click.argument("streams", nargs=-1, required=True)
@click.option("--count", type=int, default=None, help="Stop after this many events.")
@market_option
@format_option
@pass_settings
def stream(settings: Settings, streams: tuple[str, ...], count: int | None, fmt: str) -> None:
    """Live market STREAMS (Binance's names: btcusdt@trade, ethusdt@kline_1m, ...).

    table: one line per event; json: the events as Binance sent them, one JSON object per
    line (``{"stream": ..., "data": ...}``); csv: stream, event time and the payload as JSON.
    A reconnect that may have lost events prints a gap line (json: ``{"gap": ...}``).
    """
    from ..streams import StreamGap, open_stream

    if count is not None and count < 1:
        raise click.BadParameter("must be at least 1", param_hint="--count")
    names = [s.strip() for s in streams if s.strip()]
    csv_out = CsvStream()

    def show(event: Any) -> None:
        if isinstance(event, StreamGap):
            record = {"gap": event.stream, "from": event.start_ms, "to": event.end_ms}
            if fmt == "json":
                print_json(record, line=True)
            elif fmt == "csv":
                csv_out.write([{"stream": event.stream, "time": event.end_ms, "data": record}])
            else:
                console.print(f"[yellow]gap[/] {event.stream}: {_fmt_ms(event.start_ms)} → "
                              f"{_fmt_ms(event.end_ms)} (events may be missing)")
            return
        if fmt == "json":
            print_json(event, line=True)
        elif fmt == "csv":
            data = event["data"]
            time = data.get("E", data.get("T")) if isinstance(data, dict) else None
            csv_out.write([{"stream": event["stream"], "time": time, "data": data}])
        else:
            row = _event_row(event)
            fields = "  ".join(f"{k}={v}" for k, v in row.items() if k not in ("kind", "stream"))
            console.print(f"[bold]{row.get('stream', '')}[/] {row['kind']}  {fields}",
                          soft_wrap=True, highlight=False)

    async def go() -> int:
        seen = 0
        async with settings.open_client() as client, open_stream(
            client, *names, market=settings.market, raw=fmt != "table"
        ) as events:
            async for event in events:
                show(event)
                seen += 1
                if count is not None and seen >= count:
                    break
        return seen

    run_trio(settings, go)


def _ladder(symbol: str, market: Market, snapshot: Any) -> Table:
    rows = []
    for i in range(max(len(snapshot.bids), len(snapshot.asks))):
        bid = snapshot.bids[i] if i < len(snapshot.bids) else ("", "")
        ask = snapshot.asks[i] if i < len(snapshot.asks) else ("", "")
        rows.append([str(bid[1]), f"[green]{bid[0]}[/]", f"[red]{ask[0]}[/]", str(ask[1])])
    columns = [Column("bid qty"), Column("bid"), Column("ask"), Column("ask qty")]
    state = "" if snapshot.synced else " (resyncing)"
    title = f"{market.label} {symbol} local book, update {snapshot.last_update_id}{state}"
    return fitted_table(console, title, columns, rows)


@cli.command()
@click.argument("symbol")
@click.option("--levels", default=10, show_default=True, help="Price levels per side shown.")
@click.option("--every", default="500ms", show_default=True, help="Refresh period.")
@click.option("--count", type=int, default=None, help="Stop after this many refreshes.")
@market_option
@format_option
@pass_settings
def book(
    settings: Settings, symbol: str, levels: int, every: str, count: int | None, fmt: str
) -> None:
    """A live depth ladder of SYMBOL from a local order book (snapshot + diff stream).

    json: one JSON object per refresh (``lastUpdateId``, ``bids``, ``asks`` as exact strings);
    csv: side, level, price, quantity per refresh.
    """
    from rich.live import Live

    from ..streams import open_order_book

    symbol = _symbol(symbol)
    period = _parse_period(every)
    if levels < 1:
        raise click.BadParameter("must be at least 1", param_hint="--levels")
    if count is not None and count < 1:
        raise click.BadParameter("must be at least 1", param_hint="--count")
    redraw = console.is_terminal and fmt == "table"
    live = Live(console=console, auto_refresh=False) if redraw else None
    csv_out = CsvStream()

    def show(number: int, snapshot: Any) -> None:
        as_text = [[[str(p), str(q)] for p, q in side] for side in (snapshot.bids, snapshot.asks)]
        if fmt == "json":
            print_json({"refresh": number, "lastUpdateId": snapshot.last_update_id,
                        "synced": snapshot.synced, "bids": as_text[0], "asks": as_text[1]},
                       line=True)
        elif fmt == "csv":
            csv_out.write([{"refresh": number, "lastUpdateId": snapshot.last_update_id,
                            "side": side, "level": i, "price": p, "quantity": q}
                           for side, rows in (("bid", as_text[0]), ("ask", as_text[1]))
                           for i, (p, q) in enumerate(rows, 1)])
        elif live is not None:
            live.update(_ladder(symbol, settings.market, snapshot), refresh=True)
        else:
            console.print(_ladder(symbol, settings.market, snapshot))

    async def go() -> int:
        shown = 0
        async with settings.open_client() as client, open_order_book(
            client, symbol, market=settings.market
        ) as local:
            with live if live is not None else nullcontext():
                while count is None or shown < count:
                    shown += 1
                    show(shown, local.snapshot(levels))
                    if count is not None and shown >= count:
                        break
                    await trio.sleep(period)
                    await local.wait_update(0)
        return shown

    run_trio(settings, go)


def _parse_period(text: str) -> float:
    value = text.strip().lower()
    try:
        if value.endswith("ms"):
            seconds = float(value[:-2]) / 1000
        elif value.endswith("s"):
            seconds = float(value[:-1])
        elif value.endswith("m"):
            seconds = float(value[:-1]) * 60
        else:
            seconds = float(value)
    except ValueError:
        raise click.BadParameter(f"not a period: {text!r} (use 500ms, 1s, 2m)") from None
    if seconds < 0:
        raise click.BadParameter("the period must not be negative")
    return seconds


@cli.command()
@click.option("--rounds", default=3, show_default=True, help="Rounds of aiocea's endless rings.")
@pass_settings
def demo(settings: Settings, rounds: int) -> None:
    """The original aiocea's five examples, end to end, with task trees and results."""
    from functools import partial

    from .. import demo as examples

    def out(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    async def go() -> None:
        async with settings.open_client() as client:
            for number, (title, example) in enumerate(examples.EXAMPLES, 1):
                # A rule as wide as the terminal; 80 columns into a pipe or a file.
                width = console.width if console.is_terminal else 80
                console.print(Rule(f"[bold]{number}. {title}"), width=width)
                if example in (examples.ticker_every_second, examples.ticker_and_time_every_second):
                    await partial(example, rounds=rounds)(client, out)
                else:
                    await example(client, out)

    run_trio(settings, go)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, help="0 picks a free port.")
@click.option(
    "--weight-window",
    type=int,
    default=60,
    show_default=True,
    help="Seconds in a rate-limit window (Binance: 60); shorter runs a 'minute' faster.",
)
@click.option(
    "--weight-limit",
    "weight_limits",
    multiple=True,
    metavar="MARKET=N",
    help="Weight per window for a market, e.g. spot=100 (default: Binance's).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Market data seed.")
@pass_settings
def sim(
    settings: Settings,
    host: str,
    port: int,
    weight_window: int,
    weight_limits: tuple[str, ...],
    seed: int,
) -> None:
    """Serve the Binance-compatible simulator on HOST:PORT until Ctrl-C."""
    from ..sim import DEMO_API_KEY, DEMO_API_SECRET, SimExchange

    limits: dict[str, int] = {}
    for item in weight_limits:
        market, _, number = item.partition("=")
        if market not in {m.value for m in Market} or not number.isdigit():
            raise click.BadParameter(
                f"{item!r}: use MARKET=N with MARKET one of spot, usdm, coinm",
                param_hint="--weight-limit",
            )
        limits[market] = int(number)
    if weight_window < 1:
        raise click.BadParameter("must be at least 1 second", param_hint="--weight-window")

    def ready(url: str) -> None:
        # Plain echo: these lines are meant to be copied, so no wrapping or styling.
        click.echo(f"simulator serving spot, USDⓈ-M and COIN-M at {url}")
        click.echo(f"demo account: BINANCE_API_KEY={DEMO_API_KEY}")
        click.echo(f"              BINANCE_API_SECRET={DEMO_API_SECRET}")
        click.echo(f"try: aiocea-trio --base-url {url} ticker BTCUSDT   (Ctrl-C stops)")

    async def go() -> None:
        exchange = SimExchange(seed=seed, weight_window=weight_window, weight_limits=limits)
        async with trio.open_nursery() as nursery:
            ready(await nursery.start(exchange.serve, host, port))

    run_trio(settings, go)


@cli.command()
@market_option
@format_option
@pass_settings
def account(settings: Settings, fmt: str) -> None:
    """Balances of the account the keys belong to (signed)."""
    cls = _task_class(settings.market, "FetchBalances")
    task = cls(omitZeroBalances=True)

    async def go() -> list[dict[str, Any]]:
        async with settings.open_client(signed=True) as client:
            await task.execute(client, raise_errors=True)
            return list(task.result)

    balances = run_trio(settings, go)
    if fmt == "json":
        print_json(balances)
        return
    if fmt == "csv":
        print_csv(balances)
        return
    keys = [k for k in ("asset", "free", "locked", "balance", "availableBalance")
            if balances and k in balances[0]]
    columns = [Column(k, numeric=k != "asset") for k in keys]
    rows = [[str(row.get(k, "")) for k in keys] for row in balances]
    console.print(fitted_table(console, f"{settings.market.label} balances", columns, rows))


@cli.command()
@click.argument("side", type=click.Choice(["BUY", "SELL"], case_sensitive=False))
@click.argument("symbol")
@click.argument("quantity")
@click.option("--price", default=None, help="Limit price; without it the order is MARKET.")
@click.option("--tif", default="GTC", show_default=True, help="Time in force for LIMIT orders.")
@click.option("--yes", is_flag=True, help="Place it without asking.")
@market_option
@format_option
@pass_settings
def order(
    settings: Settings,
    side: str,
    symbol: str,
    quantity: str,
    price: str | None,
    tif: str,
    yes: bool,
    fmt: str,
) -> None:
    """Place one order (signed). Asks for confirmation (on stderr) unless --yes."""
    cls = _task_class(settings.market, "NewOrder")
    symbol = _symbol(symbol)
    params: dict[str, Any] = {"symbol": symbol, "side": side.upper(), "quantity": quantity}
    if price is None:
        params["type"] = "MARKET"
    else:
        params.update(type="LIMIT", price=price, timeInForce=tif.upper())
    try:
        task = cls(**params)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc)) from None
    what = f"{task} (client order id {task.newClientOrderId})"
    # The question goes to stderr, so that stdout holds only the answer (json, csv).
    question = f"Place {what} on {settings.market.label}?"
    if not yes and not click.confirm(question, default=False, err=True):
        err_console.print("not placed")
        raise SystemExit(1)

    async def go() -> dict[str, Any]:
        async with settings.open_client(signed=True) as client:
            await task.execute(client, raise_errors=True)
            return dict(task.result)

    placed = run_trio(settings, go)
    if _record(fmt, placed):
        return
    say(
        f"placed: order {placed.get('orderId')} {placed.get('status', '')} "
        f"(client order id {placed.get('clientOrderId', task.newClientOrderId)})"
    )
