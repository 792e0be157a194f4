"""Typed data out: Arrow, pandas and polars types, Parquet layouts, the record-batch stream."""

from __future__ import annotations

import decimal
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

from aiocea_trio import (  # noqa: E402
    AGG_TRADE_COLUMNS,
    FUNDING_RATE_COLUMNS,
    KLINE_COLUMNS,
    Gap,
    HistoryRows,
    download_agg_trades,
    download_funding_rates,
    download_klines,
    download_klines_frame,
    download_klines_to_parquet,
    kline_schema,
    open_kline_batch_stream,
)
from aiocea_trio.frames import rows_to_arrow  # noqa: E402
from aiocea_trio.history import to_ms  # noqa: E402
from aiocea_trio.sim import SimExchange  # noqa: E402

NOW = to_ms("2025-01-03T10:30:00Z")
# A partial month (rows), a whole month, two microsecond days (blocks), then today from REST.
START, END = "2024-11-20T05:00:00Z", "2025-01-03T06:00:00Z"
CANDLES = (to_ms(END) - to_ms(START)) // 60_000
PRICES = [n for n in KLINE_COLUMNS if n not in ("open_time", "close_time", "trades")]


async def _rows(client: object) -> HistoryRows:
    return await download_klines(client, "BTCUSDT", "1m", START, END, source="rest")  # type: ignore[arg-type]


async def test_pandas_polars_and_arrow_types(autojump_clock: trio.testing.MockClock) -> None:
    async with SimExchange(start_time_ms=NOW).client() as client:
        await client.sync_time()
        frame = await download_klines_frame(client, "BTCUSDT", "1m", START, END)
        polars = await download_klines_frame(client, "BTCUSDT", "1m", START, END, library="polars")
        table = await download_klines_frame(client, "BTCUSDT", "1m", START, END, library="arrow")
        rows = await _rows(client)
    assert list(frame.columns) == list(KLINE_COLUMNS) == polars.columns
    dtypes = {name: str(t) for name, t in frame.dtypes.items()}
    assert dtypes["open_time"] == dtypes["close_time"] == "datetime64[ms, UTC]"
    assert dtypes["trades"] == "int64"
    assert {dtypes[n] for n in PRICES} == {"float64"}
    assert polars.schema["open_time"] == pl.Datetime("ms", "UTC")
    assert polars.schema["trades"] == pl.Int64
    assert {polars.schema[n] for n in PRICES} == {pl.Float64}
    assert table.schema == kline_schema()
    # The fast path (archive CSV straight to Arrow) and the rows give the same frames.
    assert len(frame) == CANDLES
    assert frame.equals(rows.to_pandas())
    assert polars.equals(rows.to_polars())
    assert table.equals(rows.to_arrow())


async def test_values_equal_the_string_rows(autojump_clock: trio.testing.MockClock) -> None:
    async with SimExchange(start_time_ms=NOW).client() as client:
        await client.sync_time()
        frame = await download_klines_frame(client, "BTCUSDT", "1m", START, END)
        rows = await _rows(client)
    for i in (0, len(rows) // 2, len(rows) - 1):
        row, got = rows[i], frame.iloc[i]
        assert got["open_time"] == pd.Timestamp(row[0], unit="ms", tz="UTC")
        assert got["close_time"] == pd.Timestamp(row[6], unit="ms", tz="UTC")
        assert got["trades"] == row[8]
        for name in PRICES:
            assert got[name] == float(row[KLINE_COLUMNS.index(name)]), name


async def test_decimal_is_exact(autojump_clock: trio.testing.MockClock) -> None:
    async with SimExchange(start_time_ms=NOW).client() as client:
        await client.sync_time()
        frame = await download_klines_frame(client, "BTCUSDT", "1m", START, END, decimal=True)
        polars = await download_klines_frame(
            client, "BTCUSDT", "1m", START, END, library="polars", decimal=True
        )
        rows = await _rows(client)
    assert str(frame["close"].dtype) == "decimal128(38, 8)[pyarrow]"
    assert polars.schema["close"] == pl.Decimal(38, 8)
    assert str(frame["open_time"].dtype) == "datetime64[ms, UTC]"
    for name in PRICES:
        column = KLINE_COLUMNS.index(name)
        want = [decimal.Decimal(r[column]) for r in rows]
        assert frame[name].tolist() == want, name
        assert polars[name].to_list() == want, name
    # Binance's 8-decimal text comes back exactly.
    assert [str(v) for v in frame["close"].tolist()] == [r[4] for r in rows]
    # A text with more decimals than the scale is refused, never rounded.
    bad = [[*rows[0][:4], "1.123456789", *rows[0][5:]]]
    with pytest.raises(ValueError, match="data loss"):
        rows_to_arrow(bad, "klines", decimal=True)


async def test_parquet_is_typed_and_the_same_from_either_source(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with SimExchange(start_time_ms=NOW).client() as client:
        await client.sync_time()
        for name, options in [
            ("typed", {}),
            ("decimal", {"decimal": True}),
            ("text", {"string_columns": True}),
        ]:
            for source in ("auto", "rest"):
                await download_klines_to_parquet(
                    client, tmp_path / f"{name}-{source}.parquet", "BTCUSDT", "1m", START, END,
                    source=source, **options,
                )
        rows = await _rows(client)
    for name in ("typed", "decimal", "text"):
        auto = (tmp_path / f"{name}-auto.parquet").read_bytes()
        assert auto == (tmp_path / f"{name}-rest.parquet").read_bytes(), name
    typed = pq.read_table(tmp_path / "typed-auto.parquet")
    assert typed.schema == kline_schema()
    assert str(typed.schema.field("open_time").type) == "timestamp[ms, tz=UTC]"
    assert str(typed.schema.field("trades").type) == "int64"
    assert str(typed.schema.field("volume").type) == "double"
    assert typed.equals(rows.to_arrow())
    exact = pq.read_table(tmp_path / "decimal-auto.parquet")
    assert exact.schema == kline_schema(decimal=True)
    assert str(exact.schema.field("close").type) == "decimal128(38, 8)"
    assert exact.equals(rows.to_arrow(decimal=True))
    text = pq.read_table(tmp_path / "text-auto.parquet")  # the first versions' layout
    assert [str(f.type) for f in text.schema] == [
        "int64" if n in ("open_time", "close_time", "trades") else "string" for n in KLINE_COLUMNS
    ]
    assert text.to_pylist() == [dict(zip(KLINE_COLUMNS, row, strict=True)) for row in rows]


async def test_batch_stream_covers_the_range_once(autojump_clock: trio.testing.MockClock) -> None:
    # November from its monthly file, December (not published) from the REST API, January 1
    # and 2 from daily files (microseconds), today's first ten hours from REST pages of 500.
    sim = SimExchange(start_time_ms=NOW, missing_archives=["BTCUSDT-1m-2024-12"])
    gaps: list[Gap] = []
    opens: list[int] = []
    sizes = []
    async with sim.client() as client:
        await client.sync_time()
        stream = open_kline_batch_stream(
            client, "BTCUSDT", "1m", "2024-11-01", "2025-01-03T10:00:00Z", gaps=gaps,
            page_size=500,
        )
        async with stream as batches:
            async for batch in batches:
                assert isinstance(batch, pa.RecordBatch)
                assert batch.schema == kline_schema()
                sizes.append(batch.num_rows)
                opens += batch.column("open_time").cast(pa.int64()).to_pylist()
    want = list(range(to_ms("2024-11-01"), to_ms("2025-01-03T10:00:00Z"), 60_000))
    assert opens == want  # no gap, no duplicate, in order
    assert gaps == []
    assert sizes == [43_200, 44_640, 1440, 1440, 500, 100]  # a batch per file or page


async def test_batch_stream_stops_early(autojump_clock: trio.testing.MockClock) -> None:
    async with SimExchange(start_time_ms=NOW).client() as client:
        async with open_kline_batch_stream(
            client, "BTCUSDT", "1m", "2024-01-01", "2024-12-01"
        ) as batches:
            async for batch in batches:
                assert batch.num_rows > 0
                break  # the fetches still running are cancelled


async def test_agg_trades_and_funding_rates(autojump_clock: trio.testing.MockClock) -> None:
    async with SimExchange().client() as client:
        spot = await download_agg_trades(client, "BTCUSDT", "2024-01-01", "2024-01-01T00:00:05")
        futures = await download_agg_trades(
            client, "BTCUSDT", "2024-01-01", "2024-01-01T00:00:05", market="usdm"
        )
        rates = await download_funding_rates(client, "BTCUSDT", "2024-01-01", "2024-01-05")
    frame = spot.to_pandas()
    assert list(frame.columns) == list(AGG_TRADE_COLUMNS)
    assert str(frame["transact_time"].dtype) == "datetime64[ms, UTC]"
    assert str(frame["agg_trade_id"].dtype) == "int64"
    assert str(frame["price"].dtype) == "float64"
    assert frame["agg_trade_id"].tolist() == [t["a"] for t in spot]
    assert frame["price"].tolist() == [float(t["p"]) for t in spot]
    assert frame["is_best_match"].tolist() == [t["M"] for t in spot]
    assert futures.to_polars()["is_best_match"].null_count() == len(futures)  # futures: no M
    exact = rates.to_polars(decimal=True)
    assert exact.columns == list(FUNDING_RATE_COLUMNS)
    assert exact.schema["funding_time"] == pl.Datetime("ms", "UTC")
    assert [str(v) for v in exact["funding_rate"].to_list()] == [r["fundingRate"] for r in rates]
    assert rates.to_arrow().num_rows == len(rates) == 4 * 3


def test_empty_rows_need_their_kind() -> None:
    assert HistoryRows([], kind="klines").to_arrow().schema == kline_schema()
    assert len(HistoryRows([], kind="funding_rates").to_pandas()) == 0
    with pytest.raises(ValueError, match="kind"):
        HistoryRows([]).to_arrow()
    with pytest.raises(ValueError, match="kind"):
        rows_to_arrow([[1, 2]], "candles")


async def test_bad_arguments_name_the_parameter() -> None:
    async with SimExchange().client() as client:
        with pytest.raises(ValueError, match="library"):
            await download_klines_frame(client, "BTCUSDT", "1m", START, END, library="numpy")
        with pytest.raises(ValueError, match="decimal"):
            open_kline_batch_stream(client, "BTCUSDT", "1m", START, END, decimal="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="string_columns"):
            kline_schema(decimal=True, string_columns=True)
        with pytest.raises(ValueError, match="symbol"):
            open_kline_batch_stream(client, "BTC/USDT", "1m", START, END)


@pytest.mark.parametrize(
    ("missing", "library", "extra"),
    [("pandas", "pandas", "pandas"), ("polars", "polars", "polars"), ("pyarrow", "arrow", "parquet")],
)
async def test_a_missing_library_names_its_extra(
    missing: str, library: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    async with SimExchange().client() as client:
        with pytest.raises(ImportError, match=rf"pip install 'aiocea-trio\[{extra}\]'"):
            await download_klines_frame(client, "BTCUSDT", "1m", START, END, library=library)
    rows = HistoryRows([[0, *["1.0"] * 5, 59_999, "1.0", 1, "1.0", "1.0", "0"]], kind="klines")
    with pytest.raises(ImportError, match=rf"aiocea-trio\[{extra}\]"):
        getattr(rows, "to_arrow" if library == "arrow" else f"to_{library}")()
