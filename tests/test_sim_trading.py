"""Simulator: signatures and timing, orders and balances, rate limits, faults (in-process)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aiocea_trio.sim import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    DEMO_ED25519_API_KEY,
    DEMO_ED25519_PRIVATE_KEY,
    AccountConfig,
    FaultConfig,
    SimExchange,
    demo_account,
)
from aiocea_trio.sim.auth import KeyEntry

START = 1_767_225_600_000 + 9 * 3_600_000 + 123  # 2026-01-01 09:00:00.123 UTC
OTHER_KEY = "A" * 64
OTHER_SECRET = "other-secret"


def hmac_sign(payload: str, secret: str = DEMO_API_SECRET) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def ed25519_sign(payload: str, pem: str = DEMO_ED25519_PRIVATE_KEY) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return base64.b64encode(key.sign(payload.encode())).decode()


def encode(params: dict[str, Any]) -> str:
    return urlencode({k: str(v) for k, v in params.items()}, quote_via=quote)


class Api:
    """A tiny signed-request helper written independently of aiocea_trio's client."""

    def __init__(self, sim: SimExchange, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        key: str = "hmac",
        timestamp: int | None = None,
        body: bool = False,
        api_key: str | None = None,
        secret: str = DEMO_API_SECRET,
    ) -> httpx.Response:
        params = dict(params or {})
        params.setdefault("timestamp", self.sim.now_ms() if timestamp is None else timestamp)
        payload = encode(params)
        if key == "hmac":
            sig = hmac_sign(payload, secret)
            api_key = api_key or DEMO_API_KEY
        else:
            sig = ed25519_sign(payload)
            api_key = api_key or DEMO_ED25519_API_KEY
        signed = payload + "&signature=" + quote(sig, safe="")
        headers = {"X-MBX-APIKEY": api_key}
        if body:
            return await self.http.request(
                method,
                path,
                content=signed.encode(),
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            )
        return await self.http.request(method, f"{path}?{signed}", headers=headers)

    async def ok(
        self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any
    ) -> Any:
        r = await self.call(method, path, params, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    async def err(
        self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[int, int, str]:
        r = await self.call(method, path, params, **kw)
        body = r.json()
        return r.status_code, body["code"], body["msg"]


def make_sim(**kw: Any) -> SimExchange:
    kw.setdefault("seed", 5)
    kw.setdefault("start_time_ms", START)
    return SimExchange(**kw)


@pytest.fixture
def sim() -> SimExchange:
    return make_sim(
        accounts=[
            demo_account(),
            AccountConfig("other", OTHER_KEY, OTHER_SECRET, spot={"USDT": "10"}),
        ]
    )


@pytest.fixture
async def api(sim: SimExchange) -> Any:
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        yield Api(sim, http)


def D(text: str) -> Decimal:
    return Decimal(text)


def balances(account: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in account["balances"]}


# -- signatures and timing -----------------------------------------------------------------


def test_documented_hmac_vector_verifies() -> None:
    entry = KeyEntry(
        "x", hmac_secret=b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    )
    payload = (
        b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        b"&recvWindow=5000&timestamp=1499827319559"
    )
    good = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert entry.verify(payload, good)
    assert entry.verify(payload, good.upper())  # hex is case-insensitive
    assert not entry.verify(payload + b"0", good)
    assert "NhqPt" not in repr(entry)


def test_self_generated_ed25519_vector_verifies() -> None:
    pem = (
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n"
        "-----END PUBLIC KEY-----\n"
    )
    entry = KeyEntry.from_pem("x", pem)
    payload = (
        b"symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"
        b"&timestamp=1668481559918&recvWindow=5000"
    )
    sig = "m5loLRxgkb9HyW0wkZ4KNrpck881bx5D0OrKNnPklvk4tlGjEJkhiP9DoyC0sc1lXA/TWugjVPrMb/bfNdmdBw=="
    assert entry.verify(payload, sig)
    assert not entry.verify(payload.replace(b"SELL", b"BUY_"), sig)
    assert not entry.verify(payload, "not base64!")


async def test_hmac_and_ed25519_signed_requests(api: Api) -> None:
    account = await api.ok("GET", "/api/v3/account")
    assert account["accountType"] == "SPOT"
    assert balances(account)["USDT"] == (D("100000"), D("0"))
    same = await api.ok("GET", "/api/v3/account", key="ed25519")
    assert same["uid"] == account["uid"]


async def test_bad_signatures_are_rejected(api: Api) -> None:
    assert await api.err("GET", "/api/v3/account", secret="wrong") == (
        400,
        -1022,
        "Signature for this request is not valid.",
    )
    # an Ed25519 signature made with another key
    other = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    ts = api.sim.now_ms()
    payload = f"timestamp={ts}"
    r = await api.http.get(
        f"/api/v3/account?{payload}&signature={quote(ed25519_sign(payload, other), safe='')}",
        headers={"X-MBX-APIKEY": DEMO_ED25519_API_KEY},
    )
    assert (r.status_code, r.json()["code"]) == (400, -1022)
    r = await api.http.get(
        f"/api/v3/account?timestamp={ts}", headers={"X-MBX-APIKEY": DEMO_API_KEY}
    )
    assert (r.status_code, r.json()["code"]) == (400, -1102)
    assert "signature" in r.json()["msg"]


async def test_signature_must_cover_the_encoded_payload(api: Api) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "20000",
        "newClientOrderId": "a:b/c",
        "timestamp": api.sim.now_ms(),
    }
    encoded = encode(params)
    assert "a%3Ab%2Fc" in encoded
    raw = "&".join(f"{k}={v}" for k, v in params.items())  # signed unencoded: rejected
    r = await api.http.post(
        f"/api/v3/order?{encoded}&signature={hmac_sign(raw)}",
        headers={"X-MBX-APIKEY": DEMO_API_KEY},
    )
    assert r.json()["code"] == -1022
    r = await api.http.post(
        f"/api/v3/order?{encoded}&signature={hmac_sign(encoded)}",
        headers={"X-MBX-APIKEY": DEMO_API_KEY},
    )
    assert r.status_code == 200, r.text
    assert r.json()["clientOrderId"] == "a:b/c"


async def test_query_and_body_are_concatenated(api: Api) -> None:
    ts = api.sim.now_ms()
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=0.001&price=20000&timestamp={ts}"
    sig = hmac_sign(query + body)  # no separator, as Binance documents
    r = await api.http.post(
        f"/api/v3/order?{query}",
        content=f"{body}&signature={sig}",
        headers={"X-MBX-APIKEY": DEMO_API_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "NEW"
    order = await api.ok(
        "POST",
        "/api/v3/order",
        {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
        body=True,
    )
    assert order["status"] == "FILLED"


async def test_api_key_errors(api: Api) -> None:
    r = await api.http.get("/api/v3/account?timestamp=1&signature=x")
    assert (r.status_code, r.json()) == (401, {"code": -2014, "msg": "API-key format invalid."})
    r = await api.http.get(
        "/api/v3/account?timestamp=1&signature=x", headers={"X-MBX-APIKEY": "short"}
    )
    assert r.json()["code"] == -2014
    assert (await api.err("GET", "/api/v3/account", api_key="B" * 64))[:2] == (401, -2015)
    # a second configured account with its own key and balances
    other = await api.ok("GET", "/api/v3/account", api_key=OTHER_KEY, secret=OTHER_SECRET)
    assert balances(other)["USDT"] == (D("10"), D("0"))


async def test_timestamp_and_recv_window(api: Api, autojump_clock: trio.testing.MockClock) -> None:
    now = api.sim.now_ms()
    assert await api.err("GET", "/api/v3/account", timestamp=now - 6000) == (
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )
    assert await api.ok("GET", "/api/v3/account", {"recvWindow": 10000}, timestamp=now - 6000)
    assert await api.ok("GET", "/api/v3/account", {"recvWindow": "6000.5"}, timestamp=now - 6000)
    code, num, msg = await api.err("GET", "/api/v3/account", timestamp=now + 1500)
    assert (code, num) == (400, -1021)
    assert "ahead" in msg
    assert await api.ok("GET", "/api/v3/account", timestamp=now + 500)
    assert (await api.err("GET", "/api/v3/account", {"recvWindow": 60001}))[:2] == (400, -1131)
    assert await api.ok("GET", "/api/v3/account", timestamp=now * 1000)  # microseconds
    r = await api.http.get("/api/v3/account?signature=ab", headers={"X-MBX-APIKEY": DEMO_API_KEY})
    assert r.json()["code"] == -1102
    assert "timestamp" in r.json()["msg"]
    assert (await api.err("GET", "/fapi/v2/balance", {"recvWindow": "5000.5"}))[:2] == (400, -1102)


async def test_timestamps_follow_the_mock_clock(
    api: Api, autojump_clock: trio.testing.MockClock
) -> None:
    ts = api.sim.now_ms()
    await trio.sleep(4)
    assert await api.ok("GET", "/api/v3/account", timestamp=ts)
    await trio.sleep(2)
    assert (await api.err("GET", "/api/v3/account", timestamp=ts))[1] == -1021


async def test_spot_inner_recv_window_check_after_latency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = make_sim(faults=FaultConfig(latency=3.0))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        api = Api(sim, http)
        t0 = trio.current_time()
        assert (await api.err("GET", "/api/v3/account", {"recvWindow": 2000}))[1] == -1021
        assert trio.current_time() - t0 == pytest.approx(3.0)
        assert await api.ok("GET", "/fapi/v2/balance", {"recvWindow": 2000})  # futures: one check


# -- spot orders -----------------------------------------------------------------------------


def limit(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": price,
        **extra,
    }


def future_extreme(sim: SimExchange, market: str, symbol: str, seconds: int) -> tuple[int, int]:
    """(low, high) ticks of the coming ``seconds`` of the deterministic path."""
    series = sim.market_data.get(market, symbol)
    assert series is not None
    now_s = sim.now_ms() // 1000
    c = series.range_candle(now_s + 2, now_s + seconds)
    assert c is not None
    return c[2], c[1]


async def test_limit_order_rests_then_fills_when_price_crosses(
    api: Api, autojump_clock: trio.testing.MockClock
) -> None:
    sim = api.sim
    low, _ = future_extreme(sim, "spot", "BTCUSDT", 3600)
    series = sim.market_data.get("spot", "BTCUSDT")
    assert series is not None
    price = low + 1  # reached within the hour
    price_str = f"{Decimal(price) / 100:.2f}"
    order = await api.ok(
        "POST", "/api/v3/order", limit("BUY", "0.01", price_str, newClientOrderId="rest-1")
    )
    assert order["status"] == "NEW"
    assert order["fills"] == []
    acct = balances(await api.ok("GET", "/api/v3/account"))
    assert acct["USDT"][1] == D(price_str) * D("0.01")  # locked
    opened = await api.ok("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [o["clientOrderId"] for o in opened] == ["rest-1"]
    placed_s = sim.now_ms() // 1000
    expected = series.first_cross(placed_s + 1, placed_s + 3600, price, True)
    assert expected is not None
    await trio.sleep(3600)
    done = await api.ok(
        "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "rest-1"}
    )
    assert done["status"] == "FILLED"
    assert done["executedQty"] == "0.01000000"
    assert done["updateTime"] // 1000 == expected
    assert D(done["cummulativeQuoteQty"]) == D(price_str) * D("0.01")
    acct2 = balances(await api.ok("GET", "/api/v3/account"))
    assert acct2["USDT"] == (acct["USDT"][0], D(0))
    assert acct2["BTC"][0] == acct["BTC"][0] + D("0.01") - D("0.00001")  # 0.1 % maker fee
    assert await api.ok("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}) == []


async def test_limit_order_far_away_does_not_fill(
    api: Api, autojump_clock: trio.testing.MockClock
) -> None:
    low, high = future_extreme(api.sim, "spot", "BTCUSDT", 600)
    far = f"{Decimal(low) / 200:.2f}"
    order = await api.ok("POST", "/api/v3/order", limit("BUY", "0.01", far))
    await trio.sleep(600)
    again = await api.ok("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
    assert again["status"] == "NEW"
    sell = await api.ok("POST", "/api/v3/order", limit("SELL", "0.01", f"{Decimal(high) / 50:.2f}"))
    assert sell["status"] == "NEW"
    assert balances(await api.ok("GET", "/api/v3/account"))["BTC"][1] == D("0.01")


async def test_market_order_fills_and_moves_balances(api: Api) -> None:
    before = balances(await api.ok("GET", "/api/v3/account"))
    book = (await api.http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})).json()
    order = await api.ok(
        "POST",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"},
    )
    assert order["status"] == "FILLED"
    assert order["type"] == "MARKET"
    assert len(order["fills"]) == 1
    fill = order["fills"][0]
    assert fill["price"] == book["asks"][0][0]  # taker at the best ask
    assert fill["commissionAsset"] == "BTC"
    cost = D(order["cummulativeQuoteQty"])
    assert cost == D(fill["price"]) * D("0.002")
    after = balances(await api.ok("GET", "/api/v3/account"))
    assert after["USDT"][0] == before["USDT"][0] - cost
    assert after["BTC"][0] == before["BTC"][0] + D("0.002") - D(fill["commission"])
    sell = await api.ok(
        "POST",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.002"},
    )
    assert sell["fills"][0]["price"] == book["bids"][0][0]
    assert sell["fills"][0]["commissionAsset"] == "USDT"
    by_quote = await api.ok(
        "POST",
        "/api/v3/order",
        {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"},
    )
    assert by_quote["status"] == "FILLED"
    assert D(by_quote["cummulativeQuoteQty"]) <= 100
    assert by_quote["origQuoteOrderQty"] == "100.00000000"


async def test_response_types(api: Api) -> None:
    ack = await api.ok(
        "POST", "/api/v3/order", limit("BUY", "0.001", "20000", newOrderRespType="ACK")
    )
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = await api.ok(
        "POST", "/api/v3/order", limit("BUY", "0.001", "20000", newOrderRespType="RESULT")
    )
    assert "fills" not in result
    assert result["status"] == "NEW"
    assert result["workingTime"] == result["transactTime"]
    full = await api.ok("POST", "/api/v3/order", limit("BUY", "0.001", "20000"))
    assert full["fills"] == []  # FULL is the LIMIT default
    queried = await api.ok("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]})
    assert {"time", "updateTime", "isWorking", "stopPrice", "icebergQty"} <= set(queried)
    assert queried["clientOrderId"] == ack["clientOrderId"]
    assert len(ack["clientOrderId"]) == 22


async def test_cancel_and_query_closed_orders_by_client_id(api: Api) -> None:
    order = await api.ok(
        "POST", "/api/v3/order", limit("BUY", "0.01", "20000", newClientOrderId="my-id-1")
    )
    assert balances(await api.ok("GET", "/api/v3/account"))["USDT"][1] == D("200")
    assert (
        await api.err(
            "POST", "/api/v3/order", limit("BUY", "0.01", "20000", newClientOrderId="my-id-1")
        )
    ) == (400, -2010, "Duplicate order sent.")
    cancelled = await api.ok(
        "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "my-id-1"}
    )
    assert cancelled["status"] == "CANCELED"
    assert cancelled["origClientOrderId"] == "my-id-1"
    assert cancelled["orderId"] == order["orderId"]
    assert balances(await api.ok("GET", "/api/v3/account"))["USDT"] == (D("100000"), D(0))
    q = await api.ok("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "my-id-1"})
    assert q["status"] == "CANCELED"
    assert await api.err(
        "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]}
    ) == (400, -2011, "Unknown order sent.")
    assert await api.err("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 1}) == (
        400,
        -2013,
        "Order does not exist.",
    )
    assert (await api.err("GET", "/api/v3/order", {"symbol": "BTCUSDT"}))[:2] == (400, -1102)
    # the id is free again once the first order is closed
    again = await api.ok(
        "POST", "/api/v3/order", limit("BUY", "0.01", "20000", newClientOrderId="my-id-1")
    )
    assert again["orderId"] != order["orderId"]
    q = await api.ok("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "my-id-1"})
    assert q["orderId"] == again["orderId"]
    everything = await api.ok("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"})
    assert [o["status"] for o in everything] == ["CANCELED", "NEW"]
    cancelled_all = await api.ok("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [o["status"] for o in cancelled_all] == ["CANCELED"]


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        (limit("BUY", "0.01", "20000.001"), -1013, "Filter failure: PRICE_FILTER"),
        (limit("BUY", "0.000001", "20000"), -1013, "Filter failure: LOT_SIZE"),
        (limit("BUY", "0.0001", "20000"), -1013, "Filter failure: NOTIONAL"),
        (
            limit("BUY", "10", "20000"),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (
            limit("SELL", "5", "20000"),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        ({**limit("BUY", "0.01", "20000"), "symbol": "NOPE"}, -1121, "Invalid symbol."),
        ({**limit("BUY", "0.01", "20000"), "side": "UP"}, -1117, "Invalid side."),
        ({**limit("BUY", "0.01", "20000"), "type": "STOP"}, -1116, "Invalid orderType."),
        ({**limit("BUY", "0.01", "20000"), "timeInForce": "XYZ"}, -1115, "Invalid timeInForce."),
        (
            {k: v for k, v in limit("BUY", "0.01", "20000").items() if k != "price"},
            -1102,
            "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
        ),
        ({**limit("BUY", "0.01", "20000"), "price": "1e5"}, -1100, None),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, -1102, None),
        (
            {**limit("BUY", "0.01", "999999"), "type": "LIMIT_MAKER"},
            -2010,
            "Order would immediately match and take.",
        ),
    ],
)
async def test_order_rejections(
    api: Api, params: dict[str, Any], code: int, msg: str | None
) -> None:
    status, got, text = await api.err("POST", "/api/v3/order", params)
    assert (status, got) == (400, code)
    if msg is not None:
        assert text == msg
    assert await api.ok("GET", "/api/v3/openOrders") == []


async def test_ioc_that_cannot_fill_expires(api: Api) -> None:
    order = await api.ok("POST", "/api/v3/order", limit("BUY", "0.01", "20000", timeInForce="IOC"))
    assert order["status"] == "EXPIRED"
    assert balances(await api.ok("GET", "/api/v3/account"))["USDT"] == (D("100000"), D(0))


async def test_test_order_validates_without_placing(api: Api) -> None:
    assert await api.ok("POST", "/api/v3/order/test", limit("BUY", "0.01", "20000")) == {}
    rates = await api.ok(
        "POST", "/api/v3/order/test", limit("BUY", "0.01", "20000", computeCommissionRates="true")
    )
    assert rates["standardCommissionForOrder"]["taker"] == "0.00100000"
    assert (await api.err("POST", "/api/v3/order/test", limit("BUY", "0.01", "1.001")))[1] == -1013
    assert await api.ok("GET", "/api/v3/openOrders") == []


# -- futures -----------------------------------------------------------------------------------


async def test_usdm_market_order_opens_and_closes_a_position(api: Api) -> None:
    ack = await api.ok(
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"},
    )
    assert ack["status"] == "NEW"
    assert ack["executedQty"] == "0.000"
    q = await api.ok("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]})
    assert q["status"] == "FILLED"
    assert q["executedQty"] == "0.010"
    pos = await api.ok("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert len(pos) == 1
    assert pos[0]["positionAmt"] == "0.010"
    assert D(pos[0]["entryPrice"]) == D(q["avgPrice"])
    bal = await api.ok("GET", "/fapi/v2/balance")
    usdt = next(b for b in bal if b["asset"] == "USDT")
    fee = D(q["cumQuote"]) * D("0.0005")
    assert D(usdt["balance"]) == D("100000") - fee.quantize(D("1e-8"))
    close = await api.ok(
        "POST",
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "0.010",
            "reduceOnly": "true",
            "newOrderRespType": "RESULT",
        },
    )
    assert close["status"] == "FILLED"
    pos = await api.ok("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert pos[0]["positionAmt"] == "0.000"
    assert (
        await api.err(
            "POST",
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "MARKET",
                "quantity": "0.010",
                "reduceOnly": "true",
            },
        )
    )[1] == -2022


async def test_usdm_limit_order_life_cycle_and_errors(api: Api) -> None:
    params = {
        "symbol": "ETHUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.100",
        "price": "1000.00",
        "newClientOrderId": "f-1",
    }
    order = await api.ok("POST", "/fapi/v1/order", params)
    assert order["status"] == "NEW"
    assert order["positionSide"] == "BOTH"
    assert (await api.err("POST", "/fapi/v1/order", params))[1] == -4116
    opened = await api.ok("GET", "/fapi/v1/openOrders", {"symbol": "ETHUSDT"})
    assert [o["clientOrderId"] for o in opened] == ["f-1"]
    cancelled = await api.ok(
        "DELETE", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "f-1"}
    )
    assert cancelled["status"] == "CANCELED"
    q = await api.ok("GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "f-1"})
    assert q["status"] == "CANCELED"
    bad_tick = {**params, "price": "1000.001", "newClientOrderId": "f-2"}
    assert (await api.err("POST", "/fapi/v1/order", bad_tick))[1] == -4014
    small = {**params, "quantity": "0.001", "newClientOrderId": "f-3"}
    assert (await api.err("POST", "/fapi/v1/order", small))[1] == -4164
    huge = {**params, "quantity": "9000", "price": "3000", "newClientOrderId": "f-4"}
    assert await api.err("POST", "/fapi/v1/order", huge) == (400, -2019, "Margin is insufficient.")


async def test_coinm_orders_positions_and_balance(
    api: Api, autojump_clock: trio.testing.MockClock
) -> None:
    order = await api.ok(
        "POST",
        "/dapi/v1/order",
        {
            "symbol": "BTCUSD_PERP",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "5",
            "newOrderRespType": "RESULT",
        },
    )
    assert order["status"] == "FILLED"
    assert order["pair"] == "BTCUSD"
    assert D(order["cumBase"]) > 0
    assert "cumQuote" not in order
    pos = await api.ok("GET", "/dapi/v1/positionRisk", {"pair": "BTCUSD"})
    by_symbol = {p["symbol"]: p for p in pos}
    assert by_symbol["BTCUSD_PERP"]["positionAmt"] == "-5"
    assert "maxQty" in by_symbol["BTCUSD_PERP"]
    assert api.sim.quarterly_symbol in by_symbol
    await trio.sleep(3600)
    bal = {b["asset"]: b for b in await api.ok("GET", "/dapi/v1/balance")}
    assert D(bal["BTC"]["balance"]) < D("10")  # taker fee paid in BTC
    assert D(bal["BTC"]["crossUnPnl"]) != 0  # the price moved in an hour
    assert bal["ETH"]["balance"] == "100.00000000"


# -- rate limits -------------------------------------------------------------------------------


async def test_weight_headers_follow_the_weight_table(api: Api) -> None:
    async def used(path: str, **params: Any) -> int:
        r = await api.http.get(path, params=params)
        return int(r.headers["X-MBX-USED-WEIGHT-1M"])

    assert await used("/api/v3/ping") == 1
    assert await used("/api/v3/depth", symbol="BTCUSDT", limit="500") == 26
    assert await used("/api/v3/exchangeInfo") == 46
    assert await used("/api/v3/ticker/24hr") == 126
    assert await used("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit="1200") == 10
    assert await used("/dapi/v1/premiumIndex") == 10
    r = await api.call("GET", "/api/v3/account")
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == "146"


async def test_spot_orders_are_free_when_they_succeed(api: Api) -> None:
    r = await api.call("POST", "/api/v3/order", limit("BUY", "0.01", "20000"))
    assert r.status_code == 200
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == "0"
    assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert r.headers["X-MBX-ORDER-COUNT-1D"] == "1"
    r = await api.call("POST", "/api/v3/order", limit("BUY", "0.01", "1.001"))
    assert r.status_code == 400
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"  # failed: pays
    r = await api.call("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 4000000001})
    assert r.status_code == 200
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    r = await api.call(
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"},
    )
    assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert r.headers["X-MBX-ORDER-COUNT-1M"] == "1"


async def test_429_then_escalating_418_bans(autojump_clock: trio.testing.MockClock) -> None:
    sim = make_sim(weight_window=10, weight_limits={"spot": 10}, ban_grace=0)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        for i in range(5):
            r = await http.get("/api/v3/avgPrice", params={"symbol": "BTCUSDT"})
            assert r.status_code == 200
            assert r.headers["X-MBX-USED-WEIGHT-10S"] == str(2 * (i + 1))
        r = await http.get("/api/v3/ping")
        assert r.status_code == 429
        assert r.json()["code"] == -1003
        assert "10 SECOND" in r.json()["msg"]
        window_left = 10 - (sim.now_ms() % 10_000) / 1000
        assert int(r.headers["Retry-After"]) == pytest.approx(window_left, abs=1)
        # honouring Retry-After: the next window is clean
        await trio.sleep(int(r.headers["Retry-After"]))
        assert (await http.get("/api/v3/ping")).status_code == 200
        # keep sending after a 429: banned for 2 minutes, then 4
        bans = []
        for _ in range(2):
            while (
                r := await http.get("/api/v3/avgPrice", params={"symbol": "BTCUSDT"})
            ).status_code == 200:
                pass
            assert r.status_code == 429
            r = await http.get("/api/v3/ping")
            assert r.status_code == 418
            assert "IP banned until" in r.json()["msg"]
            bans.append(int(r.headers["Retry-After"]))
            r = await http.get("/api/v3/ping")
            assert r.status_code == 418  # still banned
            await trio.sleep(bans[-1])
            assert (await http.get("/api/v3/ping")).status_code == 200
        assert bans == [120, 240]
        assert sim.limiter.answered_418 == 4
        # another market and another IP are unaffected by this IP's spot weight
        assert (await http.get("/fapi/v1/ping")).status_code == 200


async def test_weight_is_per_ip(autojump_clock: trio.testing.MockClock) -> None:
    sim = make_sim(weight_limits={"spot": 3})
    a = httpx.AsyncClient(transport=sim.transport("10.0.0.1"), base_url="http://sim")
    b = httpx.AsyncClient(transport=sim.transport("10.0.0.2"), base_url="http://sim")
    async with a, b:
        for _ in range(3):
            assert (await a.get("/api/v3/ping")).status_code == 200
        assert (await a.get("/api/v3/ping")).status_code == 429
        r = await b.get("/api/v3/ping")
        assert r.status_code == 200
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_order_count_limit(autojump_clock: trio.testing.MockClock) -> None:
    sim = make_sim(order_limits={"spot": ((10, 2), (86400, 100))})
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        api = Api(sim, http)
        for n in (1, 2):
            r = await api.call("POST", "/api/v3/order", limit("BUY", "0.001", "20000"))
            assert r.headers["X-MBX-ORDER-COUNT-10S"] == str(n)
        r = await api.call("POST", "/api/v3/order", limit("BUY", "0.001", "20000"))
        assert r.status_code == 429
        assert r.json() == {
            "code": -1015,
            "msg": "Too many new orders; current limit is 2 orders per 10 SECOND.",
        }
        await trio.sleep(10)
        r = await api.call("POST", "/api/v3/order", limit("BUY", "0.001", "20000"))
        assert r.status_code == 200
        assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1"
        assert r.headers["X-MBX-ORDER-COUNT-1D"] == "3"


# -- faults ------------------------------------------------------------------------------------


async def test_error_fault_is_503_and_does_nothing() -> None:
    sim = make_sim(faults=FaultConfig(error_rate=1.0, orders_only=True))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        api = Api(sim, http)
        assert (await http.get("/api/v3/ping")).status_code == 200  # orders only
        r = await api.call(
            "POST", "/api/v3/order", limit("BUY", "0.001", "20000", newClientOrderId="e-1")
        )
        assert r.status_code == 503
        assert r.json()["code"] == -1006
        assert "status unknown" in r.json()["msg"]
        assert sim.account().open == {}


async def test_dropped_connection_is_a_transport_error() -> None:
    sim = make_sim(faults=FaultConfig(drop_rate=1.0, paths=("/fapi/",)))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        assert (await http.get("/api/v3/ping")).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/fapi/v1/ping")
        api = Api(sim, http)
        with pytest.raises(httpx.RemoteProtocolError):
            await api.call(
                "POST",
                "/fapi/v1/order",
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"},
            )
        assert sim.account().orders == {}


async def test_lost_order_response_places_the_order() -> None:
    sim = make_sim(faults=FaultConfig(lost_order_response_rate=1.0))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        api = Api(sim, http)
        with pytest.raises(httpx.RemoteProtocolError):
            await api.call(
                "POST", "/api/v3/order", limit("BUY", "0.001", "20000", newClientOrderId="lost-1")
            )
        q = await api.ok(
            "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "lost-1"}
        )
        assert q["status"] == "NEW"
        # retrying with the same client id is refused: no double placement
        assert (
            await api.err(
                "POST", "/api/v3/order", limit("BUY", "0.001", "20000", newClientOrderId="lost-1")
            )
        )[1] == -2010
        cancelled = await api.ok(
            "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "lost-1"}
        )
        assert cancelled["status"] == "CANCELED"  # cancels are not "lost"


async def test_latency_fault_uses_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    sim = make_sim(
        faults=[
            FaultConfig(latency=0.25, paths=("/api/v3/time",)),
            FaultConfig(latency=1.0, latency_jitter=0.5, paths=("/fapi/",)),
        ]
    )
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        t0 = trio.current_time()
        await http.get("/api/v3/time")
        assert trio.current_time() - t0 == pytest.approx(0.25)
        t1 = trio.current_time()
        await http.get("/api/v3/ping")
        assert trio.current_time() == t1
        await http.get("/fapi/v1/ping")
        assert 1.0 <= trio.current_time() - t1 <= 1.5


async def test_faults_are_seeded() -> None:
    async def pattern(seed: int) -> list[int]:
        sim = make_sim(seed=seed, faults=FaultConfig(error_rate=0.5))
        async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
            return [(await http.get("/api/v3/ping")).status_code for _ in range(40)]

    first = await pattern(1)
    assert first == await pattern(1)
    assert first != await pattern(2)
    assert 5 < first.count(503) < 35


def test_fault_config_validates() -> None:
    with pytest.raises(ValueError):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValueError):
        make_sim(weight_window=0.5)
    with pytest.raises(ValueError):
        make_sim(accounts=[AccountConfig("x", "short", "s")])


def test_ban_lengths_double_up_to_the_maximum() -> None:
    from aiocea_trio.sim.errors import ApiError
    from aiocea_trio.sim.limits import WeightLimiter

    limiter = WeightLimiter(60, {"spot": 1}, ban_base=1.0, ban_max=3.0, ban_grace=0)
    now = 0
    lengths = []
    for _ in range(4):
        now = (now // 60_000 + 1) * 60_000  # a fresh window
        limiter.charge("spot", "ip", 1, now)
        with pytest.raises(ApiError) as e429:
            limiter.charge("spot", "ip", 1, now)
        assert e429.value.status == 429
        with pytest.raises(ApiError) as e418:
            limiter.charge("spot", "ip", 1, now)
        assert e418.value.status == 418
        lengths.append(int(e418.value.headers["Retry-After"]))
    assert lengths == [1, 2, 3, 3]


async def test_duplicate_parameters_are_rejected(api: Api) -> None:
    r = await api.http.get("/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT")
    assert r.status_code == 400
    assert r.json() == {"code": -1101, "msg": "Duplicate values for a parameter detected."}
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == "5"  # charged all the same


async def test_futures_account_views(api: Api) -> None:
    await api.ok(
        "POST",
        "/fapi/v1/order",
        {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "1.000"},
    )
    await api.ok(
        "POST",
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "10000",
        },
    )
    v3 = await api.ok("GET", "/fapi/v3/account")
    # v3: symbols with a position or open orders only (Binance's v3 account)
    assert [p["symbol"] for p in v3["positions"]] == ["BTCUSDT", "ETHUSDT"]
    assert D(v3["totalPositionInitialMargin"]) > 0
    assert D(v3["totalOpenOrderInitialMargin"]) == D("10000") * D("0.010") / 20
    assert D(v3["availableBalance"]) < D(v3["totalWalletBalance"])
    v2 = await api.ok("GET", "/fapi/v2/account")
    assert {p["symbol"] for p in v2["positions"]} == {"BTCUSDT", "ETHUSDT"}
    coin = await api.ok("GET", "/dapi/v1/account")
    assert {a["asset"] for a in coin["assets"]} == {"BTC", "ETH"}
    assert coin["canTrade"] is True
