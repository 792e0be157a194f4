"""Symbols are checked before they reach a URL or a path, at every entry point (issue 12, class 6).

``../../x/escaped`` with ``cache_dir`` used to write an archive outside the cache, and
``BTC/USDT`` made nested folders. One validator (``aiocea_trio.symbols``) now guards the
catalog, the history downloads and the archive planners, with a ``ValueError`` naming
``symbol`` raised before any request or file write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from aiocea_trio import (
    CoinMFetchKline,
    SpotFetchExchangeInfo,
    SpotFetchKline,
    UsdMFetchTrades,
    download_agg_trades,
    download_funding_rates,
    download_klines,
    download_klines_to_file,
    open_kline_stream,
)
from aiocea_trio.archives import (
    ArchiveFile,
    fetch_archive,
    plan_agg_trade_archives,
    plan_kline_archives,
)
from aiocea_trio.history import to_ms
from aiocea_trio.parquet import download_klines_to_parquet
from aiocea_trio.sim import SimExchange
from aiocea_trio.symbols import check_symbol

BAD = [
    "../../x/escaped",
    "BTC/USDT",
    "..",
    ".hidden",
    "-BTCUSDT",
    "BTC USDT",
    " BTCUSDT",
    "BTCUSDT\n",
    "BTC\\USDT",
    "",
    "btcusdt",
    "A" * 33,
    "BTCÜSDT",
    "BTCUSDT?x=1",
]
GOOD = ["BTCUSDT", "BTCUSD_PERP", "1000SHIBUSDT", "BTCUSDT_240329", "A" * 32]
START, END = to_ms("2024-01-01"), to_ms("2024-01-02")


def _everything_in(folder: Path) -> list[Path]:
    """Every file and folder below ``folder`` (a plain function: it blocks)."""
    return sorted(folder.rglob("*"))


class NoRequests:
    """A client that must never be asked anything."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def request(self, method: str, path: str, params: Any = None, *, signed: bool = False) -> Any:
        self.calls.append((method, path, params))
        raise AssertionError(f"a request was sent: {method} {path} {params}")


async def _stream(client: Any, symbol: str, _: Path) -> None:
    async with open_kline_stream(client, symbol, "1h", START, END) as batches:
        async for _batch in batches:
            pass


ENTRY_POINTS: dict[str, Callable[[Any, str, Path], Awaitable[Any]]] = {
    "download_klines": lambda c, s, d: download_klines(c, s, "1h", START, END, cache_dir=d),
    "open_kline_stream": _stream,
    "download_klines_to_file": lambda c, s, d: download_klines_to_file(
        c, d / "out.csv", s, "1h", START, END, cache_dir=d
    ),
    "download_klines_to_parquet": lambda c, s, d: download_klines_to_parquet(
        c, d / "out.parquet", s, "1h", START, END, cache_dir=d
    ),
    "download_agg_trades": lambda c, s, d: download_agg_trades(c, s, START, END, cache_dir=d),
    "download_funding_rates": lambda c, s, d: download_funding_rates(c, s, START, END),
}


@pytest.mark.parametrize("symbol", BAD)
def test_the_validator_refuses_what_is_not_a_binance_symbol(symbol: str) -> None:
    with pytest.raises(ValueError, match=r"^symbol must be a non-empty symbol name"):
        check_symbol(symbol)


@pytest.mark.parametrize("symbol", GOOD)
def test_the_validator_takes_every_shape_binance_uses(symbol: str) -> None:
    assert check_symbol(symbol) == symbol


def test_lower_case_is_refused_with_the_symbol_it_means() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'BTCUSDT'"):
        check_symbol("btcusdt")
    with pytest.raises(TypeError, match="symbol must be a str"):
        check_symbol(None)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("symbol", ["../../x/escaped", "BTC/USDT", "", "btcusdt"])
async def test_every_history_entry_point_refuses_before_any_request_or_write(
    entry: str, symbol: str, tmp_path: Path
) -> None:
    client = NoRequests()
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"^symbol must be"):
        await ENTRY_POINTS[entry](client, symbol, cache)
    assert client.calls == []
    assert _everything_in(tmp_path) == []  # no cache folder, no output file, no sidecar


async def test_a_traversing_symbol_writes_nothing_outside_the_cache(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # The archive path is what used to escape: the simulator serves archives too.
    cache = tmp_path / "a" / "b" / "cache"
    sim = SimExchange()
    async with sim.client() as client:
        with pytest.raises(ValueError, match="symbol"):
            await download_klines(
                client, "../../x/escaped", "1d", "2024-01-01", "2024-03-01", cache_dir=cache
            )
    assert _everything_in(tmp_path) == []


@pytest.mark.parametrize("symbol", ["../../x/escaped", "BTC/USDT", "btcusdt"])
def test_the_archive_planners_refuse_a_bad_symbol(symbol: str) -> None:
    today = to_ms("2024-06-01")
    with pytest.raises(ValueError, match="symbol"):
        plan_kline_archives("spot", symbol, "1d", START, END, today)
    with pytest.raises(ValueError, match="symbol"):
        plan_agg_trade_archives("spot", symbol, START, END, today)
    with pytest.raises(ValueError, match="interval"):
        plan_kline_archives("spot", "BTCUSDT", "../1d", START, END, today)


async def test_an_archive_path_cannot_leave_the_cache(tmp_path: Path) -> None:
    # ArchiveFile is public: a path built by hand is checked where the cache path is made.
    file = ArchiveFile("/data/spot/daily/klines/../../../../../escaped.zip", START, END)
    with pytest.raises(ValueError, match="would leave the cache directory"):
        await fetch_archive(None, "http://unused", file, cache_dir=tmp_path / "cache")  # type: ignore[arg-type]
    assert _everything_in(tmp_path) == []


@pytest.mark.parametrize(
    ("task", "kwargs", "name"),
    [
        (SpotFetchKline, {"symbol": "BTC/USDT", "interval": "1m"}, "symbol"),
        (SpotFetchKline, {"symbol": "../../x", "interval": "1m"}, "symbol"),
        (CoinMFetchKline, {"symbol": "btcusd_perp", "interval": "1m"}, "symbol"),
        (UsdMFetchTrades, {"symbol": "BTC USDT"}, "symbol"),
        (SpotFetchExchangeInfo, {"symbols": ["BTCUSDT", "ETH/USDT"]}, "symbols"),
    ],
)
def test_catalog_tasks_use_the_same_check(task: Any, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{task.__name__}: {name} must be a non-empty symbol"):
        task(**kwargs)
