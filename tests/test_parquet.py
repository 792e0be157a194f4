"""Klines into Parquet: archive blocks through pyarrow's CSV reader, REST pages by column.

The typed layout is the default; tests/test_frames.py checks its types and the
``string_columns=True`` layout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import aiocea_trio.parquet as parquet  # noqa: E402
from aiocea_trio import ArchiveChecksumError, Progress, download_klines  # noqa: E402
from aiocea_trio.history import to_ms  # noqa: E402
from aiocea_trio.parquet import download_klines_to_parquet, kline_schema  # noqa: E402
from aiocea_trio.sim import SimExchange  # noqa: E402

NOW = to_ms("2025-01-03T10:30:00Z")
# A partial month (parsed), a whole month, two microsecond days, then today from REST.
START, END = "2024-11-20T05:00:00Z", "2025-01-03T06:00:00Z"


async def test_auto_and_rest_write_the_same_table_as_the_rows(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sim = SimExchange(start_time_ms=NOW)
    async with sim.client() as client:
        await client.sync_time()
        progress = Progress()
        written = await download_klines_to_parquet(
            client, tmp_path / "auto.parquet", "BTCUSDT", "1m", START, END, progress=progress
        )
        await download_klines_to_parquet(
            client, tmp_path / "rest.parquet", "BTCUSDT", "1m", START, END, source="rest"
        )
        rows = await download_klines(client, "BTCUSDT", "1m", START, END, source="rest")
    auto, rest = pq.read_table(tmp_path / "auto.parquet"), pq.read_table(tmp_path / "rest.parquet")
    assert auto.schema == kline_schema()
    assert auto.equals(rest)
    assert (tmp_path / "auto.parquet").read_bytes() == (tmp_path / "rest.parquet").read_bytes()
    assert written == auto.num_rows == len(rows) == (to_ms(END) - to_ms(START)) // 60_000
    assert auto.equals(rows.to_arrow())  # typed: the rows' values, parsed
    assert (progress.archives_done, progress.pages_done) == (4, 1)  # Nov, Dec, Jan 1, Jan 2
    assert sorted(p.name for p in os.scandir(tmp_path)) == ["auto.parquet", "rest.parquet"]


async def test_row_groups_are_written_as_they_fill(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 10_000)  # a month file is 44,640 rows
    async with SimExchange(start_time_ms=NOW).client() as client:
        written = await download_klines_to_parquet(
            client, tmp_path / "btc.parquet", "BTCUSDT", "1m", "2024-12-01", "2025-01-01"
        )
        await download_klines_to_parquet(  # 45 pages, cut into the same row groups
            client, tmp_path / "rest.parquet", "BTCUSDT", "1m", "2024-12-01", "2025-01-01",
            source="rest",
        )
    assert (tmp_path / "btc.parquet").read_bytes() == (tmp_path / "rest.parquet").read_bytes()
    metadata = pq.ParquetFile(tmp_path / "btc.parquet").metadata
    assert written == 31 * 1440
    assert metadata.num_row_groups == 5  # 44,640 rows in groups of at most 10,000
    assert max(metadata.row_group(i).num_rows for i in range(5)) == 10_000


async def test_a_failed_download_leaves_no_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sim = SimExchange(start_time_ms=NOW, corrupt_archives=["BTCUSDT-1m-2024-12"])
    target = tmp_path / "btc.parquet"
    async with sim.client() as client:
        with pytest.raises(ArchiveChecksumError):
            await download_klines_to_parquet(
                client, target, "BTCUSDT", "1m", "2024-11-01", "2025-01-01"
            )
    assert os.listdir(tmp_path) == []  # neither the file nor its .part


async def test_without_pyarrow_the_error_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    async with SimExchange(start_time_ms=NOW).client() as client:
        with pytest.raises(ImportError, match=r"aiocea-trio\[parquet\]"):
            await download_klines_to_parquet(
                client, tmp_path / "x.parquet", "BTCUSDT", "1m", "2024-12-01", "2024-12-02"
            )
