"""The simulator's data.binance.vision archives: the same rows as its REST API, end to end.

Files are fetched in-process (``sim.transport()``) and compared with the REST endpoints field
by field, as text: a zip's CSV line is the REST row joined with commas (times in microseconds
in spot files from 2025). tests/test_archives.py stages the client's failure paths with respx.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aiocea_trio.archives import ArchiveChecksumError, ArchiveFile, fetch_archive
from aiocea_trio.history import Progress, download_klines, download_klines_to_file, to_ms
from aiocea_trio.sim import SimExchange, default_symbols
from aiocea_trio.sim.archives import AGG_TRADES_HEADER, KLINES_HEADER

NOW = to_ms("2025-01-03T10:30:00Z")  # the simulator's "today" is 2025-01-03
KLINES = {"spot": "/api/v3/klines", "usdm": "/fapi/v1/klines", "coinm": "/dapi/v1/klines"}
AGG = {"spot": "/api/v3/aggTrades", "usdm": "/fapi/v1/aggTrades", "coinm": "/dapi/v1/aggTrades"}
DIRS = {"spot": "spot", "usdm": "futures/um", "coinm": "futures/cm"}
SYMBOLS = {"spot": "BTCUSDT", "usdm": "BTCUSDT", "coinm": "BTCUSD_PERP"}
WEIGHT = "x-mbx-used-weight-1m"


def kline_path(market: str, symbol: str, interval: str, date: str) -> str:
    period = "daily" if date.count("-") == 2 else "monthly"
    label = "1mo" if interval == "1M" else interval
    return f"/data/{DIRS[market]}/{period}/klines/{symbol}/{label}/{symbol}-{label}-{date}.zip"


def agg_path(market: str, symbol: str, date: str) -> str:
    period = "daily" if date.count("-") == 2 else "monthly"
    return f"/data/{DIRS[market]}/{period}/aggTrades/{symbol}/{symbol}-aggTrades-{date}.zip"


def csv_lines(data: bytes) -> tuple[str, list[str]]:
    """The single CSV's name and lines (which must end with a newline)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode()
    assert text.endswith("\n")
    assert "\r" not in text
    return name, text[:-1].split("\n")


def as_csv(row: list[Any]) -> str:
    return ",".join(str(v) for v in row)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with open_http(SimExchange(start_time_ms=NOW)) as client:
        yield client


def open_http(sim: SimExchange) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sim.transport(), base_url="http://sim.localhost")


async def rest_klines(
    http: httpx.AsyncClient, market: str, symbol: str, interval: str, start: int, end: int
) -> list[list[Any]]:
    """Every REST kline opening in [start, end), oldest first, page by page."""
    rows: list[list[Any]] = []
    while True:
        params = {"symbol": symbol, "interval": interval, "startTime": start, "limit": 1000}
        if market != "coinm":  # (COIN-M answers the newest rows when given both bounds)
            params["endTime"] = end - 1
        page = [r for r in (await http.get(KLINES[market], params=params)).json() if r[0] < end]
        rows += page
        if len(page) < 1000:
            return rows
        start = page[-1][0] + 1


# -- contents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "interval", "date", "start", "end"),
    [
        ("spot", "1h", "2024-02", "2024-02-01", "2024-03-01"),
        ("usdm", "1h", "2024-02", "2024-02-01", "2024-03-01"),
        ("coinm", "1h", "2024-02", "2024-02-01", "2024-03-01"),
        ("spot", "1m", "2024-06-30", "2024-06-30", "2024-07-01"),
        ("usdm", "1m", "2024-06-30", "2024-06-30", "2024-07-01"),
        ("coinm", "1m", "2024-06-30", "2024-06-30", "2024-07-01"),
        ("spot", "1M", "2024-05", "2024-05-01", "2024-06-01"),
        ("coinm", "1M", "2024-05", "2024-05-01", "2024-06-01"),
        ("spot", "1s", "2024-06-30", "2024-06-30T23:30:00", "2024-07-01"),  # the last 1800
        ("usdm", "1w", "2024-04", "2024-04-01", "2024-05-01"),
    ],
)
async def test_klines_files_hold_the_rest_rows(
    http: httpx.AsyncClient,
    market: str,
    interval: str,
    date: str,
    start: str,
    end: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    symbol = SYMBOLS[market]
    path = kline_path(market, symbol, interval, date)
    response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    name, lines = csv_lines(response.content)
    assert name == path.rsplit("/", 1)[1].replace(".zip", ".csv")
    if market == "spot":
        assert lines[0][0].isdigit()  # no header
    else:
        assert lines[0] == KLINES_HEADER
        lines = lines[1:]
    rest = await rest_klines(http, market, symbol, interval, to_ms(start), to_ms(end))
    assert rest
    assert lines[-len(rest) :] == [as_csv(r) for r in rest]
    if interval != "1s":
        assert len(lines) == len(rest)  # the whole period, nothing else
    assert all(len(line.split(",")) == 12 for line in lines)


async def test_spot_times_turn_to_microseconds_in_2025_futures_do_not(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    for day, unit in (("2024-12-31", 1), ("2025-01-01", 1000), ("2025-01-02", 1000)):
        _, lines = csv_lines((await http.get(kline_path("spot", "BTCUSDT", "1h", day))).content)
        rest = await rest_klines(http, "spot", "BTCUSDT", "1h", to_ms(day), to_ms(day) + 86_400_000)
        expected = [as_csv([r[0] * unit, *r[1:6], (r[6] + 1) * unit - 1, *r[7:]]) for r in rest]
        assert lines == expected
        assert len(lines[0].split(",")[0]) == (16 if unit == 1000 else 13)
    _, lines = csv_lines(
        (await http.get(kline_path("usdm", "BTCUSDT", "1h", "2025-01-01"))).content
    )
    assert lines[0] == KLINES_HEADER
    assert lines[1].split(",")[0] == str(to_ms("2025-01-01"))
    assert lines[1].split(",")[6] == str(to_ms("2025-01-01") + 3_600_000 - 1)


async def test_checksum_is_a_sha256sum_line_of_the_zip(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    path = kline_path("usdm", "BTCUSDT", "1h", "2024-07")
    data = (await http.get(path)).content
    checksum = (await http.get(path + ".CHECKSUM")).text
    assert re.fullmatch(r"[0-9a-f]{64}  BTCUSDT-1h-2024-07\.zip\n", checksum)
    assert checksum.split()[0] == hashlib.sha256(data).hexdigest()
    # Deterministic: another simulator with the same seed builds the same bytes.
    async with open_http(SimExchange(start_time_ms=NOW + 86_400_000)) as other:
        assert (await other.get(path)).content == data


async def test_served_over_a_socket(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = SimExchange(start_time_ms=NOW)
    url = await nursery.start(sim.serve, "127.0.0.1", 0)
    path = kline_path("spot", "BTCUSDT", "1m", "2025-01-02")
    async with httpx.AsyncClient(base_url=url) as http:
        data = (await http.get(path)).content
        checksum = (await http.get(path + ".CHECKSUM")).text
        head = await http.head(path)
    assert checksum.split()[0] == hashlib.sha256(data).hexdigest()
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(data)
    _, lines = csv_lines(data)
    assert len(lines) == 1440
    nursery.cancel_scope.cancel()


# -- what is not there --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        kline_path("spot", "BTCUSDT", "1h", "2025-01"),  # this month: not over
        kline_path("spot", "BTCUSDT", "1h", "2025-01-03"),  # today
        kline_path("spot", "BTCUSDT", "1h", "2025-01-04"),  # the future
        kline_path("spot", "NOPEUSDT", "1h", "2024-01"),  # unknown symbol
        kline_path("spot", "BTCUSDT", "7m", "2024-01"),  # unknown interval
        kline_path("spot", "BTCUSDT", "1h", "2024-13"),  # no such month
        kline_path("spot", "BTCUSDT", "1h", "2024-02-30"),  # no such day
        kline_path("usdm", "BTCUSDT", "1s", "2024-02-01"),  # futures have no 1s
        kline_path("usdm", "BTCUSDT", "1h", "2019-08"),  # listed 2019-09-25
        kline_path("spot", "BTCUSDT", "1h", "2017-07-31"),  # listed 2017-08-17
        "/data/spot/monthly/klines/BTCUSDT/1M/BTCUSDT-1M-2024-01.zip",  # the name is 1mo
        "/data/spot/monthly/klines/BTCUSDT/1h/ETHUSDT-1h-2024-01.zip",  # names disagree
        "/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-05.zip",  # daily name
        "/data/spot/weekly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
        "/data/options/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
        "/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.csv",
        agg_path("spot", "BTCUSDT", "2024-05"),  # ~64 million rows: over archive_max_rows
    ],
)
async def test_unpublished_or_unknown_files_are_404(
    http: httpx.AsyncClient, path: str, autojump_clock: trio.testing.MockClock
) -> None:
    assert (await http.get(path)).status_code == 404
    assert (await http.get(path + ".CHECKSUM")).status_code == 404


async def test_files_appear_the_day_after_their_period(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    assert (await http.get(kline_path("spot", "BTCUSDT", "1h", "2025-01-02"))).status_code == 200
    assert (await http.get(kline_path("spot", "BTCUSDT", "1h", "2024-12"))).status_code == 200
    assert (await http.get(kline_path("spot", "BTCUSDT", "1h", "2017-08-17"))).status_code == 200
    await trio.sleep(to_ms("2025-01-04") / 1000 - NOW / 1000)  # midnight
    assert (await http.get(kline_path("spot", "BTCUSDT", "1h", "2025-01-03"))).status_code == 200
    assert (await http.get(kline_path("spot", "BTCUSDT", "1h", "2025-01-04"))).status_code == 404


async def test_a_month_of_weeks_waits_for_its_last_week_to_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # February 2024's last weekly candle opens Monday the 26th and closes Monday March 4th.
    sim = SimExchange(start_time_ms=to_ms("2024-03-02T12:00:00Z"))
    path = kline_path("spot", "BTCUSDT", "1w", "2024-02")
    async with open_http(sim) as http:
        assert (await http.get(path)).status_code == 404
        assert (await http.get(kline_path("spot", "BTCUSDT", "1d", "2024-02"))).status_code == 200
        await trio.sleep(3 * 86400)
        assert (await http.get(path)).status_code == 200


async def test_missing_archives_answer_404_by_name(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange(start_time_ms=NOW, missing_archives=["BTCUSDT-1h-2024-03", "futures/cm/"])
    async with open_http(sim) as http:
        for path in (
            kline_path("spot", "BTCUSDT", "1h", "2024-03"),
            kline_path("usdm", "BTCUSDT", "1h", "2024-03"),
            kline_path("spot", "BTCUSDT", "1h", "2024-03-05"),
            kline_path("coinm", "BTCUSD_PERP", "1h", "2024-01"),
        ):
            assert (await http.get(path)).status_code == 404
            assert (await http.get(path + ".CHECKSUM")).status_code == 404
        for path in (
            kline_path("spot", "BTCUSDT", "1h", "2024-02"),
            kline_path("spot", "BTCUSDT", "1m", "2024-03-05"),
            kline_path("spot", "ETHUSDT", "1h", "2024-03"),
        ):
            assert (await http.get(path)).status_code == 200


async def test_corrupt_archives_fail_their_checksum(autojump_clock: trio.testing.MockClock) -> None:
    path = kline_path("spot", "ETHUSDT", "1h", "2024-03")
    sim = SimExchange(start_time_ms=NOW, corrupt_archives=["ETHUSDT-1h-2024-03"])
    async with open_http(SimExchange(start_time_ms=NOW)) as good:
        true_data = (await good.get(path)).content
    async with open_http(sim) as http:
        served = (await http.get(path)).content
        checksum = (await http.get(path + ".CHECKSUM")).text.split()[0]
        assert checksum == hashlib.sha256(true_data).hexdigest()  # the true file's
        assert len(served) == len(true_data)
        assert hashlib.sha256(served).hexdigest() != checksum
        with pytest.raises(ArchiveChecksumError):
            await fetch_archive(http, "http://sim.localhost", ArchiveFile(path, 0, 0))
        # Other files are fine.
        other = kline_path("spot", "ETHUSDT", "1h", "2024-04")
        assert await fetch_archive(http, "http://sim.localhost", ArchiveFile(other, 0, 0))


async def test_archives_cost_no_weight(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    first = await http.get("/api/v3/ping")
    used = int(first.headers[WEIGHT])
    for date in ("2024-01", "2024-02", "2024-02-03", "2030-01"):
        response = await http.get(kline_path("spot", "BTCUSDT", "1h", date))
        assert WEIGHT not in response.headers
        await http.get(kline_path("spot", "BTCUSDT", "1h", date) + ".CHECKSUM")
    assert int((await http.get("/api/v3/ping")).headers[WEIGHT]) == used + 1


# -- aggTrades ----------------------------------------------------------------------------


def quiet_symbols() -> list[Any]:
    """The default instruments with a few thousand trades a day (files build in a blink)."""
    return [attrs.evolve(s, daily_trades=3000) for s in default_symbols(NOW)]


@pytest.mark.parametrize(
    ("market", "day"),
    [
        ("spot", "2024-11-30"),
        ("spot", "2025-01-02"),
        ("usdm", "2025-01-02"),
        ("coinm", "2024-11-30"),
    ],
)
async def test_agg_trades_files_hold_the_rest_trades(
    market: str, day: str, autojump_clock: trio.testing.MockClock
) -> None:
    sim = SimExchange(start_time_ms=NOW, symbols=quiet_symbols())
    symbol = SYMBOLS[market]
    micro = market == "spot" and day >= "2025"
    unit = 1000 if micro else 1
    hours = (0, 13, 23)  # (the REST API regenerates every second it looks at: a few hours do)
    async with open_http(sim) as http:
        response = await http.get(agg_path(market, symbol, day))
        assert response.status_code == 200
        _, lines = csv_lines(response.content)
        rest: list[dict[str, Any]] = []
        for hour in hours:
            lo = to_ms(day) + hour * 3_600_000
            params = {"symbol": symbol, "startTime": lo, "endTime": lo + 3_599_999, "limit": 1000}
            page = (await http.get(AGG[market], params=params)).json()
            assert 0 < len(page) < 1000
            rest += page
    if market == "spot":
        assert lines[0][0].isdigit()
    else:
        assert lines[0] == AGG_TRADES_HEADER
        lines = lines[1:]
    expected = []
    for t in rest:
        fields = [t["a"], t["p"], t["q"], t["f"], t["l"], t["T"] * unit, t["m"]]
        if market == "spot":
            fields.append(t["M"])
        expected.append(as_csv(fields))
    times = [int(line.split(",")[5]) // unit for line in lines]
    in_hours = [
        line for line, t in zip(lines, times, strict=True) if (t - to_ms(day)) // 3_600_000 in hours
    ]
    assert in_hours == expected
    # The whole day, in order, each trade once.
    assert times == sorted(times)
    assert to_ms(day) <= times[0] < times[-1] < to_ms(day) + 86_400_000
    ids = [int(line.split(",", 1)[0]) for line in lines]
    assert ids == sorted(set(ids))
    assert {line.split(",")[6] for line in lines} == {"True", "False"}
    assert all(len(line.split(",")) == (8 if market == "spot" else 7) for line in lines)


# -- cache, builds, warming ---------------------------------------------------------------


async def test_one_build_per_file_however_many_ask(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange(start_time_ms=NOW)
    path = kline_path("spot", "BNBUSDT", "1m", "2024-10-10")
    bodies: list[bytes] = []
    async with open_http(sim) as http:

        async def get(suffix: str) -> None:
            bodies.append((await http.get(path + suffix)).content)

        async with trio.open_nursery() as nursery:
            for suffix in ("", "", ".CHECKSUM", ""):
                nursery.start_soon(get, suffix)
    assert sim.archives.statistics().builds == 1
    assert len({b for b in bodies if len(b) > 100}) == 1


async def test_builds_run_in_a_worker_thread_while_the_api_keeps_answering() -> None:
    # (Real clock: under an autojumping MockClock builds run inline, see ArchiveServer.get.)
    sim = SimExchange()
    path = kline_path("spot", "ETHUSDT", "1m", "2024-09")  # 43,200 rows: some 0.4 s
    pings_during_build = 0
    async with open_http(sim) as http:
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def fetch() -> None:
                assert (await http.get(path)).status_code == 200
                done.set()

            nursery.start_soon(fetch)
            while not done.is_set():
                await http.get("/api/v3/ping")
                pings_during_build += 1
                await trio.sleep(0.001)  # (in-process requests need not reach a checkpoint)
    assert sim.archives.statistics().builds == 1
    assert pings_during_build >= 5


async def test_the_cache_is_bounded_and_rebuilds_identically(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimExchange(start_time_ms=NOW, archive_cache_bytes=100_000)
    paths = [kline_path("spot", "SOLUSDT", "1m", f"2024-10-{d:02d}") for d in (1, 2, 3)]
    async with open_http(sim) as http:
        first = [(await http.get(p)).content for p in paths]
        stats = sim.archives.statistics()
        assert stats.builds == 3
        assert stats.cached_bytes <= 100_000
        assert stats.cached_files < 3
        again = (await http.get(paths[0])).content
        checksum = (await http.get(paths[0] + ".CHECKSUM")).text.split()[0]
    assert again == first[0]
    assert checksum == hashlib.sha256(again).hexdigest()
    assert sim.archives.statistics().builds == 4


async def test_warm_archives_builds_what_a_download_will_fetch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimExchange(start_time_ms=NOW)
    lo, hi = to_ms("2024-10-15"), NOW
    ready = await sim.warm_archives("spot", "ETHUSDT", "1h", lo, hi)
    assert ready == 5  # October (from the 15th) to December, then January 1st and 2nd
    builds = sim.archives.statistics().builds
    assert builds == 5
    async with sim.client() as client:
        await client.sync_time()
        progress = Progress()
        rows = await download_klines(client, "ETHUSDT", "1h", lo, hi, progress=progress)
    assert sim.archives.statistics().builds == builds  # every file came from the cache
    assert progress.archives_done == 5
    assert rows[0][0] == lo
    assert len(rows) == (hi - lo) // 3_600_000 + 1


# -- end to end through the client ----------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "interval", "start", "missing"),
    [
        ("spot", "1h", "2024-11-20T05:00:00Z", ()),
        ("usdm", "1h", "2024-11-20T05:00:00Z", ("BTCUSDT-1h-2024-12.",)),
        ("coinm", "1h", "2024-11-20T05:00:00Z", ("2025-01-01",)),
        ("spot", "1m", "2024-12-30T22:10:00Z", ()),
        ("usdm", "15m", "2024-12-28T00:00:00Z", ()),
    ],
)
async def test_auto_download_equals_rest_download(
    market: str,
    interval: str,
    start: str,
    missing: tuple[str, ...],
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Across month and day boundaries, the 2025 unit change, a missing file mid-range, and
    today's REST tail."""
    sim = SimExchange(start_time_ms=NOW, missing_archives=missing)
    symbol = SYMBOLS[market]
    async with sim.client() as client:
        await client.sync_time(market)
        end = client.server_time_ms() + 1
        progress = Progress()
        auto = await download_klines(
            client, symbol, interval, start, end, market=market, progress=progress, source="auto"
        )
        rest = await download_klines(
            client, symbol, interval, start, end, market=market, source="rest"
        )
    assert auto == rest
    assert auto.gaps == []
    assert progress.archives_done >= 3
    assert progress.archive_rows > 0
    assert progress.pages_done >= 1  # today came from the REST API
    assert auto[-1][0] <= NOW < auto[-1][6] + 1  # ... up to the open candle


@pytest.mark.parametrize(
    ("market", "interval", "start", "missing"),
    [
        ("spot", "1m", "2024-11-01T00:00:00Z", ()),
        ("usdm", "1h", "2024-11-20T05:00:00Z", ("BTCUSDT-1h-2024-12.",)),
        ("coinm", "15m", "2024-12-01T00:00:00Z", ("2025-01-01",)),
    ],
)
async def test_auto_file_download_is_the_rest_file_byte_for_byte(
    market: str,
    interval: str,
    start: str,
    missing: tuple[str, ...],
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Whole archives are written as text; the file is the one REST rows make."""
    sim = SimExchange(start_time_ms=NOW, missing_archives=missing)
    symbol = SYMBOLS[market]
    async with sim.client() as client:
        await client.sync_time(market)
        end = to_ms("2025-01-03")  # up to today: archives only, nothing still moving
        progress = Progress()
        written = await download_klines_to_file(
            client, tmp_path / "auto.csv", symbol, interval, start, end, market=market,
            progress=progress,
        )
        await download_klines_to_file(
            client, tmp_path / "rest.csv", symbol, interval, start, end, market=market,
            source="rest",
        )
    auto, rest = (tmp_path / "auto.csv").read_bytes(), (tmp_path / "rest.csv").read_bytes()
    assert auto == rest
    assert written == auto.count(b"\n") - 1 > 0
    assert progress.archives_done >= 3
    assert (progress.weight > 0) == bool(missing)  # a missing file: REST serves its span


DAY_MS = 86_400_000


@settings(max_examples=40, deadline=None)
@given(
    market=st.sampled_from(["spot", "usdm", "coinm"]),
    interval=st.sampled_from(["1m", "15m", "1h", "4h", "1d", "1w"]),
    start_day=st.integers(0, 75),  # days before "today" (2025-01-03)
    start_hour=st.integers(0, 23),
    span_hours=st.integers(1, 60 * 24),
    missing_month=st.booleans(),
)
def test_any_range_downloads_the_same_rows_from_archives_as_from_rest(
    market: str,
    interval: str,
    start_day: int,
    start_hour: int,
    span_hours: int,
    missing_month: bool,
) -> None:
    """Whatever the range cuts (months, days, hours, the 2025 unit change, today), with a
    month file missing or not, the archive download is the REST download: the same rows in
    memory, the same bytes in a file."""
    start = NOW - NOW % DAY_MS - start_day * DAY_MS + start_hour * 3_600_000
    end = min(start + span_hours * 3_600_000, NOW - NOW % 3_600_000)  # closed candles only
    assume(start < end)
    missing = ("-2024-12.",) if missing_month else ()

    async def main(folder: Path) -> tuple[list[Any], list[Any], list[Any]]:
        sim = SimExchange(start_time_ms=NOW, missing_archives=missing)
        symbol = SYMBOLS[market]
        async with sim.client() as client:
            await client.sync_time(market)
            auto = await download_klines(client, symbol, interval, start, end, market=market)
            rest = await download_klines(
                client, symbol, interval, start, end, market=market, source="rest"
            )
            for source in ("auto", "rest"):
                await download_klines_to_file(
                    client, folder / f"{source}.csv", symbol, interval, start, end,
                    market=market, source=source,
                )
        return auto, rest, auto.gaps

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        clock = trio.testing.MockClock(autojump_threshold=0)
        auto, rest, gaps = trio.run(main, folder, clock=clock)
        files = [(folder / f"{source}.csv").read_bytes() for source in ("auto", "rest")]
    assert auto == rest
    assert gaps == []
    assert all(start <= row[0] < end for row in auto)
    assert files[0] == files[1]
    assert files[0].count(b"\n") == len(auto) + 1  # and the header
