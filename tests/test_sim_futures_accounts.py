"""Simulator: futures accounts and positions (issue 15 items 4-7): every margin asset, positions
with Binance's risk formulas, leverage / margin type / income, one shape per version."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import trio

from aiocea_trio.endpoints import find
from aiocea_trio.sim import DEMO_API_KEY, DEMO_API_SECRET, SimExchange
from aiocea_trio.sim.accounts import fmt

START = 1_767_225_600_000 + 9 * 3_600_000 + 123  # 2026-01-01 09:00:00.123 UTC
FUNDING_MS = 28_800_000


class Api:
    """Signed requests, written independently of aiocea_trio's client."""

    def __init__(self, sim: SimExchange, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.http = http

    async def call(self, method: str, path: str, params: dict[str, Any] | None) -> httpx.Response:
        params = {k: str(v) for k, v in (params or {}).items()}
        params["timestamp"] = str(self.sim.now_ms())
        payload = urlencode(params, quote_via=quote)
        sig = hmac.new(DEMO_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        headers = {"X-MBX-APIKEY": DEMO_API_KEY}
        return await self.http.request(method, f"{path}?{payload}&signature={sig}", headers=headers)

    async def ok(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        r = await self.call(method, path, params)
        assert r.status_code == 200, r.text
        return r.json()

    async def err(
        self, method: str, path: str, params: dict[str, Any] | None = None
    ) -> tuple[int, int, str]:
        r = await self.call(method, path, params)
        body = r.json()
        return r.status_code, body["code"], body["msg"]


def make_sim() -> SimExchange:
    return SimExchange(seed=5, start_time_ms=START)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    sim = make_sim()
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        yield Api(sim, http)


def D(text: str) -> Decimal:
    return Decimal(text)


def market(symbol: str, side: str, qty: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty, **extra}


def _negative_zeros(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [z for v in value.values() for z in _negative_zeros(v)]
    if isinstance(value, list):
        return [z for v in value for z in _negative_zeros(v)]
    if isinstance(value, str) and value.startswith("-") and not value.strip("-0."):
        return [value]
    return []


# -- item 4: every margin asset --------------------------------------------------------------


async def test_every_margin_asset_is_listed(api: Api) -> None:
    usdm = ["USDT", "BTC", "BNB", "ETH", "USDC", "FDUSD"]
    for path in ("/fapi/v2/balance", "/fapi/v3/balance"):
        rows = await api.ok("GET", path)
        assert [r["asset"] for r in rows] == usdm
        by_asset = {r["asset"]: r for r in rows}
        assert by_asset["BTC"]["balance"] == "0.00000000"
        assert by_asset["USDT"]["balance"] == "100000.00000000"
    for path in ("/fapi/v2/account", "/fapi/v3/account"):
        account = await api.ok("GET", path)
        assert [a["asset"] for a in account["assets"]] == usdm
    coin = await api.ok("GET", "/dapi/v1/balance")
    assert [r["asset"] for r in coin] == ["BTC", "ETH"]
    coin_account = await api.ok("GET", "/dapi/v1/account")
    assert [a["asset"] for a in coin_account["assets"]] == ["BTC", "ETH"]
    # exchangeInfo lists the same margin assets.
    async with api.sim.client() as client:
        info = await client.request("GET", "/fapi/v1/exchangeInfo")
        coin_info = await client.request("GET", "/dapi/v1/exchangeInfo")
    assert [a["asset"] for a in info["assets"]] == usdm
    assert [a["asset"] for a in coin_info["assets"]] == ["BTC", "ETH"]


# -- item 5 and 6: positions, income, and how they add up ------------------------------------


async def test_usdm_round_trip_adds_up(api: Api, autojump_clock: trio.testing.MockClock) -> None:
    """Open, hold across a funding time, close: wallet change = realized PnL - commissions +
    funding, and account, balance, positions, income and userTrades agree."""
    before = D((await api.ok("GET", "/fapi/v2/balance"))[0]["balance"])
    opened = api.sim.now_ms()
    await api.ok("POST", "/fapi/v1/order", market("BTCUSDT", "BUY", "0.100"))
    pos = (await api.ok("GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"}))[0]
    assert pos["positionAmt"] == "0.100"
    assert D(pos["notional"]) == D("0.100") * D(pos["markPrice"])
    assert D(pos["unRealizedProfit"]) == (D(pos["markPrice"]) - D(pos["entryPrice"])) * D("0.1")
    await trio.sleep(8 * 3600)  # across the next funding time
    await api.ok("POST", "/fapi/v1/order", market("BTCUSDT", "SELL", "0.100", reduceOnly="true"))
    after_rows = await api.ok("GET", "/fapi/v2/balance")
    after = D(after_rows[0]["balance"])
    trades = await api.ok("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    income = await api.ok("GET", "/fapi/v1/income", {"limit": 1000})
    kinds = {i["incomeType"] for i in income}
    assert kinds == {"REALIZED_PNL", "COMMISSION", "FUNDING_FEE"}
    realized = sum(D(t["realizedPnl"]) for t in trades)
    commissions = sum(D(t["commission"]) for t in trades)
    by_kind = {k: sum(D(i["income"]) for i in income if i["incomeType"] == k) for k in kinds}
    assert by_kind["REALIZED_PNL"] == realized
    assert by_kind["COMMISSION"] == -commissions
    funding = [i for i in income if i["incomeType"] == "FUNDING_FEE"]
    assert len(funding) == 1
    # the funding fee, by hand: -positionAmt * mark at the funding time * funding rate
    k = opened // FUNDING_MS + 1
    assert funding[0]["time"] == k * FUNDING_MS
    r = await api.http.get(
        "/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", "startTime": k * FUNDING_MS}
    )
    rates = r.json()
    fee = -D("0.1") * D(rates[0]["markPrice"]) * D(rates[0]["fundingRate"])
    assert D(funding[0]["income"]) == fee.quantize(D("1e-8"), "ROUND_DOWN")
    assert after - before == realized - commissions + by_kind["FUNDING_FEE"]
    assert after - before == sum(D(i["income"]) for i in income)
    account = await api.ok("GET", "/fapi/v3/account")
    assert D(account["totalWalletBalance"]) == after
    assert account["positions"] == []
    pos = (await api.ok("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"}))[0]
    assert (pos["positionAmt"], pos["unRealizedProfit"], pos["liquidationPrice"]) == (
        "0.000", "0.00000000", "0"
    )
    assert _negative_zeros([account, pos, after_rows, income]) == []
    # filters: incomeType, limit and page
    only = await api.ok("GET", "/fapi/v1/income", {"incomeType": "COMMISSION"})
    assert [i["incomeType"] for i in only] == ["COMMISSION", "COMMISSION"]
    first = await api.ok("GET", "/fapi/v1/income", {"limit": 1})
    second = await api.ok("GET", "/fapi/v1/income", {"limit": 1, "page": 2})
    assert [first[0]["tranId"], second[0]["tranId"]] == [i["tranId"] for i in income[:2]]


async def test_coinm_round_trip_adds_up(api: Api, autojump_clock: trio.testing.MockClock) -> None:
    before = D((await api.ok("GET", "/dapi/v1/balance"))[0]["balance"])
    await api.ok("POST", "/dapi/v1/order", market("BTCUSD_PERP", "BUY", "5"))
    pos = (await api.ok("GET", "/dapi/v1/positionRisk", {"pair": "BTCUSD"}))[0]
    assert pos["positionAmt"] == "5"
    entry, mark = D(pos["entryPrice"]), D(pos["markPrice"])
    # COIN-M: notional = contracts * contractSize / mark (coin); uPnL = amt*size*(1/EP - 1/MP)
    assert D(pos["notionalValue"]) == (D(5) * 100 / mark).quantize(D("1e-8"))
    upnl = D(5) * 100 * (1 / entry - 1 / mark)
    assert abs(D(pos["unRealizedProfit"]) - upnl) < D("1e-8")
    # Binance COIN-M (cross, one position, bracket 1: cumB = 0):
    #   LP = (|pos|*CS*MMR + side*|pos|*CS) / (WB - TMM1 + UPNL1 + cumB + side*|pos|*CS/EP)
    wallet = D((await api.ok("GET", "/dapi/v1/balance"))[0]["crossWalletBalance"])
    lp = (5 * 100 * D("0.004") + 5 * 100) / (wallet + 5 * 100 / entry)
    assert abs(D(pos["liquidationPrice"]) - lp) < D("1e-6")
    await trio.sleep(8 * 3600)
    await api.ok("POST", "/dapi/v1/order", market("BTCUSD_PERP", "SELL", "5"))
    after = D((await api.ok("GET", "/dapi/v1/balance"))[0]["balance"])
    trades = await api.ok("GET", "/dapi/v1/userTrades", {"symbol": "BTCUSD_PERP"})
    income = await api.ok("GET", "/dapi/v1/income", {"symbol": "BTCUSD_PERP"})
    assert {i["incomeType"] for i in income} == {"REALIZED_PNL", "COMMISSION", "FUNDING_FEE"}
    assert all(i["asset"] == "BTC" for i in income)
    realized = sum(D(t["realizedPnl"]) for t in trades)
    commissions = sum(D(t["commission"]) for t in trades)
    funding = sum(D(i["income"]) for i in income if i["incomeType"] == "FUNDING_FEE")
    assert after - before == realized - commissions + funding
    assert after - before == sum(D(i["income"]) for i in income)


async def test_cross_liquidation_price_and_leverage_by_hand(api: Api) -> None:
    await api.ok("POST", "/fapi/v1/order", market("BTCUSDT", "SELL", "0.500"))
    wallet = D((await api.ok("GET", "/fapi/v2/balance"))[0]["crossWalletBalance"])
    pos = (await api.ok("GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"}))[0]
    entry, mark = D(pos["entryPrice"]), D(pos["markPrice"])
    notional = D("0.5") * mark  # well under 50,000 USDT: bracket 1 (mmr 0.4 %, cum 0)
    assert notional < 50_000
    assert D(pos["notional"]) == -notional
    # Binance (one-way, cross, one position): LP = (WB - TMM1 + UPNL1 + cumB - side*|pos|*EP)
    #   / (|pos|*MMR - side*|pos|), with TMM1 = UPNL1 = 0 (no other position), cumB = 0,
    #   side = -1 (short)
    lp = (wallet - 0 + 0 + 0 - (-1) * D("0.5") * entry) / (D("0.5") * D("0.004") - (-1) * D("0.5"))
    assert abs(D(pos["liquidationPrice"]) - lp) < D("1e-6")
    assert lp > entry
    assert D(pos["maintMargin"]) == (notional * D("0.004")).quantize(D("1e-8"))
    assert D(pos["positionInitialMargin"]) == (notional / 20).quantize(D("1e-8"))
    lev = await api.ok("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 50})
    assert lev == {"leverage": 50, "maxNotionalValue": "3000000", "symbol": "BTCUSDT"}
    pos = (await api.ok("GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"}))[0]
    assert D(pos["positionInitialMargin"]) == (notional / 50).quantize(D("1e-8"))
    assert abs(D(pos["liquidationPrice"]) - lp) < D("1e-6")  # cross: leverage does not move it
    rows = await api.ok("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert (rows[0]["leverage"], rows[0]["maxNotionalValue"]) == ("50", "3000000")


async def test_isolated_liquidation_price_by_hand(api: Api) -> None:
    ok = await api.ok("POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    assert ok == {"code": 200, "msg": "success"}
    await api.ok("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 10})
    await api.ok("POST", "/fapi/v1/order", market("BTCUSDT", "BUY", "0.100"))
    pos = (await api.ok("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"}))[0]
    assert pos["marginType"] == "isolated"
    entry = D(pos["entryPrice"])
    # isolated wallet = |pos| * EP / leverage
    iso_wallet = D("0.1") * entry / 10
    assert D(pos["isolatedWallet"]) == iso_wallet.quantize(D("1e-8"))
    assert D(pos["isolatedMargin"]) == (iso_wallet + D(pos["unRealizedProfit"])).quantize(
        D("1e-8")
    )
    # Binance, isolated long: LP = (WB + cumB - |pos|*EP) / (|pos|*MMR - |pos|), WB = isolated
    # wallet, cumB = 0 (bracket 1): about EP * (1 - 1/10) / (1 - 0.004)
    lp = (iso_wallet + 0 - D("0.1") * entry) / (D("0.1") * D("0.004") - D("0.1"))
    assert abs(D(pos["liquidationPrice"]) - lp) < D("1e-6")
    assert D("0.89") * entry < lp < D("0.91") * entry
    # a higher leverage: a smaller isolated wallet, a liquidation price nearer the entry
    await api.ok("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 20})
    nearer = (await api.ok("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"}))[0]
    assert D(nearer["isolatedWallet"]) == (D("0.1") * entry / 20).quantize(D("1e-8"))
    assert lp < D(nearer["liquidationPrice"]) < entry
    # the balance: the isolated wallet is out of the cross wallet
    usdt = (await api.ok("GET", "/fapi/v2/balance"))[0]
    assert D(usdt["crossWalletBalance"]) == D(usdt["balance"]) - D(nearer["isolatedWallet"])


async def test_leverage_and_margin_type_errors(api: Api) -> None:
    assert await api.err(
        "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "CROSSED"}
    ) == (400, -4046, "No need to change margin type.")
    assert await api.err("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 126}) == (
        400, -4028, "Leverage 126 is not valid"
    )
    assert (await api.err("POST", "/dapi/v1/leverage", {"symbol": "BTCUSD_PERP", "leverage": 0}))[
        1
    ] == -4028
    await api.ok("POST", "/fapi/v1/order", market("BTCUSDT", "BUY", "0.010"))
    assert await api.err(
        "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}
    ) == (400, -4048, "Margin type cannot be changed if there exists position.")
    limit = {"type": "LIMIT", "timeInForce": "GTC", "price": "1000"}
    await api.ok("POST", "/fapi/v1/order", {**market("ETHUSDT", "BUY", "0.100"), **limit})
    assert (
        await api.err("POST", "/fapi/v1/marginType", {"symbol": "ETHUSDT", "marginType": "ISOLATED"})
    )[1] == -4047
    ok = await api.ok(
        "POST", "/dapi/v1/marginType", {"symbol": "BTCUSD_PERP", "marginType": "ISOLATED"}
    )
    assert ok["code"] == 200
    lev = await api.ok("POST", "/dapi/v1/leverage", {"symbol": "BTCUSD_PERP", "leverage": 20})
    assert lev == {"leverage": 20, "maxQty": "50", "symbol": "BTCUSD_PERP"}


async def test_coinm_leverage_bracket(api: Api) -> None:
    rows = await api.ok("GET", "/dapi/v2/leverageBracket", {"symbol": "BTCUSD_PERP"})
    assert rows[0]["symbol"] == "BTCUSD_PERP"
    first = rows[0]["brackets"][0]
    assert set(first) == {"bracket", "initialLeverage", "qtyCap", "qtyFloor", "maintMarginRatio",
                          "cum"}  # fmt: skip
    usdm = await api.ok("GET", "/fapi/v1/leverageBracket", {"symbol": "BTCUSDT"})
    second = usdm["brackets"][1]
    assert (second["notionalFloor"], second["maintMarginRatio"], second["cum"]) == (
        50_000, 0.005, 50.0
    )


def test_registry_entries_and_weights() -> None:
    for prefix, income in (("fapi", 30), ("dapi", 20)):
        market = "usdm" if prefix == "fapi" else "coinm"
        for method, path, weight in (
            ("POST", f"/{prefix}/v1/leverage", 1),
            ("POST", f"/{prefix}/v1/marginType", 1),
            ("GET", f"/{prefix}/v1/income", income),
        ):
            e = find(market, method, path)
            assert e.signed
            assert e.request_weight({}) == weight
    assert find("coinm", "GET", "/dapi/v2/leverageBracket").signed


def test_fmt_never_prints_a_negative_zero() -> None:
    assert fmt(Decimal("-0")) == "0.00000000"
    assert fmt(Decimal("-0.000000001")) == "0.00000000"
    assert fmt(Decimal("-0.1"), 2) == "-0.10"


# -- item 7: one shape per version -----------------------------------------------------------

ASSET = {"asset", "walletBalance", "unrealizedProfit", "marginBalance", "maintMargin",
         "initialMargin", "positionInitialMargin", "openOrderInitialMargin", "crossWalletBalance",
         "crossUnPnl", "availableBalance", "maxWithdrawAmount", "updateTime"}  # fmt: skip
TOTALS = {"totalInitialMargin", "totalMaintMargin", "totalWalletBalance", "totalUnrealizedProfit",
          "totalMarginBalance", "totalPositionInitialMargin", "totalOpenOrderInitialMargin",
          "totalCrossWalletBalance", "totalCrossUnPnl", "availableBalance",
          "maxWithdrawAmount"}  # fmt: skip


async def test_each_version_answers_with_its_own_fields(api: Api) -> None:
    await api.ok("POST", "/fapi/v1/order", market("BTCUSDT", "BUY", "0.010"))
    v2 = await api.ok("GET", "/fapi/v2/account")
    assert set(v2) == TOTALS | {"feeTier", "feeBurn", "canTrade", "canDeposit", "canWithdraw",
                                "updateTime", "multiAssetsMargin", "tradeGroupId", "assets",
                                "positions"}  # fmt: skip
    assert set(v2["assets"][0]) == ASSET | {"marginAvailable"}
    assert set(v2["positions"][0]) == {
        "symbol", "initialMargin", "maintMargin", "unrealizedProfit", "positionInitialMargin",
        "openOrderInitialMargin", "leverage", "isolated", "entryPrice", "breakEvenPrice",
        "maxNotional", "bidNotional", "askNotional", "positionSide", "positionAmt", "updateTime",
    }  # fmt: skip
    v3 = await api.ok("GET", "/fapi/v3/account")
    assert set(v3) == TOTALS | {"assets", "positions"}
    assert set(v3["assets"][0]) == ASSET
    assert set(v3["positions"][0]) == {
        "symbol", "positionSide", "positionAmt", "unrealizedProfit", "isolatedMargin", "notional",
        "isolatedWallet", "initialMargin", "maintMargin", "updateTime",
    }  # fmt: skip
    risk2 = await api.ok("GET", "/fapi/v2/positionRisk")
    assert [r["symbol"] for r in risk2] == ["BTCUSDT", "ETHUSDT"]  # every symbol
    assert set(risk2[0]) == {
        "symbol", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice", "unRealizedProfit",
        "liquidationPrice", "leverage", "maxNotionalValue", "marginType", "isolatedMargin",
        "isAutoAddMargin", "positionSide", "notional", "isolatedWallet", "updateTime",
    }  # fmt: skip
    risk3 = await api.ok("GET", "/fapi/v3/positionRisk")
    assert [r["symbol"] for r in risk3] == ["BTCUSDT"]  # with a position or open orders only
    assert set(risk3[0]) == {
        "symbol", "positionSide", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice",
        "unRealizedProfit", "liquidationPrice", "isolatedMargin", "notional", "marginAsset",
        "isolatedWallet", "initialMargin", "maintMargin", "positionInitialMargin",
        "openOrderInitialMargin", "adl", "bidNotional", "askNotional", "updateTime",
    }  # fmt: skip
    coin = await api.ok("GET", "/dapi/v1/positionRisk")
    assert "maxQty" in coin[0]
    assert "maxNotionalValue" not in coin[0]
    assert _negative_zeros([v2, v3, risk2, risk3, coin]) == []


@pytest.mark.parametrize("path", ["/fapi/v2/account", "/fapi/v3/account", "/dapi/v1/account"])
async def test_served_futures_accounts_have_no_negative_zero(path: str) -> None:
    sim = make_sim()
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        a = Api(sim, http)
        symbol = "BTCUSDT" if path.startswith("/fapi") else "BTCUSD_PERP"
        prefix = path[:5]
        qty = "0.010" if prefix == "/fapi" else "1"
        await a.ok("POST", f"{prefix}/v1/order", market(symbol, "SELL", qty))
        assert _negative_zeros(await a.ok("GET", path)) == []
