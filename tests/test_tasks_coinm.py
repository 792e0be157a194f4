"""Every COIN-M catalog task against the in-process simulator, with its answer's shape checked.

The seed's four tasks run with the seed's own parameters and give the seed's shapes.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from aiocea_trio.client import BinanceClient
from aiocea_trio.errors import BinanceAPIError
from aiocea_trio.pipeline import GatherTask, SerialTask
from aiocea_trio.pipeline.task import TaskState
from aiocea_trio.sim import SimExchange, demo_account
from aiocea_trio.tasks import (
    BinanceTask,
    CoinMCancelOrder,
    CoinMFetchAccount,
    CoinMFetchAggTrades,
    CoinMFetchBalances,
    CoinMFetchBookTicker,
    CoinMFetchExchangeInfo,
    CoinMFetchFundingRate,
    CoinMFetchKline,
    CoinMFetchOpenInterest,
    CoinMFetchOpenOrders,
    CoinMFetchOrderBook,
    CoinMFetchPositionRisk,
    CoinMFetchPremiumIndex,
    CoinMFetchTicker,
    CoinMFetchTicker24h,
    CoinMFetchTrades,
    CoinMNewOrder,
    CoinMPing,
    CoinMQueryOrder,
    CoinMServerTime,
    CoinMTestOrder,
)


def dec(value: object) -> bool:
    """A decimal number sent as a string, as Binance sends prices and quantities."""
    return isinstance(value, str) and Decimal(value).is_finite()


Shape = dict[str, type | tuple[type, ...] | Callable[[object], bool]]


def check(obj: object, shape: Shape) -> None:
    """Every key of `shape` is in `obj`, with the right type (or passing the check)."""
    assert isinstance(obj, dict), obj
    missing = set(shape) - set(obj)
    assert not missing, f"missing keys {missing} in {obj}"
    for key, kind in shape.items():
        value = obj[key]
        if isinstance(kind, type | tuple):
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        else:
            ok = kind(value)
        assert ok, f"{key}={value!r} is not {kind}"


KLINE_ROW = (int, dec, dec, dec, dec, dec, int, dec, int, dec, dec, str)


def check_kline_row(row: object) -> None:
    assert isinstance(row, list)
    assert len(row) == 12
    for value, kind in zip(row, KLINE_ROW, strict=True):
        assert kind(value) if kind is dec else type(value) is kind, row


@pytest.fixture
async def client() -> AsyncIterator[BinanceClient]:
    async with SimExchange().client() as c:
        yield c


async def run(task: BinanceTask, client: BinanceClient) -> Any:
    result = await task.execute(client, raise_errors=True)
    assert task.state is TaskState.DONE
    return result


# -- the seed's tasks ----------------------------------------------------------------------


async def test_seed_ping_and_server_time(client: BinanceClient) -> None:
    ping, server_time = CoinMPing(), CoinMServerTime()
    assert await run(ping, client) == {}
    check(await run(server_time, client), {"serverTime": int})
    assert (str(ping), str(server_time)) == ("COIN-M ping", "COIN-M server time")


async def test_seed_ticker_is_a_list_like_the_seed_printed(client: BinanceClient) -> None:
    # [{'symbol': 'BTCUSD_PERP', 'ps': 'BTCUSD', 'price': '55163.4', 'time': 1618897014034}]
    rows = await run(CoinMFetchTicker(symbol="BTCUSD_PERP", pair="BTCUSD"), client)
    assert isinstance(rows, list)
    assert len(rows) == 1
    check(rows[0], {"symbol": str, "ps": str, "price": dec, "time": int})
    assert (rows[0]["symbol"], rows[0]["ps"]) == ("BTCUSD_PERP", "BTCUSD")
    by_pair = await run(CoinMFetchTicker(pair="BTCUSD"), client)
    assert {r["ps"] for r in by_pair} == {"BTCUSD"}
    assert len(by_pair) >= 2  # the perpetual and the quarterly
    every = await run(CoinMFetchTicker(), client)
    assert {r["symbol"] for r in every} >= {"BTCUSD_PERP", "ETHUSD_PERP"}


async def test_seed_serial_klines_one_minute_apart(
    client: BinanceClient, autojump_clock: trio.testing.MockClock
) -> None:
    now = client.server_time_ms()
    q = [
        CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", limit=1, endTime=now),
        CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", limit=1, endTime=now - 60_000),
    ]
    assert str(q[0]) == f"COIN-M BTCUSD_PERP 1m klines, up to {now}, limit 1"
    serial = SerialTask(*q)
    await serial.execute(client)
    (first,), (second,) = serial.result
    check_kline_row(first)
    check_kline_row(second)
    assert first[0] - second[0] == 60_000
    assert first[0] <= now < first[6] + 1


async def test_seed_gather_of_serials(client: BinanceClient) -> None:
    now = client.server_time_ms()

    def kline(symbol: str) -> CoinMFetchKline:
        return CoinMFetchKline(symbol=symbol, interval="1m", limit=1, endTime=now)

    both = GatherTask(
        SerialTask(kline("BTCUSD_PERP"), kline("BTCUSD_PERP")),
        SerialTask(kline("ETHUSD_PERP"), kline("ETHUSD_PERP")),
    )
    await both.execute(client)
    btc1, btc2 = both.result[0]
    eth1, eth2 = both.result[1]
    assert btc1[0][0] == btc2[0][0] == eth1[0][0] == eth2[0][0]
    assert Decimal(btc1[0][4]) > Decimal(eth1[0][4])
    ring_text = both.format_tree()
    assert ring_text.count("COIN-M ETHUSD_PERP 1m klines") == 2


# -- the rest of the market data -----------------------------------------------------------


async def test_exchange_info_and_order_book(client: BinanceClient) -> None:
    info = await run(CoinMFetchExchangeInfo(), client)
    check(info, {"timezone": str, "serverTime": int, "rateLimits": list, "symbols": list})
    perp = next(s for s in info["symbols"] if s["symbol"] == "BTCUSD_PERP")
    check(perp, {"pair": str, "contractType": str, "filters": list})
    book = await run(CoinMFetchOrderBook(symbol="BTCUSD_PERP", limit=10), client)
    check(book, {"lastUpdateId": int, "symbol": str, "pair": str, "E": int, "T": int,
                 "bids": list, "asks": list})  # fmt: skip
    assert len(book["bids"]) == len(book["asks"]) == 10
    assert all(dec(p) and dec(q) for p, q in book["bids"] + book["asks"])


async def test_trades_and_aggregate_trades(client: BinanceClient) -> None:
    trades = await run(CoinMFetchTrades(symbol="BTCUSD_PERP", limit=3), client)
    assert len(trades) == 3
    for t in trades:
        check(t, {"id": int, "price": dec, "qty": dec, "baseQty": dec, "time": int,
                  "isBuyerMaker": bool})  # fmt: skip
    agg = await run(CoinMFetchAggTrades(symbol="BTCUSD_PERP", limit=2), client)
    assert len(agg) == 2
    for t in agg:
        check(t, {"a": int, "p": dec, "q": dec, "f": int, "l": int, "T": int, "m": bool})


async def test_klines_window(client: BinanceClient) -> None:
    rows = await run(CoinMFetchKline(symbol="ETHUSD_PERP", interval="1h", limit=3), client)
    for row in rows:
        check_kline_row(row)
    assert {b[0] - a[0] for a, b in itertools.pairwise(rows)} == {3_600_000}
    start, end = rows[0][0], rows[1][0]
    window = CoinMFetchKline(symbol="ETHUSD_PERP", interval="1h", startTime=start, endTime=end)
    assert [r[0] for r in await run(window, client)] == [start, end]


async def test_24h_and_book_tickers_are_lists(client: BinanceClient) -> None:
    day = await run(CoinMFetchTicker24h(symbol="BTCUSD_PERP"), client)
    assert len(day) == 1
    check(day[0], {"symbol": str, "pair": str, "priceChange": dec, "lastPrice": dec,
                   "openPrice": dec, "highPrice": dec, "lowPrice": dec, "volume": dec,
                   "baseVolume": dec, "openTime": int, "closeTime": int, "count": int})  # fmt: skip
    top = await run(CoinMFetchBookTicker(symbol="BTCUSD_PERP"), client)
    assert len(top) == 1
    check(top[0], {"symbol": str, "pair": str, "bidPrice": dec, "bidQty": dec,
                   "askPrice": dec, "askQty": dec, "time": int})  # fmt: skip
    by_pair = await run(CoinMFetchBookTicker(pair="ETHUSD"), client)
    assert {row["pair"] for row in by_pair} == {"ETHUSD"}
    assert len(await run(CoinMFetchTicker24h(pair="BTCUSD"), client)) >= 2


async def test_premium_index_funding_and_open_interest(client: BinanceClient) -> None:
    index = await run(CoinMFetchPremiumIndex(pair="BTCUSD"), client)
    assert len(index) >= 2
    for row in index:
        check(row, {"symbol": str, "pair": str, "markPrice": dec, "indexPrice": dec,
                    "estimatedSettlePrice": dec, "lastFundingRate": str, "interestRate": str,
                    "nextFundingTime": int, "time": int})  # fmt: skip
    perp = next(row for row in index if row["symbol"] == "BTCUSD_PERP")
    assert dec(perp["lastFundingRate"])
    one = await run(CoinMFetchPremiumIndex(symbol="BTCUSD_PERP"), client)
    assert [row["symbol"] for row in one] == ["BTCUSD_PERP"]

    history = await run(CoinMFetchFundingRate(symbol="BTCUSD_PERP", limit=4), client)
    assert len(history) == 4
    for row in history:
        check(row, {"symbol": str, "fundingTime": int, "fundingRate": dec})
    assert [r["fundingTime"] for r in history] == sorted(r["fundingTime"] for r in history)

    interest = await run(CoinMFetchOpenInterest(symbol="BTCUSD_PERP"), client)
    check(interest, {"symbol": str, "pair": str, "openInterest": dec, "contractType": str,
                     "time": int})  # fmt: skip
    assert interest["contractType"] == "PERPETUAL"


# -- account, orders, positions ------------------------------------------------------------


async def test_account(client: BinanceClient) -> None:
    task = CoinMFetchAccount()
    await task.execute(client)
    if isinstance(task.error, BinanceAPIError) and task.error.status == 404:
        pytest.xfail("simulator gap: no GET /dapi/v1/account yet")
    assert task.error is None
    check(task.result, {"assets": list, "positions": list})


async def test_balances() -> None:
    config = attrs.evolve(demo_account(), coinm={"BTC": "2", "ETH": "0"})
    async with SimExchange(accounts=[config]).client() as client:
        rows = await run(CoinMFetchBalances(), client)
        assert [row["asset"] for row in rows] == ["BTC", "ETH"]
        for row in rows:
            check(row, {"accountAlias": str, "asset": str, "balance": dec,
                        "withdrawAvailable": dec, "crossWalletBalance": dec,
                        "crossUnPnl": dec, "availableBalance": dec,
                        "updateTime": int})  # fmt: skip
        non_zero = await run(CoinMFetchBalances(omitZeroBalances=True), client)
        assert [row["asset"] for row in non_zero] == ["BTC"]


ORDER_VIEW: Shape = {
    "orderId": int, "symbol": str, "pair": str, "status": str, "clientOrderId": str,
    "price": dec, "avgPrice": dec, "origQty": dec, "executedQty": dec, "cumBase": dec,
    "timeInForce": str, "type": str, "reduceOnly": bool, "side": str, "positionSide": str,
    "origType": str, "updateTime": int,
}  # fmt: skip


async def test_order_lifecycle(
    client: BinanceClient, autojump_clock: trio.testing.MockClock
) -> None:
    last = Decimal((await run(CoinMFetchTicker(symbol="BTCUSD_PERP"), client))[0]["price"])
    ask = (last * Decimal("1.3")).quantize(Decimal("0.1"))
    test = CoinMTestOrder(symbol="BTCUSD_PERP", side="SELL", type="LIMIT", timeInForce="GTC",
                          quantity=2, price=ask)  # fmt: skip
    assert await run(test, client) == {}
    order = CoinMNewOrder(symbol="BTCUSD_PERP", side="SELL", type="LIMIT", timeInForce="GTC",
                          quantity=2, price=ask)  # fmt: skip
    placed = await run(order, client)
    check(placed, ORDER_VIEW)
    assert placed["clientOrderId"] == order.newClientOrderId
    assert Decimal(placed["origQty"]) == 2

    await trio.sleep(30)
    query = CoinMQueryOrder(symbol="BTCUSD_PERP", origClientOrderId=order.newClientOrderId)
    seen = await run(query, client)
    check(seen, ORDER_VIEW)
    assert seen["status"] == "NEW"
    listed = await run(CoinMFetchOpenOrders(pair="BTCUSD"), client)
    assert [o["orderId"] for o in listed] == [placed["orderId"]]
    assert await run(CoinMFetchOpenOrders(symbol="ETHUSD_PERP"), client) == []

    cancelled = await run(CoinMCancelOrder(symbol="BTCUSD_PERP", orderId=placed["orderId"]), client)
    check(cancelled, ORDER_VIEW)
    assert cancelled["status"] == "CANCELED"
    assert await run(CoinMFetchOpenOrders(), client) == []


async def test_market_order_and_position_risk(client: BinanceClient) -> None:
    buy = CoinMNewOrder(symbol="ETHUSD_PERP", side="BUY", type="MARKET", quantity=3)
    await run(buy, client)
    rows = await run(CoinMFetchPositionRisk(pair="ETHUSD"), client)
    assert {row["symbol"] for row in rows} >= {"ETHUSD_PERP"}
    for row in rows:
        check(row, {"symbol": str, "positionAmt": dec, "entryPrice": dec, "markPrice": dec,
                    "unRealizedProfit": dec, "liquidationPrice": dec, "leverage": dec,
                    "maxQty": dec, "marginType": str, "positionSide": str,
                    "updateTime": int})  # fmt: skip
    held = {row["symbol"]: Decimal(row["positionAmt"]) for row in rows}
    assert held["ETHUSD_PERP"] == 3
    every = await run(CoinMFetchPositionRisk(), client)
    assert {row["symbol"] for row in every} >= {"BTCUSD_PERP", "ETHUSD_PERP"}
