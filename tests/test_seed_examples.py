"""The seed's README examples, ported, run against the simulator in-process.

The five examples come from ``aiocea_trio.demo`` (what ``aiocea-trio demo`` runs); the
smaller snippets of the seed (the ``show_tasks()`` trees, the ring listing, the two API
keys) are written out here. Everything runs under ``autojump_clock``, so the seed's
one-second rings take no real time and their timing can be asserted exactly.

The seed printed Chinese descriptions ("ping币安币本位服务器"); the rewrite prints
English ones ("COIN-M ping"), and those exact texts are what the listings below expect.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from aiocea_trio import demo
from aiocea_trio.client import BinanceClient
from aiocea_trio.pipeline import (
    GatherTask,
    Operator,
    SerialTask,
    TaskQueue,
    TaskRing,
    TaskState,
)
from aiocea_trio.sim import AccountConfig, SimExchange, demo_account
from aiocea_trio.tasks import (
    CoinMFetchBalances,
    CoinMFetchKline,
    CoinMFetchTicker,
    CoinMPing,
    CoinMServerTime,
)

MINUTE_MS = 60_000
SIM_URL = "http://sim.localhost"  # what sim.client() uses; any loopback name works


@attrs.define(eq=False)
class Recorder:
    """A client wrapper that records every request, then hands it to the real client.

    Catalog tasks call ``client.call(endpoint, params)`` (user code ``client.request``),
    so wrapping proves which client a task used.
    """

    inner: Any
    name: str
    calls: list[tuple[str, str]] = attrs.field(factory=list)

    async def call(self, endpoint: Any, params: Any = None) -> Any:
        self.calls.append((endpoint.method, endpoint.path))
        return await self.inner.call(endpoint, params)

    async def request(
        self, method: str, path: str, params: Any = None, *, signed: bool = False
    ) -> Any:
        self.calls.append((method, path))
        return await self.inner.request(method, path, params, signed=signed)

    def server_time_ms(self) -> int:
        return int(self.inner.server_time_ms())


class Printed:
    """The ``out`` callable given to the demo functions: keeps each line with its time."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)
        self.times.append(trio.current_time())


def sim() -> SimExchange:
    return SimExchange(seed=7)


def check_ticker(rows: Any, symbol: str = "BTCUSD_PERP", pair: str = "BTCUSD") -> None:
    """COIN-M's ticker price: always a list of ``{symbol, ps, price, time}``."""
    assert isinstance(rows, list)
    assert len(rows) == 1
    (row,) = rows
    assert set(row) == {"symbol", "ps", "price", "time"}
    assert row["symbol"] == symbol
    assert row["ps"] == pair
    assert isinstance(row["price"], str)
    assert Decimal(row["price"]) > 0
    assert isinstance(row["time"], int)


def check_kline_rows(rows: Any) -> list[Any]:
    """One 12-field 1m kline row, shaped as Binance sends it; returns the row."""
    assert isinstance(rows, list)
    assert len(rows) == 1
    (row,) = rows
    assert len(row) == 12
    open_time, o, h, low, c, volume, close_time, base_volume, trades, tb, tbb, ignore = row
    assert isinstance(open_time, int)
    assert isinstance(close_time, int)
    assert isinstance(trades, int)
    assert open_time % MINUTE_MS == 0
    assert close_time == open_time + MINUTE_MS - 1
    for text in (o, h, low, c, volume, base_volume, tb, tbb):
        assert isinstance(text, str)
        Decimal(text)
    assert Decimal(low) <= min(Decimal(o), Decimal(c))
    assert Decimal(h) >= max(Decimal(o), Decimal(c))
    assert ignore == "0"
    return list(row)


# -- example 1: the server time -------------------------------------------------------------


async def test_example_1_server_time(autojump_clock: trio.abc.Clock) -> None:
    out = Printed()
    async with sim().client() as client:
        task = await demo.server_time(client, out)
        now_ms = client.server_time_ms()
    assert task.state is TaskState.DONE
    assert set(task.result) == {"serverTime"}
    assert isinstance(task.result["serverTime"], int)
    assert abs(task.result["serverTime"] - now_ms) < 5_000
    assert out.lines == [
        "-------Task queue (1)-------\nTask 0\nCOIN-M server time\n----------------------------",
        repr(task.result),
    ]


# -- examples 2 and 3: rings every second --------------------------------------------------


async def test_example_2_ticker_every_second(autojump_clock: trio.abc.Clock) -> None:
    out = Printed()
    async with sim().client() as client:
        results = await demo.ticker_every_second(client, out, rounds=4, interval=1.0)
    assert out.lines[0] == (
        "-------Task ring (1)-------\n"
        "Task 0\n"
        "COIN-M BTCUSD_PERP ticker price\n"
        "---------------------------"
    )
    assert len(results) == 4
    for rows in results:
        check_ticker(rows)
    assert out.lines[1:] == [repr(r) for r in results]
    # One result per round, one iter_interval apart on trio's (virtual) clock.
    start = out.times[1]
    assert out.times[1:] == pytest.approx([start, start + 1, start + 2, start + 3])
    # The ring ran the same task object again: each round is a fresh answer.
    times = [rows[0]["time"] for rows in results]
    assert times == sorted(times)


async def test_example_3_time_and_ticker_every_second(autojump_clock: trio.abc.Clock) -> None:
    out = Printed()
    async with sim().client() as client:
        results = await demo.ticker_and_time_every_second(client, out, rounds=3, interval=1.0)
    assert out.lines[0] == (
        "-------Task ring (1)-------\n"
        "Task 0\n"
        "Gather (2):\n"
        "    COIN-M server time\n"
        "    COIN-M BTCUSD_PERP ticker price\n"
        "---------------------------"
    )
    assert len(results) == 3
    for result in results:
        # The seed's [{'serverTime': ...}, [{'symbol': 'BTCUSD_PERP', ...}]]
        assert isinstance(result, list)
        assert len(result) == 2
        server, tickers = result
        assert set(server) == {"serverTime"}
        assert isinstance(server["serverTime"], int)
        check_ticker(tickers)
    start = out.times[1]
    assert out.times[1:] == pytest.approx([start, start + 1, start + 2])
    # The exchange's clock advanced one interval per round too (it follows trio's clock).
    server_times = [r[0]["serverTime"] for r in results]
    steps = [b - a for a, b in itertools.pairwise(server_times)]
    assert steps == pytest.approx([1000, 1000], abs=2)


async def test_endless_ring_polls_once_per_interval(autojump_clock: trio.abc.Clock) -> None:
    """The seed's rings never end ("..."): stop one from outside with trio's timeouts."""
    ring = TaskRing(iter_interval=1)
    ring += CoinMFetchTicker(symbol="BTCUSD_PERP", pair="BTCUSD")
    seen: list[float] = []
    async with sim().client() as client:
        start = trio.current_time()
        with trio.move_on_after(5.5) as scope:
            async with Operator(client).add_queue(ring).completed() as finished:
                async for task in finished:
                    check_ticker(task.result)
                    seen.append(trio.current_time() - start)
    assert scope.cancelled_caught
    assert seen == pytest.approx([0, 1, 2, 3, 4, 5], abs=0.01)


# -- examples 4 and 5: klines ----------------------------------------------------------------


async def test_example_4_serial_klines(autojump_clock: trio.abc.Clock) -> None:
    out = Printed()
    async with sim().client() as client:
        done = await demo.serial_klines(client, out)
    first, second = done
    assert isinstance(first, CoinMFetchKline)
    assert isinstance(second, CoinMFetchKline)
    assert first.endTime is not None
    assert second.endTime == first.endTime - MINUTE_MS
    end = first.endTime
    assert out.lines[0] == (
        "-------Task queue (2)-------\n"
        "Task 0\n"
        f"COIN-M BTCUSD_PERP 1m klines, up to {end}, limit 1\n"
        "Task 1\n"
        f"COIN-M BTCUSD_PERP 1m klines, up to {end - MINUTE_MS}, limit 1\n"
        "----------------------------"
    )
    # Streamed in queue order, each printed as the seed did: "<task> finish!" then the rows.
    assert out.lines[1:] == [
        f"{first} finish!",
        repr(first.result),
        f"{second} finish!",
        repr(second.result),
    ]
    row1 = check_kline_rows(first.result)
    row2 = check_kline_rows(second.result)
    # The candle holding endTime, and the one a minute before it.
    assert row1[0] <= end < row1[0] + MINUTE_MS
    assert row2[0] == row1[0] - MINUTE_MS


async def test_example_5_gather_of_serial_klines(autojump_clock: trio.abc.Clock) -> None:
    out = Printed()
    async with sim().client() as client:
        result = await demo.gather_of_serial_klines(client, out)
        assert isinstance(result, GatherTask)
        task: Any = result  # nested children are reached as task.tasks[i].tasks[j]
        ends = {leaf.endTime for serial in task.tasks for leaf in serial.tasks}
        (end,) = ends  # all four asked for the same candle
        params = {"interval": "1m", "limit": 1, "endTime": end}
        direct = {
            symbol: await client.request("GET", "/dapi/v1/klines", {"symbol": symbol, **params})
            for symbol in ("BTCUSD_PERP", "ETHUSD_PERP")
        }
    assert task.state is TaskState.DONE
    line = f"1m klines, up to {end}, limit 1"
    assert out.lines[0] == (
        "-------Task queue (1)-------\n"
        "Task 0\n"
        "Gather (2):\n"
        "    Serial (2):\n"
        f"        COIN-M BTCUSD_PERP {line}\n"
        f"        COIN-M BTCUSD_PERP {line}\n"
        "    Serial (2):\n"
        f"        COIN-M ETHUSD_PERP {line}\n"
        f"        COIN-M ETHUSD_PERP {line}\n"
        "----------------------------"
    )
    assert [leaf.symbol for serial in task.tasks for leaf in serial.tasks] == [
        "BTCUSD_PERP",
        "BTCUSD_PERP",
        "ETHUSD_PERP",
        "ETHUSD_PERP",
    ]
    # task.result[i][j]: symbol i, request j, each a one-row list.
    assert len(task.result) == 2
    for i, symbol in enumerate(("BTCUSD_PERP", "ETHUSD_PERP")):
        assert len(task.result[i]) == 2
        for j in range(2):
            check_kline_rows(task.result[i][j])
            assert task.result[i][j] == task.tasks[i].tasks[j].result
            # No virtual time passed: the same candle as a direct request for that symbol.
            assert task.result[i][j] == direct[symbol]
    assert task.result[0][0] != task.result[1][0]
    assert out.lines[1:] == [
        "finish",
        repr(task.result[0][0]),
        repr(task.result[0][1]),
        repr(task.result[1][0]),
        repr(task.result[1][1]),
    ]


# -- the seed's smaller snippets: trees and listings ----------------------------------------


def test_gather_task_show_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    gathertask = GatherTask(CoinMPing(), CoinMServerTime())
    gathertask.show_tasks()
    assert capsys.readouterr().out == "Gather (2):\n    COIN-M ping\n    COIN-M server time\n"


def test_serial_task_show_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    serialtask = SerialTask(CoinMPing(), CoinMServerTime())
    serialtask.show_tasks()
    assert capsys.readouterr().out == "Serial (2):\n    COIN-M ping\n    COIN-M server time\n"


def seed_ring() -> TaskRing:
    ring = TaskRing()
    ring += CoinMPing()  # Task 0
    ring += GatherTask(
        SerialTask(CoinMServerTime(), CoinMFetchTicker(symbol="BTCUSD_PERP", pair="BTCUSD")),
        SerialTask(CoinMServerTime(), CoinMFetchTicker(symbol="ETHUSD_PERP", pair="ETHUSD")),
    )  # Task 1
    return ring


def test_ring_show_tasks_nested(capsys: pytest.CaptureFixture[str]) -> None:
    ring = seed_ring()
    assert len(ring) == 2
    ring.show_tasks()
    assert capsys.readouterr().out == (
        "-------Task ring (2)-------\n"
        "Task 0\n"
        "COIN-M ping\n"
        "Task 1\n"
        "Gather (2):\n"
        "    Serial (2):\n"
        "        COIN-M server time\n"
        "        COIN-M BTCUSD_PERP ticker price\n"
        "    Serial (2):\n"
        "        COIN-M server time\n"
        "        COIN-M ETHUSD_PERP ticker price\n"
        "---------------------------\n"
    )


async def test_ring_with_nested_gather_runs(autojump_clock: trio.abc.Clock) -> None:
    """The listed ring runs too: two rounds of ping, then the gather of two serials."""
    ring = seed_ring()
    ring.iter_num = 2
    ring.iter_interval = 1
    seen: list[tuple[float, Any]] = []
    async with sim().client() as client:
        start = trio.current_time()
        async with Operator(client).add_queue(ring).completed() as finished:
            async for task in finished:
                seen.append((trio.current_time() - start, task.result))
    assert [t for t, _ in seen] == pytest.approx([0, 0, 1, 1])
    for i in (0, 2):
        assert seen[i][1] == {}  # ping
        (btc_time, btc), (eth_time, eth) = seen[i + 1][1]
        assert isinstance(btc_time["serverTime"], int)
        assert isinstance(eth_time["serverTime"], int)
        check_ticker(btc, "BTCUSD_PERP", "BTCUSD")
        check_ticker(eth, "ETHUSD_PERP", "ETHUSD")


# -- the seed's two API keys: a client per task ---------------------------------------------

SECOND_KEY = "K2" * 32
SECOND_SECRET = "S2" * 32


def two_account_exchange() -> SimExchange:
    second = AccountConfig(
        name="second", api_key=SECOND_KEY, api_secret=SECOND_SECRET, coinm={"BTC": "3"}
    )
    return SimExchange(seed=7, accounts=[demo_account(), second])


async def test_two_api_keys_per_task_client(autojump_clock: trio.abc.Clock) -> None:
    """Seed: ``task1`` used API1 (the default), ``task2`` API2. Here the default is the
    client the operator (or ``execute``) is given; a task's own ``client=`` wins."""
    exchange = two_account_exchange()
    async with (
        exchange.client() as first,
        BinanceClient(
            SECOND_KEY, SECOND_SECRET, base_url=SIM_URL, transport=exchange.transport()
        ) as second,
    ):
        api1, api2 = Recorder(first, "API1"), Recorder(second, "API2")

        out = Printed()
        gather = await demo.per_task_clients(api1, api2, out)
        assert isinstance(gather, GatherTask)
        assert gather.state is TaskState.DONE
        assert gather.result == [{}, {}]
        assert api1.calls == [("GET", "/dapi/v1/ping")]
        assert api2.calls == [("GET", "/dapi/v1/ping")]
        assert out.lines[0] == "Gather (2):\n    COIN-M ping\n    COIN-M ping"
        assert gather.tasks[0].client is None
        assert gather.tasks[1].client is api2

        # Signed requests through an operator: each account answers for itself.
        api1.calls.clear()
        api2.calls.clear()
        mine, theirs = CoinMFetchBalances(), CoinMFetchBalances(client=api2)
        q = TaskQueue()
        q += GatherTask(mine, theirs)
        q += CoinMServerTime()
        await Operator(api1).add_queue(q).run()
    assert mine.state is TaskState.DONE
    assert theirs.state is TaskState.DONE
    assert api1.calls == [("GET", "/dapi/v1/balance"), ("GET", "/dapi/v1/time")]
    assert api2.calls == [("GET", "/dapi/v1/balance")]
    assert {row["accountAlias"] for row in mine.result} == {"demo"}
    assert {row["accountAlias"] for row in theirs.result} == {"second"}
    btc = {
        row["accountAlias"]: row["balance"]
        for row in mine.result + theirs.result
        if row["asset"] == "BTC"
    }
    assert btc == {"demo": "10.00000000", "second": "3.00000000"}
