"""The original aiocea's examples, ported: what ``aiocea-trio demo`` runs.

Each function takes an open client and an ``out`` callable for printing, and
returns what it printed the results of, so the test suite can check the shapes
aiocea documented (``task.result[0][1]`` for a gather of serials, and so on).
aiocea's endless rings run ``rounds`` times here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from .pipeline import GatherTask, Operator, SerialTask, Task, TaskQueue, TaskRing
from .tasks import CoinMFetchKline, CoinMFetchTicker, CoinMPing, CoinMServerTime

__all__ = [
    "EXAMPLES",
    "gather_of_serial_klines",
    "per_task_clients",
    "serial_klines",
    "server_time",
    "ticker_and_time_every_second",
    "ticker_every_second",
]

Out = Callable[[str], None]


async def server_time(client: Any, out: Out = print) -> Task:
    """Seed example 1: fetch the server time through a queue and an operator."""
    task = CoinMServerTime()
    q = TaskQueue()
    q += task
    out(q.format_tasks())
    await Operator(client).add_queue(q).run()
    out(repr(task.result))
    return task


async def ticker_every_second(
    client: Any, out: Out = print, *, rounds: int = 3, interval: float = 1.0
) -> list[Any]:
    """Seed example 2: a ring fetching the BTCUSD_PERP ticker every second."""
    q = TaskRing(iter_num=rounds, iter_interval=interval)
    q += CoinMFetchTicker(symbol="BTCUSD_PERP", pair="BTCUSD")
    return await _print_results(client, q, out)


async def ticker_and_time_every_second(
    client: Any, out: Out = print, *, rounds: int = 3, interval: float = 1.0
) -> list[Any]:
    """Seed example 3: every second, server time and ticker at once."""
    q = TaskRing(iter_num=rounds, iter_interval=interval)
    q += GatherTask(CoinMServerTime(), CoinMFetchTicker(symbol="BTCUSD_PERP", pair="BTCUSD"))
    return await _print_results(client, q, out)


async def _print_results(client: Any, q: TaskRing, out: Out) -> list[Any]:
    """List the ring, then print and collect each result as the operator streams it."""
    out(q.format_tasks())
    results = []
    async with Operator(client).add_queue(q).completed() as finished:
        async for task in finished:
            out(repr(task.result))
            results.append(task.result)
    return results


async def serial_klines(client: Any, out: Out = print) -> list[Task]:
    """Seed example 4: two one-candle kline requests, a minute apart, in order."""
    now_ms = _now_ms(client)
    q = TaskQueue()
    q += CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", limit=1, endTime=now_ms)
    q += CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", limit=1, endTime=now_ms - 60_000)
    out(q.format_tasks())
    done = []
    async with Operator(client).add_queue(q).completed() as finished:
        async for task in finished:
            out(f"{task} finish!")
            out(repr(task.result))
            done.append(task)
    return done


async def gather_of_serial_klines(client: Any, out: Out = print) -> Task:
    """Seed example 5: two symbols at once, each two kline requests in order."""
    now_ms = _now_ms(client)

    def kline(symbol: str) -> CoinMFetchKline:
        return CoinMFetchKline(symbol=symbol, interval="1m", limit=1, endTime=now_ms)

    q = TaskQueue()
    q += GatherTask(
        SerialTask(kline("BTCUSD_PERP"), kline("BTCUSD_PERP")),
        SerialTask(kline("ETHUSD_PERP"), kline("ETHUSD_PERP")),
    )
    out(q.format_tasks())
    last: Task | None = None
    async with Operator(client).add_queue(q).completed() as finished:
        async for task in finished:
            out("finish")
            btc_kline1, btc_kline2 = task.result[0][0], task.result[0][1]
            eth_kline1, eth_kline2 = task.result[1][0], task.result[1][1]
            for rows in (btc_kline1, btc_kline2, eth_kline1, eth_kline2):
                out(repr(rows))
            last = task
    if last is None:
        raise RuntimeError("the operator finished without delivering the gather")
    return last


async def per_task_clients(client: Any, other: Any, out: Out = print) -> Task:
    """aiocea's two-API-keys example: a task may carry its own client."""
    gather = GatherTask(CoinMPing(), CoinMPing(client=other))
    out(gather.format_tree())
    await gather.execute(client)
    out(f"task1 ran with {client!r}; task2 with {other!r}")
    return gather


def _now_ms(client: Any) -> int:
    """The seed used ``int(time.time()) * 1000``; a client knows the server's time better."""
    server_time_ms = getattr(client, "server_time_ms", None)
    if callable(server_time_ms):
        return int(server_time_ms()) // 1000 * 1000
    return int(time.time()) * 1000


Example = Callable[[Any, Out], Awaitable[Any]]

#: aiocea's five README examples, in its order, with their titles.
EXAMPLES: tuple[tuple[str, Example], ...] = (
    ("Fetch the server time", server_time),
    ("Fetch the ticker every second", ticker_every_second),
    ("Fetch server time and ticker together, every second", ticker_and_time_every_second),
    ("Fetch klines one after another", serial_klines),
    ("Fetch two symbols' klines at once, each in order", gather_of_serial_klines),
)
