"""The catalog checks its parameters when a task is built, before any request.

Each bad parameter is a ValueError (TypeError for a wrong type) naming the task, the
parameter and what is allowed; no client is involved in any of these tests.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import attrs
import pytest

import aiocea_trio.tasks as catalog
from aiocea_trio.markets import Market
from aiocea_trio.tasks import (
    BinanceTask,
    CoinMCancelOrder,
    CoinMFetchFundingRate,
    CoinMFetchKline,
    CoinMFetchOrderBook,
    CoinMFetchTicker,
    CoinMNewOrder,
    CoinMPing,
    CoinMQueryOrder,
    CoinMServerTime,
    SpotCancelOrder,
    SpotFetchAggTrades,
    SpotFetchBalances,
    SpotFetchExchangeInfo,
    SpotFetchKline,
    SpotFetchOrderBook,
    SpotFetchTicker,
    SpotFetchTicker24h,
    SpotFetchTrades,
    SpotNewOrder,
    SpotQueryOrder,
    SpotTestOrder,
    UsdMCancelOrder,
    UsdMFetchAggTrades,
    UsdMFetchFundingRate,
    UsdMFetchKline,
    UsdMFetchOrderBook,
    UsdMFetchTrades,
    UsdMNewOrder,
    UsdMQueryOrder,
    UsdMTestOrder,
)

CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

SPOT_LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
FUT_LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}

# (task class, keyword arguments, exception, regex the message must match)
BAD: list[tuple[type[BinanceTask], dict[str, Any], type[Exception], str]] = [
    # intervals: case-sensitive; futures have no 1s
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "2m"}, ValueError,
     r"SpotFetchKline: interval must be one of 1s, 1m, 3m, .*1M; got '2m'"),
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1H"}, ValueError, r"interval .* got '1H'"),
    (UsdMFetchKline, {"symbol": "BTCUSDT", "interval": "1s"}, ValueError,
     r"interval must be one of 1m, 3m, .*; got '1s'"),
    (CoinMFetchKline, {"symbol": "BTCUSD_PERP", "interval": "1s"}, ValueError, r"interval .*'1s'"),
    # kline limits: spot 1..1000, futures 1..1500
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, ValueError,
     r"limit must be between 1 and 1000; got 1001"),
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "limit": 0}, ValueError, r"limit .*got 0"),
    (UsdMFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "limit": 1501}, ValueError,
     r"limit must be between 1 and 1500; got 1501"),
    (CoinMFetchKline, {"symbol": "BTCUSD_PERP", "interval": "1m", "limit": -1}, ValueError,
     r"limit must be between 1 and 1500; got -1"),
    # depth: spot 1..5000, futures a fixed set
    (SpotFetchOrderBook, {"symbol": "BTCUSDT", "limit": 5001}, ValueError,
     r"limit must be between 1 and 5000; got 5001"),
    (UsdMFetchOrderBook, {"symbol": "BTCUSDT", "limit": 7}, ValueError,
     r"limit must be one of 5, 10, 20, 50, 100, 500, 1000; got 7"),
    (CoinMFetchOrderBook, {"symbol": "BTCUSD_PERP", "limit": 5000}, ValueError,
     r"limit must be one of 5, .*1000; got 5000"),
    # trades, aggTrades, funding rate: 1..1000
    (SpotFetchTrades, {"symbol": "BTCUSDT", "limit": 1001}, ValueError, r"limit must be between 1 and 1000"),
    (UsdMFetchTrades, {"symbol": "BTCUSDT", "limit": 0}, ValueError, r"limit must be between 1 and 1000"),
    (SpotFetchAggTrades, {"symbol": "BTCUSDT", "limit": 1001}, ValueError, r"limit must be between 1 and 1000"),
    (UsdMFetchFundingRate, {"limit": 1001}, ValueError, r"limit must be between 1 and 1000; got 1001"),
    (CoinMFetchFundingRate, {"symbol": "BTCUSD_PERP", "limit": 1001}, ValueError, r"limit .*1001"),
    # wrong types are TypeErrors (True is not a number here)
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"}, TypeError, r"limit must be an int"),
    (SpotFetchOrderBook, {"symbol": "BTCUSDT", "limit": True}, TypeError, r"limit must be an int"),
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "endTime": 1.5e12}, TypeError, r"endTime must be an int"),
    # symbols
    (SpotFetchOrderBook, {"symbol": ""}, ValueError, r"symbol must be a non-empty symbol name without spaces; got ''"),
    (UsdMFetchTrades, {"symbol": " BTCUSDT"}, ValueError, r"symbol must be .*without spaces"),
    (CoinMFetchKline, {"symbol": None, "interval": "1m"}, TypeError, r"symbol must be a str; got None"),
    (CoinMFetchTicker, {"pair": ""}, ValueError, r"pair must be a non-empty symbol name"),
    (CoinMFetchFundingRate, {}, TypeError, r"symbol"),  # COIN-M funding history needs a symbol
    (SpotFetchTicker, {"symbol": "BTCUSDT", "symbols": ["ETHUSDT"]}, ValueError,
     r"give symbol or symbols, not both"),
    (SpotFetchExchangeInfo, {"symbols": []}, ValueError, r"symbols must name at least one symbol"),
    (SpotFetchTicker24h, {"symbols": "BTCUSDT"}, TypeError, r"symbols must be a list of symbols"),
    (SpotFetchTicker24h, {"type": "BIG"}, ValueError, r"type must be one of FULL, MINI; got 'BIG'"),
    # time ranges
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "startTime": 2, "endTime": 1}, ValueError,
     r"startTime must not be after endTime; got 2 > 1"),
    (UsdMFetchAggTrades, {"symbol": "BTCUSDT", "startTime": 10, "endTime": 9}, ValueError, r"startTime .*10 > 9"),
    (CoinMFetchFundingRate, {"symbol": "BTCUSD_PERP", "startTime": 10, "endTime": 9}, ValueError, r"startTime"),
    (UsdMFetchKline, {"symbol": "BTCUSDT", "interval": "1m", "startTime": -1}, ValueError, r"startTime must be >= 0"),
    # side and type, per market
    (SpotNewOrder, {**SPOT_LIMIT, "side": "buy", "quantity": 1, "price": 1}, ValueError,
     r"side must be one of BUY, SELL; got 'buy'"),
    (SpotNewOrder, {**SPOT_LIMIT, "type": "STOP_MARKET", "quantity": 1}, ValueError,
     r"type must be one of LIMIT, MARKET, STOP_LOSS, .*LIMIT_MAKER; got 'STOP_MARKET'"),
    (UsdMNewOrder, {**FUT_LIMIT, "type": "LIMIT_MAKER", "quantity": 1, "price": 1}, ValueError,
     r"type must be one of LIMIT, MARKET, STOP, .*TRAILING_STOP_MARKET; got 'LIMIT_MAKER'"),
    (CoinMNewOrder, {**FUT_LIMIT, "side": "HOLD", "quantity": 1, "price": 1}, ValueError, r"side must be one of BUY, SELL"),
    (SpotNewOrder, {**SPOT_LIMIT, "timeInForce": "GTX", "quantity": 1, "price": 1}, ValueError,
     r"timeInForce must be one of GTC, IOC, FOK; got 'GTX'"),
    (CoinMNewOrder, {**FUT_LIMIT, "timeInForce": "GTD", "quantity": 1, "price": 1}, ValueError,
     r"timeInForce must be one of GTC, IOC, FOK, GTX; got 'GTD'"),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": 1, "price": 1, "newOrderRespType": "FULL"}, ValueError,
     r"newOrderRespType must be one of ACK, RESULT; got 'FULL'"),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": 1, "price": 1, "positionSide": "UP"}, ValueError,
     r"positionSide must be one of BOTH, LONG, SHORT"),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": 1, "price": 1, "workingType": "LAST"}, ValueError,
     r"workingType must be one of MARK_PRICE, CONTRACT_PRICE"),
    # mandatory parameters by order type
    (SpotNewOrder, {**SPOT_LIMIT, "quantity": 1}, ValueError,
     r"a LIMIT order needs timeInForce, quantity, price; missing: price$"),
    (SpotNewOrder, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": 1, "price": 1}, ValueError,
     r"missing: timeInForce$"),
    (SpotTestOrder, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, ValueError,
     r"a MARKET order needs quantity or quoteOrderQty; missing: quantity or quoteOrderQty"),
    (SpotNewOrder, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": 1, "quoteOrderQty": 5},
     ValueError, r"give quantity or quoteOrderQty, not both"),
    (SpotNewOrder, {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": 1}, ValueError,
     r"missing: stopPrice or trailingDelta"),
    (SpotNewOrder, {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT_MAKER", "price": 1}, ValueError,
     r"a LIMIT_MAKER order needs quantity, price; missing: quantity"),
    (UsdMNewOrder, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, ValueError,
     r"a MARKET order needs quantity; missing: quantity"),
    (UsdMTestOrder, {**FUT_LIMIT, "quantity": 1}, ValueError, r"missing: price or priceMatch"),
    (CoinMNewOrder, {"symbol": "BTCUSD_PERP", "side": "BUY", "type": "STOP", "quantity": 1, "price": 1}, ValueError,
     r"a STOP order needs quantity, price or priceMatch, stopPrice; missing: stopPrice"),
    (UsdMNewOrder, {"symbol": "BTCUSDT", "side": "SELL", "type": "TRAILING_STOP_MARKET", "quantity": 1}, ValueError,
     r"missing: callbackRate"),
    (UsdMNewOrder, {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET"}, ValueError,
     r"missing: quantity, stopPrice"),
    (UsdMNewOrder, {**FUT_LIMIT, "timeInForce": "GTD", "quantity": 1, "price": 1}, ValueError,
     r"a GTD order needs goodTillDate"),
    # quantities and prices
    (SpotNewOrder, {**SPOT_LIMIT, "quantity": "abc", "price": 1}, ValueError, r"quantity must be a decimal number; got 'abc'"),
    (SpotNewOrder, {**SPOT_LIMIT, "quantity": 0, "price": 1}, ValueError, r"quantity must be a positive number; got '0'"),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": 1, "price": "-5"}, ValueError, r"price must be a positive number"),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": float("nan"), "price": 1}, ValueError, r"quantity must be a positive number"),
    (CoinMNewOrder, {**FUT_LIMIT, "quantity": True, "price": 1}, TypeError, r"quantity must be a number"),
    (CoinMNewOrder, {**FUT_LIMIT, "quantity": [1], "price": 1}, TypeError, r"quantity must be a number"),
    # client order ids
    (SpotNewOrder, {**SPOT_LIMIT, "quantity": 1, "price": 1, "newClientOrderId": "has space"}, ValueError,
     r"newClientOrderId must match .*got 'has space'"),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": 1, "price": 1, "newClientOrderId": "x" * 37}, ValueError,
     r"newClientOrderId must match"),
    (SpotQueryOrder, {"symbol": "BTCUSDT", "origClientOrderId": ""}, ValueError, r"origClientOrderId must match"),
    # query and cancel need one of the two ids
    (SpotQueryOrder, {"symbol": "BTCUSDT"}, ValueError, r"give orderId or origClientOrderId"),
    (SpotCancelOrder, {"symbol": "BTCUSDT"}, ValueError, r"give orderId or origClientOrderId"),
    (UsdMQueryOrder, {"symbol": "BTCUSDT"}, ValueError, r"give orderId or origClientOrderId"),
    (UsdMCancelOrder, {"symbol": "BTCUSDT"}, ValueError, r"give orderId or origClientOrderId"),
    (CoinMQueryOrder, {"symbol": "BTCUSD_PERP"}, ValueError, r"give orderId or origClientOrderId"),
    (CoinMCancelOrder, {"symbol": "BTCUSD_PERP"}, ValueError, r"give orderId or origClientOrderId"),
    (SpotQueryOrder, {"symbol": "BTCUSDT", "orderId": -3}, ValueError, r"orderId must be >= 0"),
    # local options are checked too
    (SpotFetchBalances, {"omitZeroBalances": "yes"}, TypeError, r"omitZeroBalances"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cls", "kwargs", "exc", "message"),
    BAD,
    ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(BAD)],
)
def test_bad_parameters_are_refused_at_construction(
    cls: type[BinanceTask], kwargs: dict[str, Any], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        cls(**kwargs)


GOOD: list[tuple[type[BinanceTask], dict[str, Any]]] = [
    (SpotFetchKline, {"symbol": "BTCUSDT", "interval": "1s", "limit": 1000}),
    (UsdMFetchKline, {"symbol": "BTCUSDT", "interval": "1M", "limit": 1500}),
    (CoinMFetchKline, {"symbol": "BTCUSD_PERP", "interval": "1w", "limit": 1, "startTime": 5, "endTime": 5}),
    (SpotFetchOrderBook, {"symbol": "BTCUSDT", "limit": 5000}),
    (UsdMFetchOrderBook, {"symbol": "BTCUSDT", "limit": 1000}),
    (SpotFetchTrades, {"symbol": "BTCUSDT", "limit": 1000}),
    (UsdMFetchFundingRate, {}),
    (SpotNewOrder, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": 10}),
    (SpotNewOrder, {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": 1, "trailingDelta": 100}),
    (UsdMNewOrder, {**FUT_LIMIT, "quantity": 1, "priceMatch": "QUEUE"}),
    (UsdMNewOrder, {**FUT_LIMIT, "timeInForce": "GTD", "quantity": 1, "price": 1, "goodTillDate": 1}),
    (UsdMNewOrder, {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "stopPrice": 1, "closePosition": True}),
    (CoinMNewOrder, {**FUT_LIMIT, "timeInForce": "GTX", "quantity": 1, "price": 1}),
    (SpotCancelOrder, {"symbol": "BTCUSDT", "origClientOrderId": "aiocea-abc"}),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "kwargs"), GOOD, ids=[c.__name__ for c, _ in GOOD])
def test_edge_values_are_accepted(cls: type[BinanceTask], kwargs: dict[str, Any]) -> None:
    task = cls(**kwargs)
    sent = task.params()
    for key, value in kwargs.items():
        if key in sent and isinstance(value, int | str) and not isinstance(value, bool):
            assert str(sent[key]) == str(value), key


def test_validation_also_runs_on_assignment() -> None:
    task = SpotFetchKline(symbol="BTCUSDT", interval="1m")
    with pytest.raises(ValueError, match="limit must be between 1 and 1000; got 5000"):
        task.limit = 5000
    task.limit = 500
    assert task.params()["limit"] == 500


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        SpotFetchOrderBook("BTCUSDT")  # type: ignore[misc]


# -- order ids and numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [SpotNewOrder, SpotTestOrder, UsdMNewOrder, UsdMTestOrder, CoinMNewOrder]
)
def test_orders_get_a_unique_client_order_id_at_construction(cls: type[BinanceTask]) -> None:
    kwargs = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": 1}
    ids = {cls(**kwargs).newClientOrderId for _ in range(200)}  # type: ignore[attr-defined]
    assert len(ids) == 200
    for order_id in ids:
        assert CLIENT_ID.match(order_id)
        assert re.fullmatch(r"aiocea-[0-9a-f]{24}", order_id)


def test_client_order_id_is_kept_and_sent_every_time() -> None:
    task = UsdMNewOrder(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1)
    first = task.params()["newClientOrderId"]
    assert first == task.newClientOrderId
    assert task.params()["newClientOrderId"] == first  # re-sending = the same order
    own = SpotNewOrder(**SPOT_LIMIT, quantity=1, price=1, newClientOrderId="my.order:1/a_b-c")
    assert own.params()["newClientOrderId"] == "my.order:1/a_b-c"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("0.00100", "0.00100"),
        (Decimal("0.001"), "0.001"),
        (Decimal("1E-8"), "0.00000001"),
        (3, "3"),
        (0.1, "0.1"),
        (1e-05, "0.00001"),
        (65000.5, "65000.5"),
    ],
)
def test_quantities_and_prices_are_sent_as_exact_text(given: object, sent: str) -> None:
    task = SpotNewOrder(**SPOT_LIMIT, quantity=given, price=given)
    assert task.quantity == sent
    assert task.params()["quantity"] == sent
    assert task.params()["price"] == sent


def test_omitted_optional_parameters_are_none_so_the_client_drops_them() -> None:
    params = SpotFetchKline(symbol="BTCUSDT", interval="1m").params()
    assert params == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "startTime": None,
        "endTime": None,
        "limit": None,
        "timeZone": None,
    }
    assert "client" not in params
    assert "timeout" not in params
    # a local option tunes the task, it is not a Binance parameter
    assert SpotFetchBalances().params() == {}
    assert SpotFetchBalances(omitZeroBalances=True).params() == {"omitZeroBalances": True}


# -- the seed's names and the wording ----------------------------------------------------------


def test_the_seed_names_take_the_seed_parameters() -> None:
    assert str(CoinMPing()) == "COIN-M ping"
    assert str(CoinMServerTime()) == "COIN-M server time"
    ticker = CoinMFetchTicker(symbol="BTCUSD_PERP", pair="BTCUSD")
    assert ticker.params() == {"symbol": "BTCUSD_PERP", "pair": "BTCUSD"}
    assert str(ticker) == "COIN-M BTCUSD_PERP ticker price"
    kline = CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", limit=1, endTime=1618898005000)
    assert str(kline) == "COIN-M BTCUSD_PERP 1m klines, up to 1618898005000, limit 1"
    assert kline.params()["endTime"] == 1618898005000


ORDER = {"symbol": "BTCUSDT", "side": "BUY", "newClientOrderId": "id-1"}

TEXTS: list[tuple[BinanceTask, str]] = [
    (catalog.SpotPing(), "spot ping"),
    (catalog.UsdMServerTime(), "USDⓈ-M server time"),
    (catalog.SpotFetchExchangeInfo(), "spot exchange info"),
    (catalog.SpotFetchExchangeInfo(symbols=["BTCUSDT", "ETHUSDT"]), "spot exchange info for BTCUSDT,ETHUSDT"),
    (catalog.CoinMFetchExchangeInfo(), "COIN-M exchange info"),
    (catalog.SpotFetchOrderBook(symbol="BTCUSDT", limit=5), "spot BTCUSDT order book, limit 5"),
    (catalog.UsdMFetchTrades(symbol="BTCUSDT"), "USDⓈ-M BTCUSDT recent trades"),
    (catalog.SpotFetchAggTrades(symbol="BTCUSDT", fromId=7, limit=2), "spot BTCUSDT aggregate trades, from id 7, limit 2"),
    (catalog.SpotFetchKline(symbol="BTCUSDT", interval="1h", startTime=1, endTime=2), "spot BTCUSDT 1h klines, from 1 to 2"),
    (catalog.UsdMFetchKline(symbol="BTCUSDT", interval="1d", startTime=1), "USDⓈ-M BTCUSDT 1d klines, from 1"),
    (catalog.SpotFetchTicker(), "spot ticker price, all symbols"),
    (catalog.CoinMFetchTicker(pair="BTCUSD"), "COIN-M pair BTCUSD ticker price"),
    (catalog.SpotFetchTicker24h(symbol="ETHUSDT"), "spot ETHUSDT 24h ticker"),
    (catalog.UsdMFetchBookTicker(symbol="BTCUSDT"), "USDⓈ-M BTCUSDT book ticker"),
    (catalog.SpotFetchAvgPrice(symbol="BTCUSDT"), "spot BTCUSDT average price"),
    (catalog.UsdMFetchPremiumIndex(symbol="BTCUSDT"), "USDⓈ-M BTCUSDT premium index"),
    (catalog.CoinMFetchFundingRate(symbol="BTCUSD_PERP", limit=3), "COIN-M BTCUSD_PERP funding-rate history, limit 3"),
    (catalog.UsdMFetchOpenInterest(symbol="BTCUSDT"), "USDⓈ-M BTCUSDT open interest"),
    (catalog.SpotFetchAccount(), "spot account"),
    (catalog.CoinMFetchBalances(omitZeroBalances=True), "COIN-M balances, non-zero only"),
    (catalog.SpotFetchOpenOrders(), "spot open orders, all symbols"),
    (catalog.UsdMFetchPositionRisk(symbol="BTCUSDT"), "USDⓈ-M BTCUSDT position risk"),
    (catalog.CoinMFetchPositionRisk(marginAsset="BTC"), "COIN-M BTC-margined position risk"),
    (catalog.SpotNewOrder(**ORDER, type="LIMIT", timeInForce="GTC", quantity="0.01", price=30000),
     "spot new order BUY 0.01 BTCUSDT LIMIT at 30000 GTC, id id-1"),
    (catalog.SpotTestOrder(**ORDER, type="MARKET", quoteOrderQty=100),
     "spot test order BUY BTCUSDT MARKET, quote amount 100, id id-1"),
    (catalog.UsdMNewOrder(**ORDER, type="TRAILING_STOP_MARKET", quantity=1, callbackRate=1, reduceOnly=True),
     "USDⓈ-M new order BUY 1 BTCUSDT TRAILING_STOP_MARKET, callback 1%, reduce only, id id-1"),
    (catalog.CoinMNewOrder(**ORDER, type="STOP_MARKET", stopPrice=60000, closePosition=True),
     "COIN-M new order BUY BTCUSDT STOP_MARKET stop 60000, close position, id id-1"),
    (catalog.SpotQueryOrder(symbol="BTCUSDT", orderId=12), "spot query BTCUSDT order 12"),
    (catalog.UsdMCancelOrder(symbol="BTCUSDT", origClientOrderId="id-1"), "USDⓈ-M cancel BTCUSDT order client id id-1"),
]  # fmt: skip


@pytest.mark.parametrize(("task", "text"), TEXTS, ids=[t for _, t in TEXTS])
def test_str_describes_the_task_in_words(task: BinanceTask, text: str) -> None:
    assert str(task) == text


# -- the catalog as a whole ------------------------------------------------------------------

ACTIONS = [
    "Ping",
    "ServerTime",
    "FetchExchangeInfo",
    "FetchOrderBook",
    "FetchTrades",
    "FetchAggTrades",
    "FetchKline",
    "FetchTicker",
    "FetchTicker24h",
    "FetchBookTicker",
    "FetchAccount",
    "FetchBalances",
    "NewOrder",
    "TestOrder",
    "QueryOrder",
    "CancelOrder",
    "FetchOpenOrders",
]
FUTURES_ONLY = ["FetchPremiumIndex", "FetchFundingRate", "FetchOpenInterest", "FetchPositionRisk"]
FAMILIES = {
    "Spot": (Market.SPOT, [*ACTIONS, "FetchAvgPrice", "FetchMyTrades"]),
    "UsdM": (Market.USDM, [*ACTIONS, *FUTURES_ONLY, "FetchUserTrades"]),
    "CoinM": (Market.COINM, [*ACTIONS, *FUTURES_ONLY, "FetchUserTrades"]),
}  # fmt: skip


def test_every_family_has_every_action_and_nothing_else() -> None:
    expected = {
        f"{prefix}{action}" for prefix, (_, actions) in FAMILIES.items() for action in actions
    }
    assert set(catalog.__all__) == expected | {"BinanceTask"}
    assert catalog.__all__ == sorted(catalog.__all__)
    for prefix, (market, actions) in FAMILIES.items():
        for action in actions:
            cls = getattr(catalog, f"{prefix}{action}")
            assert cls.market is market, cls
            path_prefix = {"Spot": "/api/v3/", "UsdM": "/fapi/", "CoinM": "/dapi/v1/"}[prefix]
            assert cls.path.startswith(path_prefix), cls
            assert attrs.has(cls)
            signed = action in {"FetchAccount", "FetchBalances", "NewOrder", "TestOrder",
                                "QueryOrder", "CancelOrder", "FetchOpenOrders", "FetchPositionRisk",
                                "FetchMyTrades", "FetchUserTrades"}  # fmt: skip
            assert cls.signed is signed, cls


WEIGHTS: list[tuple[BinanceTask, int]] = [
    (SpotFetchOrderBook(symbol="BTCUSDT", limit=5), 5),
    (SpotFetchOrderBook(symbol="BTCUSDT", limit=5000), 250),
    (UsdMFetchOrderBook(symbol="BTCUSDT", limit=1000), 20),
    (UsdMFetchKline(symbol="BTCUSDT", interval="1m", limit=1500), 10),
    (CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", limit=99), 1),
    (SpotFetchTicker(), 4),
    (SpotFetchTicker(symbol="BTCUSDT"), 2),
    (SpotTestOrder(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1), 1),
    (
        SpotTestOrder(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1, computeCommissionRates=True
        ),
        20,
    ),
    (catalog.SpotFetchOpenOrders(), 80),
    (catalog.CoinMFetchPremiumIndex(), 10),
]


@pytest.mark.parametrize(("task", "weight"), WEIGHTS, ids=[str(t) for t, _ in WEIGHTS])
def test_weight_follows_the_parameters(task: BinanceTask, weight: int) -> None:
    assert task.weight == weight


@pytest.mark.parametrize(
    "build",
    [
        lambda: catalog.SpotFetchKline(symbol="BTCUSDT", interval="1m", timeout=0),
        lambda: catalog.UsdMFetchFundingRate(symbol="BTCUSDT", timeout=-1),
        lambda: catalog.CoinMFetchAggTrades(symbol="BTCUSD_PERP", timeout=0),
        lambda: catalog.SpotNewOrder(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1", timeout=0
        ),
        lambda: catalog.SpotQueryOrder(symbol="BTCUSDT", orderId=1, timeout=-5),
        lambda: catalog.SpotFetchTicker24h(symbol="BTCUSDT", timeout=0),
    ],
)
def test_catalog_tasks_keep_the_task_timeout_check(build: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        build()
