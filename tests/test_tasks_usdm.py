"""Every USDⓈ-M catalog task against the in-process simulator, with its answer's shape checked."""

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
from aiocea_trio.pipeline.task import TaskState
from aiocea_trio.sim import SimExchange, demo_account
from aiocea_trio.tasks import (
    BinanceTask,
    UsdMCancelOrder,
    UsdMFetchAccount,
    UsdMFetchAggTrades,
    UsdMFetchBalances,
    UsdMFetchBookTicker,
    UsdMFetchExchangeInfo,
    UsdMFetchFundingRate,
    UsdMFetchKline,
    UsdMFetchOpenInterest,
    UsdMFetchOpenOrders,
    UsdMFetchOrderBook,
    UsdMFetchPositionRisk,
    UsdMFetchPremiumIndex,
    UsdMFetchTicker,
    UsdMFetchTicker24h,
    UsdMFetchTrades,
    UsdMNewOrder,
    UsdMPing,
    UsdMQueryOrder,
    UsdMServerTime,
    UsdMTestOrder,
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


@pytest.fixture
async def client() -> AsyncIterator[BinanceClient]:
    async with SimExchange().client() as c:
        yield c


async def run(task: BinanceTask, client: BinanceClient) -> Any:
    result = await task.execute(client, raise_errors=True)
    assert task.state is TaskState.DONE
    return result


# -- market data ---------------------------------------------------------------------------


async def test_ping_time_and_exchange_info(client: BinanceClient) -> None:
    assert await run(UsdMPing(), client) == {}
    check(await run(UsdMServerTime(), client), {"serverTime": int})
    info = await run(UsdMFetchExchangeInfo(), client)
    check(info, {"timezone": str, "serverTime": int, "rateLimits": list, "assets": list,
                 "symbols": list})  # fmt: skip
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    check(btc, {"pair": str, "contractType": str, "marginAsset": str, "filters": list})
    assert btc["contractType"] == "PERPETUAL"


@pytest.mark.parametrize("limit", [5, 1000])
async def test_order_book(client: BinanceClient, limit: int) -> None:
    book = await run(UsdMFetchOrderBook(symbol="BTCUSDT", limit=limit), client)
    check(book, {"lastUpdateId": int, "E": int, "T": int, "bids": list, "asks": list})
    if limit <= 100:
        assert len(book["bids"]) == len(book["asks"]) == limit
    else:  # the whole true book: every level within 1,000 price steps of the best, most taken
        assert 500 < len(book["bids"]) <= limit
        assert 500 < len(book["asks"]) <= limit
    assert all(dec(p) and dec(q) for p, q in book["bids"] + book["asks"])
    assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])


async def test_trades_and_aggregate_trades(client: BinanceClient) -> None:
    trades = await run(UsdMFetchTrades(symbol="BTCUSDT", limit=3), client)
    assert len(trades) == 3
    for t in trades:
        check(t, {"id": int, "price": dec, "qty": dec, "quoteQty": dec, "time": int,
                  "isBuyerMaker": bool})  # fmt: skip
    agg = await run(UsdMFetchAggTrades(symbol="ETHUSDT", limit=4), client)
    assert len(agg) == 4
    for t in agg:
        check(t, {"a": int, "p": dec, "q": dec, "f": int, "l": int, "T": int, "m": bool})
    start = agg[0]["T"]
    ranged = UsdMFetchAggTrades(symbol="ETHUSDT", startTime=start, endTime=start + 1000)
    assert all(start <= t["T"] <= start + 1000 for t in await run(ranged, client))


async def test_klines(client: BinanceClient) -> None:
    rows = await run(UsdMFetchKline(symbol="BTCUSDT", interval="5m", limit=4), client)
    assert len(rows) == 4
    for row in rows:
        assert len(row) == 12
        for value, kind in zip(row, KLINE_ROW, strict=True):
            assert kind(value) if kind is dec else type(value) is kind, row
    assert {b[0] - a[0] for a, b in itertools.pairwise(rows)} == {300_000}
    start = rows[0][0]
    later = UsdMFetchKline(symbol="BTCUSDT", interval="5m", startTime=start, limit=2)
    assert [r[0] for r in await run(later, client)] == [start, start + 300_000]


async def test_tickers(client: BinanceClient) -> None:
    price = await run(UsdMFetchTicker(symbol="BTCUSDT"), client)
    check(price, {"symbol": str, "price": dec, "time": int})
    every = await run(UsdMFetchTicker(), client)
    assert {row["symbol"] for row in every} >= {"BTCUSDT", "ETHUSDT"}
    day = await run(UsdMFetchTicker24h(symbol="BTCUSDT"), client)
    check(day, {"symbol": str, "priceChange": dec, "priceChangePercent": dec,
                "weightedAvgPrice": dec, "lastPrice": dec, "lastQty": dec, "openPrice": dec,
                "highPrice": dec, "lowPrice": dec, "volume": dec, "quoteVolume": dec,
                "openTime": int, "closeTime": int, "firstId": int, "lastId": int,
                "count": int})  # fmt: skip
    assert Decimal(day["lowPrice"]) <= Decimal(day["lastPrice"]) <= Decimal(day["highPrice"])
    top = await run(UsdMFetchBookTicker(symbol="ETHUSDT"), client)
    check(top, {"symbol": str, "bidPrice": dec, "bidQty": dec, "askPrice": dec, "askQty": dec,
                "time": int})  # fmt: skip


async def test_premium_index_funding_and_open_interest(
    client: BinanceClient, autojump_clock: trio.testing.MockClock
) -> None:
    index = await run(UsdMFetchPremiumIndex(symbol="BTCUSDT"), client)
    check(index, {"symbol": str, "markPrice": dec, "indexPrice": dec,
                  "estimatedSettlePrice": dec, "lastFundingRate": dec, "interestRate": dec,
                  "nextFundingTime": int, "time": int})  # fmt: skip
    assert index["nextFundingTime"] > index["time"]
    assert isinstance(await run(UsdMFetchPremiumIndex(), client), list)

    history = await run(UsdMFetchFundingRate(symbol="BTCUSDT", limit=3), client)
    assert len(history) == 3
    for row in history:
        check(row, {"symbol": str, "fundingRate": dec, "fundingTime": int, "markPrice": dec})
    times = [row["fundingTime"] for row in history]
    assert {b - a for a, b in itertools.pairwise(times)} == {8 * 3600 * 1000}
    window = UsdMFetchFundingRate(symbol="BTCUSDT", startTime=times[0], endTime=times[1])
    assert [row["fundingTime"] for row in await run(window, client)] == times[:2]
    # Eight hours later one more funding event is in the history.
    await trio.sleep(8 * 3600)
    newer = await run(UsdMFetchFundingRate(symbol="BTCUSDT", limit=3), client)
    assert [row["fundingTime"] for row in newer] == [*times[1:], times[-1] + 8 * 3600 * 1000]

    interest = await run(UsdMFetchOpenInterest(symbol="BTCUSDT"), client)
    check(interest, {"openInterest": dec, "symbol": str, "time": int})


# -- account -------------------------------------------------------------------------------


async def test_account(client: BinanceClient) -> None:
    task = UsdMFetchAccount()
    await task.execute(client)
    if isinstance(task.error, BinanceAPIError) and task.error.status == 404:
        pytest.xfail("simulator gap: no GET /fapi/v3/account yet")
    assert task.error is None
    check(task.result, {"totalWalletBalance": dec, "availableBalance": dec, "assets": list,
                        "positions": list})  # fmt: skip


async def test_balances() -> None:
    config = attrs.evolve(demo_account(), usdm={"USDT": "2500", "BNB": "0"})
    async with SimExchange(accounts=[config]).client() as client:
        rows = await run(UsdMFetchBalances(), client)
        # every margin asset Binance lists, zero balances included
        assert [row["asset"] for row in rows] == ["USDT", "BTC", "BNB", "ETH", "USDC", "FDUSD"]
        for row in rows:
            check(row, {"accountAlias": str, "asset": str, "balance": dec,
                        "crossWalletBalance": dec, "crossUnPnl": dec, "availableBalance": dec,
                        "maxWithdrawAmount": dec, "marginAvailable": bool,
                        "updateTime": int})  # fmt: skip
        assert Decimal(rows[0]["balance"]) == 2500
        non_zero = await run(UsdMFetchBalances(omitZeroBalances=True), client)
        assert [row["asset"] for row in non_zero] == ["USDT"]


# -- orders and positions ------------------------------------------------------------------

ORDER_VIEW: Shape = {
    "orderId": int, "symbol": str, "status": str, "clientOrderId": str, "price": dec,
    "avgPrice": dec, "origQty": dec, "executedQty": dec, "cumQuote": dec, "timeInForce": str,
    "type": str, "reduceOnly": bool, "closePosition": bool, "side": str, "positionSide": str,
    "stopPrice": dec, "workingType": str, "priceProtect": bool, "origType": str,
    "updateTime": int,
}  # fmt: skip


async def test_order_lifecycle(
    client: BinanceClient, autojump_clock: trio.testing.MockClock
) -> None:
    last = Decimal((await run(UsdMFetchTicker(symbol="BTCUSDT"), client))["price"])
    bid = (last * Decimal("0.7")).quantize(Decimal("0.1"))
    test = UsdMTestOrder(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity=0.01, price=bid)  # fmt: skip
    assert await run(test, client) == {}

    order = UsdMNewOrder(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity=0.01, price=bid)  # fmt: skip
    placed = await run(order, client)
    check(placed, ORDER_VIEW)
    assert placed["clientOrderId"] == order.newClientOrderId
    assert Decimal(placed["price"]) == bid

    await trio.sleep(60)
    seen = await run(UsdMQueryOrder(symbol="BTCUSDT", orderId=placed["orderId"]), client)
    check(seen, {**ORDER_VIEW, "time": int})
    assert seen["status"] == "NEW"
    listed = await run(UsdMFetchOpenOrders(symbol="BTCUSDT"), client)
    assert [o["clientOrderId"] for o in listed] == [order.newClientOrderId]

    # The same task again is the same order: refused as a duplicate id, nothing new placed.
    await order.execute(client, raise_errors=False)
    assert isinstance(order.error, BinanceAPIError)
    assert order.error.code == -4116
    assert len(await run(UsdMFetchOpenOrders(), client)) == 1

    cancel = UsdMCancelOrder(symbol="BTCUSDT", origClientOrderId=order.newClientOrderId)
    cancelled = await run(cancel, client)
    check(cancelled, ORDER_VIEW)
    assert cancelled["status"] == "CANCELED"
    assert await run(UsdMFetchOpenOrders(symbol="BTCUSDT"), client) == []


async def test_market_order_opens_a_position(client: BinanceClient) -> None:
    flat = await run(UsdMFetchPositionRisk(symbol="BTCUSDT"), client)
    assert [Decimal(p["positionAmt"]) for p in flat] == [0]
    buy = UsdMNewOrder(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.005",
                       newOrderRespType="RESULT")  # fmt: skip
    filled = await run(buy, client)
    assert filled["status"] == "FILLED"
    positions = await run(UsdMFetchPositionRisk(symbol="BTCUSDT"), client)
    assert len(positions) == 1
    check(positions[0], {"symbol": str, "positionAmt": dec, "entryPrice": dec,
                         "breakEvenPrice": dec, "markPrice": dec, "unRealizedProfit": dec,
                         "liquidationPrice": dec, "leverage": dec, "maxNotionalValue": dec,
                         "marginType": str, "isolatedMargin": dec, "positionSide": str,
                         "notional": dec, "updateTime": int})  # fmt: skip
    assert Decimal(positions[0]["positionAmt"]) == Decimal("0.005")
    every = await run(UsdMFetchPositionRisk(), client)
    assert {p["symbol"] for p in every} >= {"BTCUSDT", "ETHUSDT"}
