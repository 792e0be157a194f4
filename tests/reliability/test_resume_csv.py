"""Resuming a CSV never corrupts it (issue 12, class 9).

A torn last line (a crash, a full disk) used to get the next row glued onto it; a file of
another symbol or interval got foreign rows appended. Now ``download_klines_to_file``
records what a file holds in ``<name>.meta.json`` (before the first row), checks it and
the last row on resume, refuses a file that holds something else without touching it,
and cuts a torn tail off before appending.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import aiocea_trio.history as history
import aiocea_trio.history.csv_file as csv_file
from aiocea_trio import download_klines_to_file
from aiocea_trio.history import sidecar_path
from aiocea_trio.sim import SimExchange

DAY1, DAY2, DAY3 = "2024-02-01", "2024-02-02", "2024-02-03"


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def _download(path: Path, symbol: str = "ETHUSDT", interval: str = "5m", end: str = DAY2,
                    **kwargs: Any) -> int:
    async with SimExchange().client() as client:
        return await download_klines_to_file(
            client, path, symbol, interval, DAY1, end, source="rest", **kwargs
        )


def _valid_rows(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode().split("\n")[:-1]
    assert lines[0] == ",".join(history.KLINE_COLUMNS)
    rows = [line.split(",") for line in lines[1:]]
    assert all(len(r) == 12 and r[0].isdigit() for r in rows)
    opens = [int(r[0]) for r in rows]
    assert opens == sorted(set(opens))  # in order, each once
    return rows


@pytest.fixture
async def whole(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> bytes:
    """The file an uninterrupted download of two days makes."""
    path = tmp_path / "whole" / "eth.csv"
    path.parent.mkdir()
    assert await _download(path, end=DAY3) == 576
    return path.read_bytes()


@pytest.mark.parametrize(
    "tail",
    [
        b"1706832000000,2301.1,23",  # a row cut mid-way
        b"1706832000000",  # only its open time
        b"\0" * 700,  # a crash that left zeros where the data should be
        b"1706832000000,2301.1,2320.0,\0\0\0\0",
    ],
)
async def test_a_torn_last_line_is_dropped_before_appending(
    tail: bytes, whole: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "eth.csv"
    assert await _download(path) == 288
    with path.open("ab") as f:
        f.write(tail)
    with caplog.at_level(logging.WARNING, logger="aiocea_trio.history"):
        assert await _download(path, end=DAY3) == 288
    assert path.read_bytes() == whole
    assert any("torn last line" in r.getMessage() for r in caplog.records)


async def test_a_torn_header_is_written_again(whole: bytes, tmp_path: Path) -> None:
    path = tmp_path / "eth.csv"
    path.write_bytes(b"open_time,op")
    assert await _download(path, end=DAY3) == 576
    assert path.read_bytes() == whole


@pytest.mark.parametrize(
    ("symbol", "interval", "market", "holds"),
    [
        ("BTCUSDT", "5m", "spot", "ETHUSDT 5m klines (spot)"),
        ("ETHUSDT", "1h", "spot", "ETHUSDT 5m klines (spot)"),
        ("ETHUSDT", "5m", "usdm", "ETHUSDT 5m klines (spot)"),
    ],
)
async def test_a_file_of_other_klines_is_refused_and_left_alone(
    symbol: str, interval: str, market: str, holds: str, tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    path = tmp_path / "eth.csv"
    await _download(path)
    before = path.read_bytes()
    wanted = f"{symbol} {interval} klines ({market})"
    with pytest.raises(ValueError) as info:
        await _download(path, symbol, interval, end=DAY3, market=market)
    message = str(info.value)
    assert str(path) in message
    assert holds in message
    assert wanted in message
    assert path.read_bytes() == before


async def test_the_sidecar_records_the_file_and_exists_before_the_first_row(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "eth.csv"
    real_write = csv_file._write_rows
    seen: list[bool] = []

    def write(handle: Any, rows: Any) -> None:
        seen.append(sidecar_path(path).exists())
        real_write(handle, rows)

    monkeypatch.setattr(csv_file, "_write_rows", write)
    await _download(path)
    assert seen
    assert all(seen)
    meta = json.loads(sidecar_path(path).read_text())
    assert (meta["market"], meta["symbol"], meta["interval"]) == ("spot", "ETHUSDT", "5m")
    assert _listing(tmp_path) == ["eth.csv", "eth.csv.meta.json"]


async def test_an_interrupted_download_leaves_a_valid_resumable_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path, whole = tmp_path / "eth.csv", tmp_path / "whole.csv"
    async with SimExchange().client() as client:
        # Two days of 1m candles: three pages; cancelled when the third is asked for,
        # with the first written (concurrency 1: pages go one at a time).
        with trio.CancelScope() as scope:

            class Interrupted:
                calls = 0

                def server_time_ms(self) -> int:
                    return client.server_time_ms()

                async def request(self, *args: Any, **kwargs: Any) -> Any:
                    self.calls += 1
                    if self.calls == 3:
                        scope.cancel()
                    return await client.request(*args, **kwargs)

            await download_klines_to_file(
                Interrupted(), path, "ETHUSDT", "1m", DAY1, DAY3, max_concurrency=1,
            )
        assert scope.cancelled_caught
        rows = _valid_rows(path)
        assert 0 < len(rows) < 2880
        await download_klines_to_file(client, path, "ETHUSDT", "1m", DAY1, DAY3, source="rest")
        await download_klines_to_file(client, whole, "ETHUSDT", "1m", DAY1, DAY3, source="rest")
    assert path.read_bytes() == whole.read_bytes()
    assert len(_valid_rows(path)) == 2880


async def test_a_file_without_sidecar_is_taken_when_its_rows_fit(
    whole: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Older versions kept no sidecar: the interval is checked on the last row, and the
    # symbol and market cannot be, which a warning says.
    path = tmp_path / "eth.csv"
    await _download(path)
    sidecar_path(path).unlink()
    with pytest.raises(ValueError, match=r"holds 5m candles, not ETHUSDT 1h klines"):
        await _download(path, interval="1h", end=DAY3)
    assert not sidecar_path(path).exists()
    with caplog.at_level(logging.WARNING, logger="aiocea_trio.history"):
        assert await _download(path, end=DAY3) == 288
    assert path.read_bytes() == whole
    assert any("cannot be checked" in r.getMessage() for r in caplog.records)
    assert json.loads(sidecar_path(path).read_text())["symbol"] == "ETHUSDT"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"a,b,c\n1,2,3\n", r"not a klines CSV"),
        ("\n".join([",".join(history.KLINE_COLUMNS), "garbage", ""]).encode(), r"not a kline row"),
        ("\n".join([",".join(history.KLINE_COLUMNS), "1706745600000," + "x," * 10 + "0", ""])
         .encode(), r"not a kline row"),
    ],
)
async def test_a_file_that_is_not_ours_is_refused(
    content: bytes, match: str, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "other.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        await _download(path)
    assert path.read_bytes() == content
    assert not sidecar_path(path).exists()


async def test_a_damaged_sidecar_is_refused(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "eth.csv"
    await _download(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(ValueError, match=r"eth.csv.meta.json does not say what eth.csv holds"):
        await _download(path, end=DAY3)


def test_a_malformed_batch_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    with path.open("ab") as handle:
        with pytest.raises(ValueError, match="not plain 12-column rows"):
            csv_file._write_rows(handle, [[1, "a,b", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]])
        with pytest.raises(ValueError, match="not plain 12-column rows"):
            csv_file._write_rows(handle, [[1, 2, 3]])
    assert path.read_bytes() == b""
