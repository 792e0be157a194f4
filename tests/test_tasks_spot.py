"""Every spot catalog task against the in-process simulator, with its answer's shape checked."""

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
from aiocea_trio.pipeline import GatherTask
from aiocea_trio.pipeline.task import TaskState
from aiocea_trio.sim import SimExchange, demo_account
from aiocea_trio.tasks import (
    BinanceTask,
    SpotCancelOrder,
    SpotFetchAccount,
    SpotFetchAggTrades,
    SpotFetchAvgPrice,
    SpotFetchBalances,
    SpotFetchBookTicker,
    SpotFetchExchangeInfo,
    SpotFetchKline,
    SpotFetchOpenOrders,
    SpotFetchOrderBook,
    SpotFetchTicker,
    SpotFetchTicker24h,
    SpotFetchTrades,
    SpotNewOrder,
    SpotPing,
    SpotQueryOrder,
    SpotServerTime,
    SpotTestOrder,
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
    assert row[6] > row[0]
    assert Decimal(row[3]) <= min(Decimal(row[1]), Decimal(row[4]))  # low
    assert Decimal(row[2]) >= max(Decimal(row[1]), Decimal(row[4]))  # high


@pytest.fixture
async def client() -> AsyncIterator[BinanceClient]:
    async with SimExchange().client() as c:
        yield c


async def run(task: BinanceTask, client: BinanceClient) -> Any:
    result = await task.execute(client, raise_errors=True)
    assert task.state is TaskState.DONE
    assert task.result is result
    return result


# -- market data ---------------------------------------------------------------------------


async def test_ping_and_server_time(client: BinanceClient) -> None:
    assert await run(SpotPing(), client) == {}
    answer = await run(SpotServerTime(), client)
    check(answer, {"serverTime": int})
    assert abs(answer["serverTime"] - client.server_time_ms()) < 60_000


async def test_exchange_info(client: BinanceClient) -> None:
    info = await run(SpotFetchExchangeInfo(), client)
    check(info, {"timezone": str, "serverTime": int, "rateLimits": list, "symbols": list})
    assert "BTCUSDT" in {s["symbol"] for s in info["symbols"]}
    check(info["symbols"][0], {"symbol": str, "status": str, "baseAsset": str, "filters": list})
    two = await run(SpotFetchExchangeInfo(symbols=["BTCUSDT", "ETHUSDT"]), client)
    assert sorted(s["symbol"] for s in two["symbols"]) == ["BTCUSDT", "ETHUSDT"]
    one = await run(SpotFetchExchangeInfo(symbol="ETHUSDT"), client)
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


async def test_order_book(client: BinanceClient) -> None:
    book = await run(SpotFetchOrderBook(symbol="BTCUSDT", limit=5), client)
    check(book, {"lastUpdateId": int, "bids": list, "asks": list})
    assert len(book["bids"]) == len(book["asks"]) == 5
    for level in book["bids"] + book["asks"]:
        assert len(level) == 2
        assert all(map(dec, level))
    bids = [Decimal(p) for p, _ in book["bids"]]
    asks = [Decimal(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]


async def test_recent_trades(client: BinanceClient) -> None:
    trades = await run(SpotFetchTrades(symbol="ETHUSDT", limit=7), client)
    assert len(trades) == 7
    for t in trades:
        check(t, {"id": int, "price": dec, "qty": dec, "quoteQty": dec, "time": int,
                  "isBuyerMaker": bool, "isBestMatch": bool})  # fmt: skip
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)


async def test_aggregate_trades(client: BinanceClient) -> None:
    latest = await run(SpotFetchAggTrades(symbol="BTCUSDT", limit=5), client)
    assert len(latest) == 5
    for t in latest:
        check(t, {"a": int, "p": dec, "q": dec, "f": int, "l": int, "T": int, "m": bool})
        assert t["f"] <= t["l"]
    end = latest[-1]["T"]
    window = SpotFetchAggTrades(symbol="BTCUSDT", startTime=end - 10_000, endTime=end, limit=50)
    rows = await run(window, client)
    assert rows
    assert all(end - 10_000 <= t["T"] <= end for t in rows)
    from_id = await run(
        SpotFetchAggTrades(symbol="BTCUSDT", fromId=latest[0]["a"], limit=2), client
    )
    assert [t["a"] for t in from_id] == [latest[0]["a"], latest[1]["a"]]


async def test_klines(client: BinanceClient) -> None:
    rows = await run(SpotFetchKline(symbol="BTCUSDT", interval="1m", limit=3), client)
    assert len(rows) == 3
    for row in rows:
        check_kline_row(row)
    assert [b[0] - a[0] for a, b in itertools.pairwise(rows)] == [60_000, 60_000]
    end = rows[0][0]
    earlier = await run(
        SpotFetchKline(symbol="BTCUSDT", interval="1m", limit=2, endTime=end), client
    )
    assert [r[0] for r in earlier] == [end - 60_000, end]
    seconds = await run(SpotFetchKline(symbol="BTCUSDT", interval="1s", limit=2), client)
    assert seconds[1][0] - seconds[0][0] == 1000


async def test_ticker_price(client: BinanceClient) -> None:
    one = await run(SpotFetchTicker(symbol="BTCUSDT"), client)
    check(one, {"symbol": str, "price": dec})
    assert one["symbol"] == "BTCUSDT"
    every = await run(SpotFetchTicker(), client)
    assert {"BTCUSDT", "ETHUSDT"} <= {row["symbol"] for row in every}
    two = await run(SpotFetchTicker(symbols=["ETHUSDT", "BTCUSDT"]), client)
    assert {row["symbol"] for row in two} == {"BTCUSDT", "ETHUSDT"}


FULL_24H: Shape = {
    "symbol": str, "priceChange": dec, "priceChangePercent": dec, "weightedAvgPrice": dec,
    "prevClosePrice": dec, "lastPrice": dec, "lastQty": dec, "bidPrice": dec, "askPrice": dec,
    "openPrice": dec, "highPrice": dec, "lowPrice": dec, "volume": dec, "quoteVolume": dec,
    "openTime": int, "closeTime": int, "firstId": int, "lastId": int, "count": int,
}  # fmt: skip


async def test_ticker_24h(client: BinanceClient) -> None:
    full = await run(SpotFetchTicker24h(symbol="BTCUSDT"), client)
    check(full, FULL_24H)
    assert full["closeTime"] - full["openTime"] >= 86_399_000
    mini = await run(SpotFetchTicker24h(symbol="BTCUSDT", type="MINI"), client)
    check(mini, {"symbol": str, "lastPrice": dec, "volume": dec, "openTime": int})
    assert "priceChange" not in mini
    both = await run(SpotFetchTicker24h(symbols=["BTCUSDT", "ETHUSDT"]), client)
    assert len(both) == 2


async def test_book_ticker(client: BinanceClient) -> None:
    top = await run(SpotFetchBookTicker(symbol="BNBUSDT"), client)
    check(top, {"symbol": str, "bidPrice": dec, "bidQty": dec, "askPrice": dec, "askQty": dec})
    assert Decimal(top["bidPrice"]) < Decimal(top["askPrice"])
    every = await run(SpotFetchBookTicker(), client)
    assert len(every) >= 3


async def test_average_price(client: BinanceClient) -> None:
    avg = await run(SpotFetchAvgPrice(symbol="BTCUSDT"), client)
    check(avg, {"mins": int, "price": dec, "closeTime": int})
    assert Decimal(avg["price"]) > 0


# -- account -------------------------------------------------------------------------------


async def test_account(client: BinanceClient) -> None:
    account = await run(SpotFetchAccount(), client)
    check(account, {"makerCommission": int, "canTrade": bool, "updateTime": int,
                    "accountType": str, "balances": list, "permissions": list})  # fmt: skip
    assert account["accountType"] == "SPOT"
    for row in account["balances"]:
        check(row, {"asset": str, "free": dec, "locked": dec})


async def test_balances_are_the_account_balance_list() -> None:
    sim = SimExchange(accounts=[attrs.evolve(demo_account(), spot={"USDT": "500", "LTC": "0"})])
    async with sim.client() as client:
        every = await run(SpotFetchBalances(), client)
        assert every == [
            {"asset": "USDT", "free": "500.00000000", "locked": "0.00000000"},
            {"asset": "LTC", "free": "0.00000000", "locked": "0.00000000"},
        ]
        non_zero = await run(SpotFetchBalances(omitZeroBalances=True), client)
        assert [row["asset"] for row in non_zero] == ["USDT"]


def test_balances_filter_zeros_even_if_the_server_does_not() -> None:
    task = SpotFetchBalances(omitZeroBalances=True)
    raw = {"balances": [{"asset": "A", "free": "0.0", "locked": "0"},
                        {"asset": "B", "free": "0", "locked": "0.1"}]}  # fmt: skip
    assert task.parse(raw) == [{"asset": "B", "free": "0", "locked": "0.1"}]


# -- orders --------------------------------------------------------------------------------


async def below_market(client: BinanceClient, symbol: str, factor: str = "0.8") -> Decimal:
    """A price far enough under the market that a BUY rests on the book."""
    last = await run(SpotFetchTicker(symbol=symbol), client)
    return (Decimal(last["price"]) * Decimal(factor)).quantize(Decimal("0.01"))


async def test_test_order(client: BinanceClient) -> None:
    price = await below_market(client, "BTCUSDT")
    order = SpotTestOrder(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                          quantity="0.001", price=price)  # fmt: skip
    assert await run(order, client) == {}
    rates = SpotTestOrder(symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty=100,
                          computeCommissionRates=True)  # fmt: skip
    answer = await run(rates, client)
    check(answer, {"standardCommissionForOrder": dict, "discount": dict})
    assert await run(SpotFetchOpenOrders(symbol="BTCUSDT"), client) == []


ORDER_VIEW: Shape = {
    "symbol": str, "orderId": int, "clientOrderId": str, "price": dec, "origQty": dec,
    "executedQty": dec, "cummulativeQuoteQty": dec, "status": str, "timeInForce": str,
    "type": str, "side": str,
}  # fmt: skip


async def test_place_query_list_and_cancel_a_resting_order(
    client: BinanceClient, autojump_clock: trio.testing.MockClock
) -> None:
    price = await below_market(client, "BTCUSDT")
    order = SpotNewOrder(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity=Decimal("0.00100"), price=price)  # fmt: skip
    placed = await run(order, client)
    check(placed, {**ORDER_VIEW, "transactTime": int, "fills": list})
    assert placed["clientOrderId"] == order.newClientOrderId
    assert placed["status"] == "NEW"
    assert Decimal(placed["origQty"]) == Decimal("0.001")

    await trio.sleep(5)  # time passes; the order keeps resting far under the market
    by_client_id = SpotQueryOrder(symbol="BTCUSDT", origClientOrderId=order.newClientOrderId)
    seen = await run(by_client_id, client)
    check(seen, {**ORDER_VIEW, "time": int, "updateTime": int, "isWorking": bool})
    assert seen["orderId"] == placed["orderId"]
    assert seen["status"] == "NEW"

    open_orders = await run(SpotFetchOpenOrders(symbol="BTCUSDT"), client)
    assert [o["orderId"] for o in open_orders] == [placed["orderId"]]
    assert [o["orderId"] for o in await run(SpotFetchOpenOrders(), client)] == [placed["orderId"]]

    cancelled = await run(SpotCancelOrder(symbol="BTCUSDT", orderId=placed["orderId"]), client)
    check(cancelled, {"symbol": str, "orderId": int, "origClientOrderId": str, "status": str})
    assert cancelled["status"] == "CANCELED"
    assert await run(SpotFetchOpenOrders(symbol="BTCUSDT"), client) == []


async def test_one_task_object_is_one_order(client: BinanceClient) -> None:
    price = await below_market(client, "ETHUSDT")
    order = SpotNewOrder(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity="0.01", price=price)  # fmt: skip
    await run(order, client)
    # Executing the same task again re-sends the same newClientOrderId: refused, not doubled.
    await order.execute(client, raise_errors=False)
    assert order.state is TaskState.FAILED
    assert isinstance(order.error, BinanceAPIError)
    assert order.error.code == -2010
    open_orders = await run(SpotFetchOpenOrders(symbol="ETHUSDT"), client)
    assert [o["clientOrderId"] for o in open_orders] == [order.newClientOrderId]


async def test_market_order_fills_and_moves_the_balances(client: BinanceClient) -> None:
    before = {b["asset"]: Decimal(b["free"]) for b in await run(SpotFetchBalances(), client)}
    buy = SpotNewOrder(symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="650")
    filled = await run(buy, client)
    assert filled["status"] == "FILLED"
    assert filled["fills"]
    check(filled["fills"][0], {"price": dec, "qty": dec, "commission": dec, "commissionAsset": str})
    after = {b["asset"]: Decimal(b["free"]) for b in await run(SpotFetchBalances(), client)}
    assert after["USDT"] < before["USDT"]
    assert after["BTC"] > before["BTC"]


async def test_the_catalog_composes_in_a_gather(client: BinanceClient) -> None:
    both = GatherTask(SpotFetchTicker(symbol="BTCUSDT"), SpotFetchAvgPrice(symbol="BTCUSDT"))
    await both.execute(client)
    ticker, avg = both.result
    assert ticker["symbol"] == "BTCUSDT"
    assert dec(avg["price"])


async def test_exchange_errors_land_on_the_task(client: BinanceClient) -> None:
    task = SpotFetchTicker(symbol="NOPEUSDT")  # well-formed, but the exchange has no such symbol
    await task.execute(client, raise_errors=False)
    assert task.state is TaskState.FAILED
    assert isinstance(task.error, BinanceAPIError)
    assert task.error.code == -1121
