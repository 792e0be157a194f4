"""Click commands; each one runs a small trio program and prints with rich."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attrs
import click
import trio
from rich.console import Console

from ..client import BinanceClient
from ..errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceError,
    BinanceRateLimitError,
    BinanceTransportError,
)
from ..markets import Market

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

_PING_PATHS = {
    Market.SPOT: "/api/v3/ping",
    Market.USDM: "/fapi/v1/ping",
    Market.COINM: "/dapi/v1/ping",
}
_TIME_PATHS = {
    Market.SPOT: "/api/v3/time",
    Market.USDM: "/fapi/v1/time",
    Market.COINM: "/dapi/v1/time",
}

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
    async def open_client(self, *, signed: bool = False) -> AsyncIterator[BinanceClient]:
        """The client the options describe: the embedded simulator, a host, or Binance."""
        if self.sim:
            from ..sim import SimExchange

            async with SimExchange().client() as client:
                yield client
            return
        key, secret = self.credentials()
        if signed and not (key and secret):
            raise click.UsageError(
                "this command is signed: set BINANCE_API_KEY and BINANCE_API_SECRET "
                "(or --key-file), or use --sim"
            )
        async with BinanceClient(
            key, secret, base_url=self.base_url, testnet=self.testnet
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


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run_trio(settings: Settings, fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's trio program; errors become one line and a non-zero exit."""

    async def program() -> T:
        return await fn()

    try:
        return trio.run(program)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None
    except (BinanceError, ValueError, OSError, ExceptionGroup) as exc:
        if settings.debug:
            raise
        leaf = _leaf(exc)
        if isinstance(leaf, click.ClickException):
            raise leaf from None
        fail(_describe(leaf))


def fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(1)


def _fmt_ms(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


pass_settings = click.make_pass_decorator(Settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
) -> None:
    """Drive Binance's REST APIs (spot, USDⓈ-M, COIN-M) from the terminal.

    Keys come from BINANCE_API_KEY / BINANCE_API_SECRET (or --key-file) and are
    never printed. With --sim nothing leaves this machine.
    """
    if sim and (base_url or testnet):
        raise click.UsageError("--sim runs the embedded simulator: drop --base-url/--testnet")
    ctx.obj = Settings(
        sim=sim,
        base_url=base_url,
        testnet=testnet,
        market=Market(market),
        debug=debug,
        key_file=key_file,
    )


@cli.command()
@pass_settings
def ping(settings: Settings) -> None:
    """Check that the market answers, and how fast."""

    async def go() -> tuple[str, float]:
        async with settings.open_client() as client:
            start = trio.current_time()
            await client.request("GET", _PING_PATHS[settings.market])
            return client.base_url_for(settings.market), trio.current_time() - start

    host, seconds = run_trio(settings, go)
    shown = "embedded simulator" if settings.sim else host
    console.print(f"pong from {settings.market.label} ({shown}) in {seconds * 1000:.1f} ms")


@cli.command(name="time")
@pass_settings
def server_time(settings: Settings) -> None:
    """Show the server's time and this machine's offset from it."""

    async def go() -> tuple[int, int]:
        async with settings.open_client() as client:
            data: dict[str, Any] = await client.request("GET", _TIME_PATHS[settings.market])
            offset = await client.sync_time(settings.market)
            return int(data["serverTime"]), offset

    server, offset = run_trio(settings, go)
    console.print(f"{settings.market.label} server time: {_fmt_ms(server)} ({server})")
    console.print(f"this machine is {abs(offset)} ms {'behind' if offset >= 0 else 'ahead'}")


if __name__ == "__main__":  # pragma: no cover
    cli.main(args=sys.argv[1:], prog_name="aiocea-trio")
