"""Archive handling in the client: planning, checksums, 404 fallback, cache, units, threads.

Here the archive host and the REST API are respx routes serving files built by the
test, so each failure can be staged exactly; tests/test_sim_archives.py runs the
same paths end to end against the simulator.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import trio
import trio.testing

import aiocea_trio.archives as archives
from aiocea_trio import (
    BinanceClient,
    Progress,
    RateLimiter,
    download_klines,
    download_klines_to_file,
)
from aiocea_trio.archives import (
    ArchiveChecksumError,
    ArchiveCorruptError,
    ArchiveNotFoundError,
    KlineBlock,
    kline_block,
    parse_agg_trades_csv,
    parse_klines_csv,
    plan_kline_archives,
)
from aiocea_trio.history import to_ms

ROOT = "https://data.example"
DAY = 86_400_000


def row(open_ms: int, unit: int = 1) -> list[Any]:
    """A 1d candle; ``unit`` 1000 writes times in microseconds, as spot files from 2025 do."""
    return [open_ms * unit, "1.5", "2.5", "1.0", "2.0", "10.0", (open_ms + DAY) * unit - 1,
            "20.0", 7, "5.0", "10.0", "0"]


def rest_row(open_ms: int) -> list[Any]:
    return row(open_ms)


def zipped(rows: list[list[Any]], *, header: bool = False, name: str = "x.csv") -> bytes:
    lines = ["open_time,open,high,low,close,volume,close_time,quote_volume,count,"
             "taker_buy_volume,taker_buy_quote_volume,ignore"] if header else []
    lines += [",".join(str(v) for v in r) for r in rows]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, "\n".join(lines) + "\n")
    return buffer.getvalue()


def publish(mock: respx.MockRouter, path: str, data: bytes, *, checksum: bytes | None = None) -> respx.Route:
    name = path.rsplit("/", 1)[-1]
    digest = hashlib.sha256(checksum if checksum is not None else data).hexdigest()
    mock.get(f"{ROOT}{path}.CHECKSUM").respond(text=f"{digest}  {name}\n")
    return mock.get(f"{ROOT}{path}").respond(content=data)


def month_rows(year: int, month: int, unit: int = 1) -> list[list[Any]]:
    start = to_ms(f"{year:04d}-{month:02d}-01")
    end = to_ms(f"{year + (month == 12):04d}-{month % 12 + 1:02d}-01")
    return [row(t, unit) for t in range(start, end, DAY)]


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


def serve_rest(mock: respx.MockRouter) -> respx.Route:
    """The klines endpoint: 1d rows for whatever range is asked."""

    def klines(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        lo, hi = int(q["startTime"]), int(q["endTime"])
        first = -(-lo // DAY) * DAY
        return httpx.Response(200, json=[rest_row(t) for t in range(first, hi + 1, DAY)])

    return mock.get("https://api.binance.com/api/v3/klines").mock(side_effect=klines)


def client() -> BinanceClient:
    return BinanceClient(limiter=RateLimiter(learn_limits=False))


async def _download(**kwargs: Any) -> Any:
    async with client() as c:
        return await download_klines(
            c, "BTCUSDT", "1d", kwargs.pop("start"), kwargs.pop("end"), archive_url=ROOT, **kwargs
        )


def test_plan_months_then_days_then_rest() -> None:
    files, rest_from = plan_kline_archives(
        "usdm", "BTCUSDT", "1M", to_ms("2024-11-15"), to_ms("2025-03-01"), to_ms("2025-02-18")
    )
    assert [f.name for f in files] == [
        "BTCUSDT-1mo-2024-11.zip", "BTCUSDT-1mo-2024-12.zip", "BTCUSDT-1mo-2025-01.zip"
    ]
    assert files[0].path.startswith("/data/futures/um/monthly/klines/BTCUSDT/1mo/")
    assert files[0].start == to_ms("2024-11-15")  # the file is cut to the range
    assert rest_from == to_ms("2025-02-01")  # no daily files for 1M candles
    files, rest_from = plan_kline_archives(
        "coinm", "BTCUSD_PERP", "1s", to_ms("2025-02-16"), to_ms("2025-02-20"), to_ms("2025-02-18")
    )
    assert [f.name for f in files] == [
        "BTCUSD_PERP-1s-2025-02-16.zip", "BTCUSD_PERP-1s-2025-02-17.zip"  # 1s: days only
    ]
    assert rest_from == to_ms("2025-02-18")


def test_parse_detects_microseconds_and_headers() -> None:
    ms = parse_klines_csv(zipped([row(to_ms("2024-12-31"))]))
    us = parse_klines_csv(zipped([row(to_ms("2025-01-01"), unit=1000)]))
    futures = parse_klines_csv(zipped([row(to_ms("2025-01-01"))], header=True))
    assert ms == [rest_row(to_ms("2024-12-31"))]
    assert us == [rest_row(to_ms("2025-01-01"))]
    assert futures == [rest_row(to_ms("2025-01-01"))]
    trades = parse_agg_trades_csv(zipped([[5, "1.0", "2.0", 9, 9, 1735689600000123, "True", "True"]]))
    assert trades == [
        {"a": 5, "p": "1.0", "q": "2.0", "f": 9, "l": 9, "T": 1735689600000, "m": True, "M": True}
    ]


async def test_archives_and_rest_join_without_gap_or_duplicate(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = serve_rest(mock)
    base = "/data/spot/monthly/klines/BTCUSDT/1d"
    publish(mock, f"{base}/BTCUSDT-1d-2024-12.zip", zipped(month_rows(2024, 12)))
    publish(mock, f"{base}/BTCUSDT-1d-2025-01.zip", zipped(month_rows(2025, 1, unit=1000)))
    daily = "/data/spot/daily/klines/BTCUSDT/1d"
    for day in ("01", "02"):
        publish(mock, f"{daily}/BTCUSDT-1d-2025-02-{day}.zip",
                zipped([row(to_ms(f"2025-02-{day}"), unit=1000)]))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2025-02-03T12:00:00Z"))
    progress = Progress()
    rows = await _download(start="2024-12-10", end="2025-02-04", progress=progress)
    assert [r[0] for r in rows] == list(range(to_ms("2024-12-10"), to_ms("2025-02-04"), DAY))
    assert rows == [rest_row(t) for t in range(to_ms("2024-12-10"), to_ms("2025-02-04"), DAY)]
    assert (progress.archives_done, progress.pages_done) == (4, 1)  # today comes from REST
    assert rest.call_count == 1
    assert progress.weight == 2


async def test_a_missing_archive_falls_back_to_rest_for_its_span(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = serve_rest(mock)
    base = "/data/spot/monthly/klines/BTCUSDT/1d"
    publish(mock, f"{base}/BTCUSDT-1d-2024-01.zip", zipped(month_rows(2024, 1)))
    mock.get(f"{ROOT}{base}/BTCUSDT-1d-2024-02.zip").respond(404)
    publish(mock, f"{base}/BTCUSDT-1d-2024-03.zip", zipped(month_rows(2024, 3)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-04-01"))
    rows = await _download(start="2024-01-01", end="2024-04-01")
    assert [r[0] for r in rows] == list(range(to_ms("2024-01-01"), to_ms("2024-04-01"), DAY))
    asked = dict(rest.calls.last.request.url.params)
    assert (int(asked["startTime"]), int(asked["endTime"])) == (
        to_ms("2024-02-01"), to_ms("2024-03-01") - 1  # exactly February
    )
    assert rest.call_count == 1
    with pytest.raises(ArchiveNotFoundError, match=r"BTCUSDT-1d-2024-02\.zip"):
        await _download(start="2024-01-01", end="2024-04-01", source="archive")


async def test_a_checksum_mismatch_is_an_error_naming_the_file(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_rest(mock)
    good = zipped(month_rows(2024, 5))
    path = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip"
    publish(mock, path, good[:-10] + b"x" * 10, checksum=good)
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    with pytest.raises(ArchiveChecksumError) as info:
        await _download(start="2024-05-01", end="2024-06-01")
    assert info.value.name == "BTCUSDT-1d-2024-05.zip"
    assert "BTCUSDT-1d-2024-05.zip" in str(info.value)


async def test_the_cache_makes_a_second_run_download_nothing(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    serve_rest(mock)
    path = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip"
    route = publish(mock, path, zipped(month_rows(2024, 5)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    first = await _download(start="2024-05-01", end="2024-06-01", cache_dir=tmp_path)
    assert (tmp_path / path.lstrip("/")).exists()
    second = await _download(start="2024-05-01", end="2024-06-01", cache_dir=tmp_path)
    assert first == second
    assert len(first) == 31
    assert route.call_count == 1
    assert len(mock.calls) == 2  # the zip and its CHECKSUM, once


def _crc_broken(data: bytes) -> bytes:
    """``data`` with both CRC-32 fields flipped: the zip opens, its CSV fails the CRC."""
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    broken = bytearray(data)
    for at in (info.header_offset + 14, data.rindex(b"PK\x01\x02") + 16):
        broken[at] ^= 0xFF
    return bytes(broken)


@pytest.mark.parametrize("damage", ["truncated", "crc", "garbage"])
@pytest.mark.parametrize("to_file", [False, True])
async def test_a_corrupt_cached_archive_is_fetched_again(
    damage: str,
    to_file: bool,
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    serve_rest(mock)
    path = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip"
    good = zipped(month_rows(2024, 5))
    route = publish(mock, path, good)
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    cache = tmp_path / "cache"
    first = await _download(start="2024-05-01", end="2024-06-01", cache_dir=cache)
    cached = cache / path.lstrip("/")
    damaged = {"truncated": good[: len(good) // 2], "crc": _crc_broken(good), "garbage": b"x" * 99}
    cached.write_bytes(damaged[damage])  # a torn write, a bad disk
    if to_file:
        await _to_file(tmp_path / "out.csv", start="2024-05-01", end="2024-06-01", cache_dir=cache)
        lines = (tmp_path / "out.csv").read_text().splitlines()[1:]
        assert [line.split(",") for line in lines] == [[str(v) for v in r] for r in first]
    else:
        again = await _download(start="2024-05-01", end="2024-06-01", cache_dir=cache)
        assert again == first
    assert route.call_count == 2  # fetched again, once
    assert cached.read_bytes() == good  # and the cache holds the good copy again


async def test_an_archive_corrupt_even_when_fetched_again_is_an_error_naming_it(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    serve_rest(mock)
    path = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip"
    bad = _crc_broken(zipped(month_rows(2024, 5)))
    route = publish(mock, path, bad)  # its CHECKSUM matches: the publisher's copy is bad
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    cache = tmp_path / "cache"
    cached = cache / path.lstrip("/")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(bad)
    with pytest.raises(ArchiveCorruptError) as info:
        await _download(start="2024-05-01", end="2024-06-01", cache_dir=cache)
    assert info.value.name == "BTCUSDT-1d-2024-05.zip"
    assert "BTCUSDT-1d-2024-05.zip" in str(info.value)
    assert str(cached) in str(info.value)
    assert route.call_count == 1  # the cached copy, then one fresh fetch
    assert not cached.exists()  # a damaged copy is never kept
    # Without a cache: the fresh copy alone, and the same error.
    with pytest.raises(ArchiveCorruptError, match=r"BTCUSDT-1d-2024-05\.zip cannot be unzipped"):
        await _download(start="2024-05-01", end="2024-06-01")


async def test_unzip_and_parse_run_in_a_worker_thread(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    serve_rest(mock)
    publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip",
            zipped(month_rows(2024, 5)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    threads: dict[str, int] = {}

    def spy(name: str) -> Any:
        real = getattr(archives, name)

        def wrapper(arg: Any) -> Any:
            threads[name] = threading.get_ident()
            return real(arg)

        return wrapper

    for name in ("_csv_text", "parse_klines_text", "_unzip_block"):
        monkeypatch.setattr(archives, name, spy(name))
    await _download(start="2024-05-01", end="2024-06-01")  # unzip, then parse
    assert set(threads) == {"_csv_text", "parse_klines_text"}
    await _to_file(tmp_path / "may.csv", start="2024-05-01", end="2024-06-01")  # unzip only
    assert set(threads) == {"_csv_text", "parse_klines_text", "_unzip_block"}
    assert threading.get_ident() not in threads.values()


async def test_the_api_key_never_goes_to_the_archive_host(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_rest(mock)
    route = publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip",
                    zipped(month_rows(2024, 5)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    async with BinanceClient("my-key", limiter=RateLimiter(learn_limits=False)) as c:
        await download_klines(c, "BTCUSDT", "1d", "2024-05-01", "2024-06-01", archive_url=ROOT)
    assert "X-MBX-APIKEY" not in route.calls.last.request.headers


def test_agg_trade_archives_only_for_whole_days_and_months() -> None:
    from aiocea_trio.archives import plan_agg_trade_archives

    today = to_ms("2026-01-01")
    files, rest_from = plan_agg_trade_archives(
        "spot", "BTCUSDT", to_ms("2024-04-29T10:00:00Z"), to_ms("2024-07-03T05:00:00Z"), today
    )
    assert [f.name for f in files] == [
        "BTCUSDT-aggTrades-2024-04-30.zip",
        "BTCUSDT-aggTrades-2024-05.zip",
        "BTCUSDT-aggTrades-2024-06.zip",
        "BTCUSDT-aggTrades-2024-07-01.zip",
        "BTCUSDT-aggTrades-2024-07-02.zip",
    ]
    # The partial first and last days come from the REST API, not from whole files.
    assert files[0].start == to_ms("2024-04-30")
    assert rest_from == to_ms("2024-07-03")
    # Half an hour never fetches a day's (or a month's) worth of trades.
    assert plan_agg_trade_archives(
        "usdm", "BTCUSDT", to_ms("2024-05-01T10:45:00Z"), to_ms("2024-05-01T11:15:00Z"), today
    ) == ([], to_ms("2024-05-01T10:45:00Z"))


async def test_agg_trades_join_rest_head_archive_day_and_rest_tail(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiocea_trio import download_agg_trades

    hour = 3_600_000
    day0 = to_ms("2024-05-02")
    # One trade every hour, ids counting hours since 2024-05-01.
    def trade(t: int) -> dict[str, Any]:
        a = (t - to_ms("2024-05-01")) // hour
        return {"a": a, "p": "1.0", "q": "2.0", "f": a, "l": a, "T": t, "m": False, "M": True}

    def rest(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        lo, hi = int(q["startTime"]), int(q["endTime"])
        return httpx.Response(200, json=[trade(t) for t in range(-(-lo // hour) * hour, hi + 1, hour)])

    route = mock.get("https://api.binance.com/api/v3/aggTrades").mock(side_effect=rest)
    rows = [[t["a"], "1.0", "2.0", t["a"], t["a"], t["T"], "False", "True"]
            for t in (trade(day0 + h * hour) for h in range(24))]
    publish(mock, "/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-05-02.zip",
            zipped(rows))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-05-03T12:00:00Z"))
    async with client() as c:
        trades = await download_agg_trades(
            c, "BTCUSDT", "2024-05-01T20:00:00Z", "2024-05-03T03:00:00Z", archive_url=ROOT
        )
    times = [t["T"] for t in trades]
    assert times == list(range(to_ms("2024-05-01T20:00:00Z"), to_ms("2024-05-03T03:00:00Z"), hour))
    assert [t["a"] for t in trades] == sorted({t["a"] for t in trades})
    asked = sorted(int(dict(c.request.url.params)["startTime"]) for c in route.calls)
    assert asked[0] == to_ms("2024-05-01T20:00:00Z")  # the partial first day over REST
    assert all(not day0 <= t < day0 + 24 * hour for t in asked)  # the whole day from its file


def csv_bytes(rows: list[list[Any]], *, header: bool = False, end: bytes = b"\n") -> bytes:
    with zipfile.ZipFile(io.BytesIO(zipped(rows, header=header))) as archive:
        return archive.read("x.csv").replace(b"\n", end)


def test_a_block_is_the_csv_the_rest_rows_make() -> None:
    days = [to_ms("2024-12-31"), to_ms("2025-01-01")]
    expected = "".join(",".join(str(v) for v in rest_row(t)) + "\n" for t in days).encode()
    for data in (
        csv_bytes([row(t) for t in days]),  # milliseconds
        csv_bytes([row(t, unit=1000) for t in days]),  # microseconds (spot from 2025)
        csv_bytes([row(t) for t in days], header=True),  # futures files' header line
        csv_bytes([row(t) for t in days], end=b"\r\n"),
        csv_bytes([row(t) for t in days]).rstrip(b"\n"),  # no newline at the end
    ):
        block = kline_block(data)
        assert block is not None
        assert (block.data, block.first, block.last, len(block)) == (expected, *days, 2)
        assert block.rows() == [rest_row(t) for t in days]
        assert "1.5" not in repr(block)  # no data in the repr
        assert "count=2" in repr(block)


def test_only_plain_twelve_column_files_become_blocks() -> None:
    rows = [row(to_ms("2024-05-01")), row(to_ms("2024-05-02"))]
    assert kline_block(csv_bytes([r[:11] for r in rows])) is None  # no "ignore" column
    assert kline_block(csv_bytes(rows).replace(b"1.5", b'"1.5"')) is None  # quoted fields
    assert kline_block(csv_bytes(rows).replace(b"\n", b"\n\n", 1)) is None  # an empty line
    assert kline_block(b"") is None
    assert kline_block(csv_bytes(rows).replace(str(to_ms("2024-05-02")).encode(), b"x")) is None


def test_unzip_checks_the_size_and_crc_of_what_it_inflates() -> None:
    data = zipped([row(to_ms("2024-05-01"))])
    assert archives._csv_bytes(data).startswith(str(to_ms("2024-05-01")).encode())
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    crc_at = info.header_offset + 14  # the CRC-32 field of the local header ...
    central = data.rindex(b"PK\x01\x02") + 16  # ... and of the central directory
    broken = bytearray(data)
    for at in (crc_at, central):
        broken[at] ^= 0xFF
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        archives._csv_bytes(bytes(broken))


@pytest.mark.parametrize("inflate", ["zlib", "zlib_ng"])
def test_either_inflater_gives_the_same_csv(inflate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = pytest.importorskip(inflate)
    if inflate == "zlib_ng":
        module = module.zlib_ng
    monkeypatch.setattr(archives, "_inflate", module.decompress)
    rows = month_rows(2024, 5)
    assert archives._csv_bytes(zipped(rows)).decode().splitlines() == [
        ",".join(str(v) for v in r) for r in rows
    ]


async def _to_file(path: Path, **kwargs: Any) -> int:
    async with client() as c:
        return await download_klines_to_file(
            c, path, "BTCUSDT", "1d", kwargs.pop("start"), kwargs.pop("end"), archive_url=ROOT,
            **kwargs,
        )


async def test_a_file_download_writes_whole_archives_without_building_rows(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    serve_rest(mock)
    base = "/data/spot/monthly/klines/BTCUSDT/1d"
    publish(mock, f"{base}/BTCUSDT-1d-2024-12.zip", zipped(month_rows(2024, 12)))
    publish(mock, f"{base}/BTCUSDT-1d-2025-01.zip", zipped(month_rows(2025, 1, unit=1000)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2025-02-03T12:00:00Z"))
    parsed: list[int] = []
    real_parse = archives.parse_klines_text
    monkeypatch.setattr(
        archives, "parse_klines_text", lambda text: parsed.append(1) or real_parse(text)
    )
    written = await _to_file(tmp_path / "auto.csv", start="2024-12-01", end="2025-02-01")
    assert parsed == []  # two whole months, written as text
    await _to_file(tmp_path / "rest.csv", start="2024-12-01", end="2025-02-01", source="rest")
    auto, rest = (tmp_path / "auto.csv").read_bytes(), (tmp_path / "rest.csv").read_bytes()
    assert auto == rest
    assert written == 62 == auto.count(b"\n") - 1  # (the header line)
    # A month cut by the range is parsed and trimmed; the rest of the file is text.
    await _to_file(tmp_path / "cut.csv", start="2024-12-10", end="2025-02-01")
    assert parsed == [1]
    tail = (tmp_path / "cut.csv").read_bytes().split(b"\n", 1)[1]
    assert tail == auto[auto.index(str(to_ms("2024-12-10")).encode()):]


async def test_a_gap_inside_an_archive_is_reported_in_a_file_download(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    serve_rest(mock)
    may = [r for r in month_rows(2024, 5) if r[0] != to_ms("2024-05-10")]
    publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip", zipped(may))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    written = await _to_file(tmp_path / "may.csv", start="2024-05-01", end="2024-06-01")
    assert written == 30
    lines = (tmp_path / "may.csv").read_text().splitlines()[1:]
    assert lines == [",".join(str(v) for v in r) for r in may]
    assert f"no klines from {to_ms('2024-05-10')} to {to_ms('2024-05-11')}" in caplog.text
    assert isinstance(kline_block(csv_bytes(may)), KlineBlock)


def test_collector_pauses_nest_and_restore_the_state_they_found() -> None:
    import gc

    from aiocea_trio.archives import collector_paused

    assert gc.isenabled()
    with collector_paused():
        collector_paused.begin()  # a second download, in another task
        assert not gc.isenabled()
        with collector_paused():  # a file parsed in a worker thread
            assert not gc.isenabled()
        assert not gc.isenabled()
        collector_paused.end()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # the application's own choice is kept
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_a_download_resumes_the_collector_even_when_it_fails(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    serve_rest(mock)
    mock.get(f"{ROOT}/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip").respond(404)
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    with pytest.raises(ArchiveNotFoundError):
        await _download(start="2024-05-01", end="2024-06-01", source="archive")
    assert gc.isenabled()
    rows = await _download(start="2024-05-01", end="2024-06-01")  # 404: REST serves May
    assert len(rows) == 31
    assert gc.isenabled()


# -- issue 14: the client's retry policy, the block stream, pause_gc ----------------------


async def test_archives_are_retried_by_the_clients_retry_policy(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiocea_trio import BinanceResponseError
    from aiocea_trio.retries import RetryPolicy

    serve_rest(mock)
    route = mock.get(f"{ROOT}/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip")
    route.respond(503, text="busy")
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    async with BinanceClient(limiter=RateLimiter(learn_limits=False), retries=1) as c:
        assert c.retry_policy == RetryPolicy(attempts=2, wait_jitter=0.2)
        with pytest.raises(BinanceResponseError, match="503"):
            await download_klines(c, "BTCUSDT", "1d", "2024-05-01", "2024-06-01", archive_url=ROOT)
    assert route.call_count == 2  # the client's two attempts, not ARCHIVE_RETRY's four


async def test_the_block_stream_sends_whole_files_as_blocks_and_checks_arguments_at_once(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiocea_trio import open_kline_block_stream

    rest = serve_rest(mock)
    publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip",
            zipped(month_rows(2024, 5)))
    now = to_ms("2024-06-01T12:00:00Z")  # May from its file, June 1 from the REST API
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: now)
    async with client() as c:
        with pytest.raises(ValueError, match="after end"):
            open_kline_block_stream(c, "BTCUSDT", "1d", "2024-06-01", "2024-05-01")  # not entered
        stream = open_kline_block_stream(
            c, "BTCUSDT", "1d", "2024-05-01", "2024-06-02", archive_url=ROOT
        )
        assert rest.call_count == 0  # nothing is asked before the block is entered
        async with stream as batches:
            got = [batch async for batch in batches]
        rows = await download_klines(
            c, "BTCUSDT", "1d", "2024-05-01", "2024-06-02", source="rest"
        )
    assert isinstance(got[0], KlineBlock)
    assert got[0].count == 31
    assert all(isinstance(b, list) for b in got[1:])
    as_rows = [r for b in got for r in (b.rows() if isinstance(b, KlineBlock) else b)]
    assert as_rows == list(rows)


@pytest.mark.parametrize("pause_gc", [True, False])
async def test_pause_gc_false_never_pauses_the_collector(
    pause_gc: bool,
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_rest(mock)
    publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip",
            zipped(month_rows(2024, 5)))
    now = to_ms("2024-06-01T12:00:00Z")
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: now)
    pauses: list[str] = []
    real_begin = type(archives.collector_paused).begin

    def begin(self: Any) -> None:
        pauses.append(threading.current_thread().name)
        real_begin(self)

    monkeypatch.setattr(type(archives.collector_paused), "begin", begin)
    rows = await _download(start="2024-05-01", end="2024-06-02", pause_gc=pause_gc)
    assert len(rows) == 32
    # Paused for the download's archive part and for the file's parse (in a worker thread).
    assert len(pauses) == (2 if pause_gc else 0)


# -- issue 16: typed frames read archives in the fetch job, into preallocated columns ------


async def _frame(library: str = "pandas", **kwargs: Any) -> Any:
    from aiocea_trio import download_klines_frame

    async with client() as c:
        return await download_klines_frame(
            c, "BTCUSDT", "1d", kwargs.pop("start"), kwargs.pop("end"), archive_url=ROOT,
            library=library, **kwargs,
        )


async def test_a_frame_from_archives_equals_the_rows_through_gaps_duplicates_and_units(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    serve_rest(mock)
    base = "/data/spot/monthly/klines/BTCUSDT/1d"
    # A gap inside November; December repeats November 30 (a duplicate) and has a header
    # line; January is in microseconds; February 1 from REST (it is today).
    november = [r for r in month_rows(2024, 11) if r[0] != to_ms("2024-11-10")]
    december = [row(to_ms("2024-11-30")), *month_rows(2024, 12)]
    publish(mock, f"{base}/BTCUSDT-1d-2024-11.zip", zipped(november))
    publish(mock, f"{base}/BTCUSDT-1d-2024-12.zip", zipped(december, header=True))
    publish(mock, f"{base}/BTCUSDT-1d-2025-01.zip", zipped(month_rows(2025, 1, unit=1000)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2025-02-01T12:00:00Z"))
    span = {"start": "2024-11-05", "end": "2025-03-01"}  # November cut; March not yet
    rows = await _download(**span)
    as_rows = _count_rows_fallbacks(monkeypatch)
    gaps: list[Any] = []
    frame = await _frame(gaps=gaps, **span)
    assert len(frame) == len(rows) == 30 - 4 - 1 + 31 + 31 + 1  # fewer than preallocated
    assert frame.equals(rows.to_pandas())
    assert [(g.start, g.end) for g in gaps] == [
        (to_ms("2024-11-10"), to_ms("2024-11-11")), (to_ms("2025-02-02"), to_ms("2025-03-01"))
    ]
    assert "no klines from" in caplog.text
    polars = await _frame("polars", **span)
    assert polars.equals(rows.to_polars())
    assert polars.schema["open_time"] == pl.Datetime("ms", "UTC")
    table = await _frame("arrow", **span)
    assert table.equals(rows.to_arrow())
    assert {column.num_chunks for column in table.columns} == {1}  # contiguous, wrapped
    exact = await _frame(decimal=True, **span)  # the simpler path, still correct
    assert exact.equals(rows.to_pandas(decimal=True))
    assert as_rows == []  # every file was read by pyarrow


def _count_rows_fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files a typed download had to read as rows."""
    names: list[str] = []
    real = archives.ArchiveHost.rows_in_span

    async def counted(self: Any, csv: bytes, file: Any) -> Any:
        names.append(file.name)
        return await real(self, csv, file)

    monkeypatch.setattr(archives.ArchiveHost, "rows_in_span", counted)
    return names


async def test_an_unusual_archive_is_read_as_rows_in_a_frame(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pandas")
    serve_rest(mock)
    eleven = [r[:11] for r in month_rows(2024, 5)]  # no "ignore" column
    publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip", zipped(eleven))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    as_rows = _count_rows_fallbacks(monkeypatch)
    frame = await _frame(start="2024-05-01", end="2024-06-01")
    rows = await _download(start="2024-05-01", end="2024-06-01", source="rest")
    assert frame.equals(rows.to_pandas())
    assert as_rows == ["BTCUSDT-1d-2024-05.zip"]


def test_preallocated_columns_grow_and_are_wrapped_without_a_copy() -> None:
    pa = pytest.importorskip("pyarrow")
    from aiocea_trio.frames import _Columns, kline_schema, rows_to_arrow

    first = rows_to_arrow([row(to_ms("2024-05-01") + i * DAY) for i in range(3)], "klines")
    second = rows_to_arrow([row(to_ms("2024-05-04") + i * DAY) for i in range(4)], "klines")
    columns = _Columns(kline_schema(), 2)  # fewer than come: it grows
    columns.append(first.slice(1))
    columns.append(second)
    table = columns.table()
    assert table.equals(pa.concat_tables([first.slice(1), second]).combine_chunks())
    assert {c.num_chunks for c in table.columns} == {1}


async def test_the_typed_stream_reads_files_in_the_fetch_jobs_and_keeps_their_order(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pa = pytest.importorskip("pyarrow")
    from aiocea_trio import open_kline_batch_stream

    serve_rest(mock)
    base = "/data/spot/monthly/klines/BTCUSDT/1d"
    months = [(2024, m) for m in range(1, 7)]
    for year, month in months:
        publish(mock, f"{base}/BTCUSDT-1d-{year}-{month:02d}.zip", zipped(month_rows(year, month)))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    # Later files finish first: the first one is read slowest.
    import aiocea_trio.frames as frames

    real_read = frames._read_archive
    threads: set[int] = set()

    def slow_first(data: bytes, file: Any, schema: Any) -> Any:
        threads.add(threading.get_ident())
        if file.name.endswith("-01.zip"):
            import time

            time.sleep(0.05)
        return real_read(data, file, schema)

    monkeypatch.setattr(frames, "_read_archive", slow_first)
    opens: list[int] = []
    async with client() as c:
        stream = open_kline_batch_stream(
            c, "BTCUSDT", "1d", "2024-01-01", "2024-07-01", archive_url=ROOT, max_concurrency=3
        )
        async with stream as batches:
            async for batch in batches:
                opens += batch.column("open_time").cast(pa.int64()).to_pylist()
    assert opens == list(range(to_ms("2024-01-01"), to_ms("2024-07-01"), DAY))
    assert threading.get_ident() not in threads


# -- issue 16: each library's own reader, archives streamed and mapped --------------------

LIBRARIES = ["pandas", "polars", "arrow"]


def _rows_as(rows: Any, library: str) -> Any:
    return {"pandas": rows.to_pandas, "polars": rows.to_polars, "arrow": rows.to_arrow}[library]()


def _same(frame: Any, rows: Any, library: str) -> bool:
    return bool(frame.equals(_rows_as(rows, library)))


UNUSUAL = {
    "eleven columns": [r[:11] for r in month_rows(2024, 5)],
    "thirteen columns": [[*r, "0"] for r in month_rows(2024, 5)],
    "an empty field": [r if i != 3 else [*r[:4], "", *r[5:]] for i, r in enumerate(month_rows(2024, 5))],
    "a text in a number": [r if i != 3 else [*r[:4], "n/a", *r[5:]] for i, r in enumerate(month_rows(2024, 5))],
}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("unusual", list(UNUSUAL))
async def test_each_reader_hands_an_unusual_file_to_the_rows_path(
    library: str,
    unusual: str,
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip(library if library != "arrow" else "pyarrow")
    serve_rest(mock)
    path = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip"
    publish(mock, path, zipped(UNUSUAL[unusual]))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    as_rows = _count_rows_fallbacks(monkeypatch)
    rows = await _download(start="2024-05-01", end="2024-06-01")
    try:
        want = _rows_as(rows, library)
    except ValueError:  # not klines one can type: the frame says so too
        with pytest.raises(ValueError, match=r"fields|convert|float|parse|Invalid") as info:
            await _frame(library, start="2024-05-01", end="2024-06-01")
        assert "zip()" not in str(info.value)
    else:
        assert (await _frame(library, start="2024-05-01", end="2024-06-01")).equals(want)
    assert as_rows == ["BTCUSDT-1d-2024-05.zip"]


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_unsorted_partial_month_is_read_as_rows_by_every_reader(
    library: str,
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip(library if library != "arrow" else "pyarrow")
    serve_rest(mock)
    shuffled = month_rows(2024, 5)
    shuffled[3], shuffled[20] = shuffled[20], shuffled[3]
    publish(mock, "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip", zipped(shuffled))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    as_rows = _count_rows_fallbacks(monkeypatch)
    span = {"start": "2024-05-10", "end": "2024-06-01"}  # a partial month: cut by open time
    rows = await _download(**span)
    frame = await _frame(library, **span)
    assert _same(frame, rows, library)
    assert as_rows == ["BTCUSDT-1d-2024-05.zip"]


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_corrupt_archive_fails_a_frame_naming_it_with_every_reader(
    library: str,
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pandas' parser reads the CSV as it is inflated: the CRC fails at its end, inside
    # the parser's read, and must still come out as the archive's error.
    pytest.importorskip(library if library != "arrow" else "pyarrow")
    serve_rest(mock)
    path = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-05.zip"
    publish(mock, path, _crc_broken(zipped(month_rows(2024, 5))))
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2024-07-01"))
    with pytest.raises(ArchiveCorruptError, match=r"BTCUSDT-1d-2024-05\.zip"):
        await _frame(library, start="2024-05-01", end="2024-06-01")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_archives_received_into_memory_maps_give_the_same_frames_and_cache(
    library: str,
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip(library if library != "arrow" else "pyarrow")
    serve_rest(mock)
    base = "/data/spot/monthly/klines/BTCUSDT/1d"
    months = [(2024, m, 1) for m in range(3, 13)] + [(2025, 1, 1000)]  # 2025: microseconds
    published: dict[str, bytes] = {}  # a zip holds its time of making: keep the very bytes
    for year, month, unit in months:
        path = f"{base}/BTCUSDT-1d-{year}-{month:02d}.zip"
        published[path] = zipped(month_rows(year, month, unit), header=month == 4)
        publish(mock, path, published[path])
    monkeypatch.setattr(BinanceClient, "server_time_ms", lambda self: to_ms("2025-02-01"))
    span = {"start": "2024-03-05", "end": "2025-02-01"}  # March cut
    rows = await _download(source="rest", **span)
    mapped: list[int] = []
    real_body = archives._body

    async def body(response: httpx.Response) -> Any:
        data, digest = await real_body(response)
        if response.url.path.endswith(".zip"):
            mapped.append(isinstance(data, archives.mmap.mmap))
        return data, digest

    monkeypatch.setattr(archives, "_body", body)
    monkeypatch.setattr(archives, "_MAPPED_FROM", 1)  # these small files too
    cache = tmp_path / "cache"
    frame = await _frame(library, cache_dir=cache, **span)
    assert _same(frame, rows, library)
    assert mapped == [True] * len(months)
    for path, data in published.items():  # the cache holds each file's exact bytes
        assert (cache / path.lstrip("/")).read_bytes() == data
    again = await _frame(library, cache_dir=cache, **span)  # from the cache: no map
    assert _same(again, rows, library)


async def test_a_mapped_body_shorter_than_announced_is_a_transport_error(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archives, "_MAPPED_FROM", 1)
    data = zipped(month_rows(2024, 5))
    announced = {"Content-Length": str(len(data) + 10)}
    response = httpx.Response(200, headers=announced, stream=httpx.ByteStream(data))
    with pytest.raises(httpx.RemoteProtocolError, match="announced"):
        await archives._body(response)
    response = httpx.Response(
        200, headers={"Content-Length": str(len(data))}, stream=httpx.ByteStream(data)
    )
    got, digest = await archives._body(response)
    assert isinstance(got, archives.mmap.mmap)
    assert got[:] == data
    assert digest == hashlib.sha256(data).hexdigest()


def test_the_csv_stream_gives_the_csv_whatever_the_read_sizes() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    rows = [row(to_ms("2024-01-01") + i * 60_000) for i in range(5_000)]
    data = zipped(rows)
    whole = archives.archive_csv(data)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(min_value=-1, max_value=300_000), min_size=1, max_size=30))
    def reads(sizes: list[int]) -> None:
        stream = archives.CsvStream(data)
        assert whole.startswith(stream.peek())
        got = b"".join(stream.read(size) for size in sizes)
        got += stream.read()
        assert got == whole
        assert stream.read(10) == b""

    reads()
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        archives.CsvStream(_crc_broken(data)).read()


def _python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_polars_frame_never_imports_pyarrow() -> None:
    pytest.importorskip("polars")
    out = _python(
        "import sys, trio\n"
        "from aiocea_trio import download_klines_frame\n"
        "from aiocea_trio.sim import SimExchange\n"
        "async def main():\n"
        "    async with SimExchange(start_time_ms=1_717_200_000_000).client() as c:\n"
        "        await c.sync_time()\n"
        "        f = await download_klines_frame(c, 'BTCUSDT', '1h', '2024-03-01',"
        " '2024-06-01', library='polars')\n"
        "        print(f.height, 'pyarrow' in sys.modules)\n"
        "trio.run(main)\n"
    )
    assert out == f"{92 * 24 - 1} False" or out == f"{92 * 24} False", out


def test_importing_the_package_leaves_cryptography_until_a_key_needs_it() -> None:
    out = _python(
        "import sys, aiocea_trio\n"
        "print('cryptography' in sys.modules)\n"
        "aiocea_trio.HmacSigner('s').sign('a=1')\n"
        "print('cryptography' in sys.modules)\n"
        "from cryptography.hazmat.primitives.asymmetric import ed25519\n"
        "key = ed25519.Ed25519PrivateKey.generate()\n"
        "print(len(aiocea_trio.Ed25519Signer(key).sign('a=1')) > 40)\n"
    )
    assert out.split() == ["False", "False", "True"]
