"""Simulator: account trades (myTrades / userTrades) from the matching engine's fills, the
endpoints clients touch on the way (system status, fees, commission rates, open interest
history), and ``limit`` handling as the registry records it (spot caps, futures reject)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import trio

from aiocea_trio import CoinMFetchUserTrades, SpotFetchMyTrades, UsdMFetchUserTrades
from aiocea_trio.endpoints import ENDPOINTS
from aiocea_trio.markets import Market
from aiocea_trio.sim import DEMO_API_KEY, DEMO_API_SECRET, SimExchange

START = 1_767_225_600_000 + 9 * 3_600_000 + 123  # 2026-01-01 09:00:00.123 UTC
DAY_MS = 86_400_000
EIGHT = Decimal("1e-8")


def D(text: str) -> Decimal:
    return Decimal(text)


class Api:
    """Signed requests, written independently of aiocea_trio's client."""

    def __init__(self, sim: SimExchange, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.http = http

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        params = {k: str(v) for k, v in (params or {}).items()}
        params.setdefault("timestamp", str(self.sim.now_ms()))
        payload = urlencode(params, quote_via=quote)
        sig = hmac.new(DEMO_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return await self.http.request(
            method, f"{path}?{payload}&signature={sig}", headers={"X-MBX-APIKEY": DEMO_API_KEY}
        )

    async def ok(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        r = await self.call(method, path, params)
        assert r.status_code == 200, r.text
        return r.json()

    async def code(self, method: str, path: str, params: dict[str, Any] | None = None) -> int:
        r = await self.call(method, path, params)
        assert r.status_code == 400, r.text
        code: int = r.json()["code"]
        return code

    async def weight(self, path: str, params: dict[str, Any]) -> int:
        """What one request costs: the used weight's growth over a second, same request."""
        used = []
        for _ in range(2):
            r = await self.call("GET", path, params)
            assert r.status_code == 200, r.text
            used.append(int(r.headers["x-mbx-used-weight-1m"]))
        return used[1] - used[0]


@pytest.fixture
async def api() -> Any:
    sim = SimExchange(seed=5, start_time_ms=START)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        yield Api(sim, http)


def market(symbol: str, side: str, qty: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty, **extra}


def spot_balances(account: dict[str, Any]) -> dict[str, Decimal]:
    return {b["asset"]: D(b["free"]) + D(b["locked"]) for b in account["balances"]}


# -- spot ------------------------------------------------------------------------------------


async def test_spot_my_trades_agree_with_fills_and_balances(
    api: Api, autojump_clock: trio.testing.MockClock
) -> None:
    before = spot_balances(await api.ok("GET", "/api/v3/account"))
    buy = await api.ok("POST", "/api/v3/order", market("BTCUSDT", "BUY", "0.004"))
    sell = await api.ok("POST", "/api/v3/order", market("BTCUSDT", "SELL", "0.003"))
    series = api.sim.market_data.get("spot", "BTCUSDT")
    assert series is not None
    now_s = api.sim.now_ms() // 1000
    c = series.range_candle(now_s + 2, now_s + 3600)
    assert c is not None
    price = f"{Decimal(c[2] + 1) / 100:.2f}"  # reached within the hour: a maker fill
    rest = await api.ok(
        "POST",
        "/api/v3/order",
        {**market("BTCUSDT", "BUY", "0.002"), "type": "LIMIT", "timeInForce": "GTC",
         "price": price},
    )
    await trio.sleep(3600)
    trades = await api.ok("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})
    assert [t["id"] for t in trades] == [1, 2, 3]
    assert [t["orderId"] for t in trades] == [buy["orderId"], sell["orderId"], rest["orderId"]]
    assert set(trades[0]) == {
        "symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission",
        "commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch",
    }
    assert [(t["isBuyer"], t["isMaker"]) for t in trades] == [
        (True, False), (False, False), (True, True)
    ]
    assert all(t["orderListId"] == -1 and t["isBestMatch"] for t in trades)
    for t, order in zip(trades[:2], (buy, sell), strict=True):
        fill = order["fills"][0]
        assert fill["tradeId"] == t["id"]
        assert (D(fill["price"]), D(fill["commission"])) == (D(t["price"]), D(t["commission"]))
        assert D(t["quoteQty"]) == D(t["price"]) * D(t["qty"])
        assert t["time"] == order["transactTime"]
    assert [t["commissionAsset"] for t in trades] == ["BTC", "USDT", "BTC"]
    assert D(trades[2]["price"]) == D(price)
    # fees add up to the balance change: quote amounts and quantities, less commissions
    after = spot_balances(await api.ok("GET", "/api/v3/account"))
    usdt = btc = Decimal(0)
    for t in trades:
        sign = 1 if t["isBuyer"] else -1
        usdt -= sign * D(t["quoteQty"])
        btc += sign * D(t["qty"])
        if t["commissionAsset"] == "USDT":
            usdt -= D(t["commission"])
        else:
            btc -= D(t["commission"])
    assert after["USDT"] - before["USDT"] == usdt
    assert after["BTC"] - before["BTC"] == btc
    for t in trades:  # the default 0.1 % of the received asset, rounded down to 1e-8
        received = D(t["qty"]) if t["isBuyer"] else D(t["quoteQty"])
        assert D(t["commission"]) == (received * D("0.001")).quantize(EIGHT, "ROUND_DOWN")


async def test_spot_my_trades_filters_and_weights(api: Api) -> None:
    orders = [
        await api.ok("POST", "/api/v3/order", market("ETHUSDT", side, "0.0100"))
        for side in ("BUY", "SELL", "BUY", "SELL", "BUY")
    ]
    all_rows = await api.ok("GET", "/api/v3/myTrades", {"symbol": "ETHUSDT"})
    assert [t["id"] for t in all_rows] == [1, 2, 3, 4, 5]
    assert await api.ok("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}) == []
    one = await api.ok(
        "GET", "/api/v3/myTrades", {"symbol": "ETHUSDT", "orderId": orders[2]["orderId"]}
    )
    assert [t["id"] for t in one] == [3]
    page = await api.ok("GET", "/api/v3/myTrades", {"symbol": "ETHUSDT", "fromId": 2, "limit": 2})
    assert [t["id"] for t in page] == [2, 3]
    newest = await api.ok("GET", "/api/v3/myTrades", {"symbol": "ETHUSDT", "limit": 2})
    assert [t["id"] for t in newest] == [4, 5]
    t0 = all_rows[0]["time"]
    ranged = await api.ok(
        "GET", "/api/v3/myTrades", {"symbol": "ETHUSDT", "startTime": t0, "endTime": t0 + 1}
    )
    assert [t["time"] for t in ranged] == [t["time"] for t in all_rows if t["time"] <= t0 + 1]
    later = await api.ok("GET", "/api/v3/myTrades", {"symbol": "ETHUSDT", "startTime": t0 + 1})
    assert later == [t for t in all_rows if t["time"] >= t0 + 1]
    bad = [
        ({"startTime": t0, "endTime": t0 + DAY_MS + 1}, -1127),
        ({"fromId": 1, "startTime": t0}, -1128),
        ({"limit": 1001}, -1130),
        ({"limit": 0}, -1130),
    ]
    for params, code in bad:
        assert await api.code("GET", "/api/v3/myTrades", {"symbol": "ETHUSDT", **params}) == code
    assert await api.code("GET", "/api/v3/myTrades", {"symbol": "NOPE"}) == -1121
    assert await api.weight("/api/v3/myTrades", {"symbol": "ETHUSDT"}) == 20
    assert await api.weight("/api/v3/myTrades", {"symbol": "ETHUSDT", "orderId": 1}) == 5


# -- futures ---------------------------------------------------------------------------------


async def test_usdm_user_trades_realized_pnl_and_wallet(api: Api) -> None:
    opened = await api.ok(
        "POST", "/fapi/v1/order", market("BTCUSDT", "BUY", "0.010", newOrderRespType="RESULT")
    )
    closed = await api.ok(
        "POST",
        "/fapi/v1/order",
        market("BTCUSDT", "SELL", "0.010", reduceOnly="true", newOrderRespType="RESULT"),
    )
    trades = await api.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert [t["id"] for t in trades] == [1, 2]
    assert set(trades[0]) == {
        "symbol", "id", "orderId", "side", "price", "qty", "realizedPnl", "quoteQty",
        "commission", "commissionAsset", "time", "positionSide", "buyer", "maker",
    }
    buy, sell = trades
    assert (buy["orderId"], sell["orderId"]) == (opened["orderId"], closed["orderId"])
    assert (buy["side"], buy["buyer"], sell["side"], sell["buyer"]) == ("BUY", True, "SELL", False)
    assert not buy["maker"]
    assert buy["positionSide"] == "BOTH"
    assert buy["realizedPnl"] == "0.00000000"
    assert D(sell["realizedPnl"]) == (D(sell["price"]) - D(buy["price"])) * D("0.010")
    for t in trades:
        assert t["commissionAsset"] == "USDT"
        assert D(t["quoteQty"]) == D(t["price"]) * D(t["qty"])
        assert D(t["commission"]) == (D(t["quoteQty"]) * D("0.0005")).quantize(EIGHT, "ROUND_DOWN")
    wallet = {b["asset"]: D(b["balance"]) for b in await api.ok("GET", "/fapi/v2/balance")}
    change = sum((D(t["realizedPnl"]) - D(t["commission"]) for t in trades), Decimal(0))
    assert wallet["USDT"] - D("100000") == change
    assert await api.code("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "limit": 1001}) == (
        -1130
    )
    start = buy["time"]
    assert (
        await api.code(
            "GET",
            "/fapi/v1/userTrades",
            {"symbol": "BTCUSDT", "startTime": start, "endTime": start + 7 * DAY_MS + 1},
        )
        == -1127
    )
    assert await api.weight("/fapi/v1/userTrades", {"symbol": "BTCUSDT"}) == 5


async def test_coinm_user_trades_base_qty_and_wallet(api: Api) -> None:
    await api.ok("POST", "/dapi/v1/order", market("BTCUSD_PERP", "SELL", "5"))
    await api.ok("POST", "/dapi/v1/order", market("BTCUSD_PERP", "BUY", "3"))
    trades = await api.ok("GET", "/dapi/v1/userTrades", {"symbol": "BTCUSD_PERP"})
    assert [t["id"] for t in trades] == [1, 2]
    assert set(trades[0]) == {
        "symbol", "id", "orderId", "pair", "side", "price", "qty", "realizedPnl", "marginAsset",
        "baseQty", "commission", "commissionAsset", "time", "positionSide", "buyer", "maker",
    }
    for t in trades:
        assert (t["pair"], t["marginAsset"], t["commissionAsset"]) == ("BTCUSD", "BTC", "BTC")
        base = D(t["qty"]) * 100 / D(t["price"])
        assert abs(D(t["baseQty"]) - base) < EIGHT
    sell, buy = trades
    expected = D(3) * 100 * (1 / D(buy["price"]) - 1 / D(sell["price"]))  # a short's
    assert abs(D(buy["realizedPnl"]) - expected) < EIGHT
    wallet = {b["asset"]: D(b["balance"]) for b in await api.ok("GET", "/dapi/v1/balance")}
    change = sum((D(t["realizedPnl"]) - D(t["commission"]) for t in trades), Decimal(0))
    assert abs(wallet["BTC"] - D(10) - change) <= 2 * EIGHT
    by_pair = await api.ok("GET", "/dapi/v1/userTrades", {"pair": "BTCUSD"})
    assert [t["id"] for t in by_pair] == [1, 2]
    assert await api.code("GET", "/dapi/v1/userTrades", {"pair": "BTCUSD", "orderId": 1}) == -1128
    assert await api.weight("/dapi/v1/userTrades", {"symbol": "BTCUSD_PERP"}) == 20


async def test_catalog_trade_tasks_against_the_simulator() -> None:
    sim = SimExchange(seed=5, start_time_ms=START)
    async with sim.client() as client:
        await client.request("POST", "/api/v3/order", market("BTCUSDT", "BUY", "0.001"), signed=True)
        await client.request("POST", "/fapi/v1/order", market("BTCUSDT", "BUY", "0.010"), signed=True)
        await client.request("POST", "/dapi/v1/order", market("BTCUSD_PERP", "BUY", "1"), signed=True)
        spot = await SpotFetchMyTrades(symbol="BTCUSDT", limit=10).execute(client)
        usdm = await UsdMFetchUserTrades(symbol="BTCUSDT", fromId=1).execute(client)
        coinm = await CoinMFetchUserTrades(symbol="BTCUSD_PERP").execute(client)
    assert [len(spot), len(usdm), len(coinm)] == [1, 1, 1]
    assert spot[0]["isBuyer"]
    assert usdm[0]["buyer"]
    assert coinm[0]["buyer"]
    assert SpotFetchMyTrades(symbol="BTCUSDT", orderId=7).weight == 5
    assert CoinMFetchUserTrades(symbol="BTCUSD_PERP").weight == 20
    with pytest.raises(ValueError, match="fromId"):
        UsdMFetchUserTrades(symbol="BTCUSDT", fromId=1, startTime=START)
    with pytest.raises(ValueError, match="limit"):
        SpotFetchMyTrades(symbol="BTCUSDT", limit=1001)


# -- the endpoints on the way ----------------------------------------------------------------


async def test_status_fees_and_commission_rates(api: Api) -> None:
    r = await api.http.get("/sapi/v1/system/status")  # unsigned
    assert r.json() == {"status": 0, "msg": "normal"}
    assert r.headers["x-mbx-used-weight-1m"] == "1"
    fees = await api.ok("GET", "/sapi/v1/asset/tradeFee")
    assert {f["symbol"] for f in fees} == set(api.sim.symbols_of("spot"))
    assert await api.ok("GET", "/sapi/v1/asset/tradeFee", {"symbol": "BTCUSDT"}) == [
        {"symbol": "BTCUSDT", "makerCommission": "0.001", "takerCommission": "0.001"}
    ]
    spot = await api.ok("GET", "/api/v3/account/commission", {"symbol": "BTCUSDT"})
    assert spot["symbol"] == "BTCUSDT"
    assert spot["standardCommission"] == {
        "maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    assert set(spot) == {
        "symbol", "standardCommission", "specialCommission", "taxCommission", "discount",
    }
    assert set(spot["discount"]) == {
        "enabledForAccount", "enabledForSymbol", "discountAsset", "discount",
    }
    assert await api.code("GET", "/api/v3/account/commission") == -1102
    for path, symbol in (("/fapi/v1/commissionRate", "BTCUSDT"),
                         ("/dapi/v1/commissionRate", "BTCUSD_PERP")):
        assert await api.ok("GET", path, {"symbol": symbol}) == {
            "symbol": symbol, "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005",
        }
        assert await api.weight(path, {"symbol": symbol}) == 20
    assert await api.weight("/api/v3/account/commission", {"symbol": "BTCUSDT"}) == 20


async def test_open_interest_history(api: Api) -> None:
    path = "/futures/data/openInterestHist"
    r = await api.http.get(path, params={"symbol": "BTCUSDT", "period": "5m"})
    assert r.status_code == 200
    assert r.headers["x-mbx-used-weight-1m"] == "0"
    rows = r.json()
    assert len(rows) == 30
    assert set(rows[0]) == {"symbol", "sumOpenInterest", "sumOpenInterestValue", "timestamp"}
    stamps = [row["timestamp"] for row in rows]
    assert all(b - a == 300_000 for a, b in itertools.pairwise(stamps))
    assert stamps[-1] <= api.sim.now_ms() < stamps[-1] + 300_000
    series = api.sim.market_data.get("usdm", "BTCUSDT")
    assert series is not None
    last = rows[-1]
    oi = D(last["sumOpenInterest"])
    assert oi == D(series.spec.qty_str(series.open_interest(last["timestamp"] // 1000)))
    price = D(series.spec.price_str(series.price_at(last["timestamp"] // 1000)))
    assert D(last["sumOpenInterestValue"]) == oi * price
    again = (await api.http.get(path, params={"symbol": "BTCUSDT", "period": "5m"})).json()
    assert again == rows  # deterministic
    start = stamps[0] // 3_600_000 * 3_600_000 - 3_600_000  # on the hour
    hour = await api.http.get(
        path, params={"symbol": "BTCUSDT", "period": "1h", "startTime": start, "limit": 3}
    )
    assert [row["timestamp"] for row in hour.json()] == [start + i * 3_600_000 for i in range(3)]
    old = await api.http.get(
        path, params={"symbol": "BTCUSDT", "period": "1d", "endTime": START - 60 * DAY_MS}
    )
    assert old.json() == []  # the latest 30 days only
    for params, code in (
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "BTCUSDT", "period": "3m"}, -1120),
        ({"symbol": "BTCUSDT", "period": "5m", "limit": 501}, -1130),
    ):
        assert (await api.http.get(path, params=params)).json()["code"] == code


# -- limits: capped or rejected, as the registry says ------------------------------------------


def test_registry_records_caps_on_spot_and_rejections_on_futures() -> None:
    for e in ENDPOINTS:
        if e.limit is None or e.signed:
            continue
        assert e.limit.oversized == ("cap" if e.market is Market.SPOT else "reject"), e


async def test_spot_caps_an_oversized_limit_futures_reject_it(api: Api) -> None:
    async def rows(path: str, **params: Any) -> Any:
        return (await api.http.get(path, params=params)).json()

    assert len(await rows("/api/v3/aggTrades", symbol="BTCUSDT", limit=12000)) == 1000
    assert len(await rows("/api/v3/trades", symbol="BTCUSDT", limit=5000)) == 1000
    assert len(await rows("/api/v3/historicalTrades", symbol="BTCUSDT", limit=1001)) == 1000
    for path in ("/api/v3/klines", "/api/v3/uiKlines"):
        assert len(await rows(path, symbol="BTCUSDT", interval="1m", limit=1001)) == 1000
    assert (await rows("/api/v3/aggTrades", symbol="BTCUSDT", limit=0))["code"] == -1130
    for prefix, symbol in (("/fapi/v1", "BTCUSDT"), ("/dapi/v1", "BTCUSD_PERP")):
        for suffix, limit in (("aggTrades", 1001), ("trades", 1001), ("historicalTrades", 1001),
                              ("fundingRate", 1001), ("depth", 5000)):
            answer = await rows(f"{prefix}/{suffix}", symbol=symbol, limit=limit)
            assert answer["code"] == -1130, (prefix, suffix)
        kl = await rows(f"{prefix}/klines", symbol=symbol, interval="1m", limit=1501)
        assert kl["code"] == -1130


async def test_coinm_klines_over_200_days_is_4088(api: Api) -> None:
    r = await api.http.get(
        "/dapi/v1/klines",
        params={"symbol": "BTCUSD_PERP", "interval": "1d", "startTime": START - 201 * DAY_MS,
                "endTime": START},
    )
    assert r.json() == {"code": -4088, "msg": "Maximum time interval is 200 days."}
