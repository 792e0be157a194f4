"""The JSON rendering: orders, accounts, balances and positions in Binance's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from .accounts import (
    SPOT_MAKER,
    SPOT_TAKER,
    ZERO,
    Account,
    AccountTrade,
    Income,
    Order,
    Position,
    Risk,
    brackets_of,
    fmt,
    liquidation_price,
    margin_of,
    price_dec,
    qty_dec,
    risk,
)
from .matching import MatchingEngine
from .symbols import SymbolSpec

__all__ = [
    "AccountViews",
    "account_trade_view",
    "income_view",
    "max_size",
    "order_view",
    "test_order_commissions",
]

#: Per margin asset: wallet, unrealized PnL (all / cross), position initial margin (all /
#: cross), open-order initial margin, maintenance margin, isolated wallets.
_MARGIN_KEYS = (
    "wallet", "upnl", "cross_upnl", "pos_im", "cross_im", "ord_im", "mm", "cross_mm", "iso"
)


def order_view(spec: SymbolSpec, order: Order, kind: str, *, new: bool = False) -> dict[str, Any]:
    """An order in Binance's shape. kind: ACK, RESULT, FULL (new orders), QUERY, CANCEL."""
    if order.market == "spot":
        return _spot_view(spec, order, kind)
    return _futures_view(spec, order, kind, new)


def account_trade_view(spec: SymbolSpec, t: AccountTrade) -> dict[str, Any]:
    """One ``myTrades`` (spot) or ``userTrades`` (futures) row in Binance's shape."""
    buyer = t.side == "BUY"
    if spec.market == "spot":
        return {
            "symbol": spec.symbol,
            "id": t.id,
            "orderId": t.order_id,
            "orderListId": -1,
            "price": spec.price_str(t.price),
            "qty": spec.qty_str(t.qty),
            "quoteQty": f"{t.quote:.8f}",
            "commission": f"{t.commission:.8f}",
            "commissionAsset": t.commission_asset,
            "time": t.time_ms,
            "isBuyer": buyer,
            "isMaker": t.maker,
            "isBestMatch": True,
        }
    out: dict[str, Any] = {
        "symbol": spec.symbol,
        "id": t.id,
        "orderId": t.order_id,
    }
    if spec.market == "coinm":
        out["pair"] = spec.pair
    out.update(
        {
            "side": t.side,
            "price": spec.price_str(t.price),
            "qty": spec.qty_str(t.qty),
            "realizedPnl": fmt(t.realized),  # never "-0.00000000"
        }
    )
    if spec.market == "coinm":
        out["marginAsset"] = spec.margin_asset
        out["baseQty"] = f"{t.quote:.8f}"
    else:
        out["quoteQty"] = f"{t.quote:.8f}"
    out.update(
        {
            "commission": f"{t.commission:.8f}",
            "commissionAsset": t.commission_asset,
            "time": t.time_ms,
            "positionSide": "BOTH",
            "buyer": buyer,
            "maker": t.maker,
        }
    )
    return out


def test_order_commissions() -> dict[str, Any]:
    """A spot test order's answer with ``computeCommissionRates=true``."""
    rate = f"{SPOT_TAKER:.8f}"
    return {
        "standardCommissionForOrder": {"maker": f"{SPOT_MAKER:.8f}", "taker": rate},
        "specialCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
        "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": "0.00000000",
        },
    }


def _spot_view(spec: SymbolSpec, order: Order, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
    }
    if kind in ("ACK", "RESULT", "FULL"):
        out["transactTime"] = order.time_ms
        if kind == "ACK":
            return out
    out.update(
        {
            "price": spec.price_str(order.price),
            "origQty": spec.qty_str(order.qty),
            "executedQty": spec.qty_str(order.executed),
            "origQuoteOrderQty": f"{order.quote_order_qty:.8f}",
            "cummulativeQuoteQty": f"{order.cum_quote:.8f}",
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
        }
    )
    if kind == "QUERY":
        out.update(
            {
                "stopPrice": "0.00000000",
                "icebergQty": "0.00000000",
                "time": order.time_ms,
                "updateTime": order.update_ms,
                "isWorking": True,
                "workingTime": order.time_ms,
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        )
        return out
    if kind in ("RESULT", "FULL"):
        out["workingTime"] = order.time_ms
    out["selfTradePreventionMode"] = "EXPIRE_MAKER"
    if kind == "FULL":
        out["fills"] = [
            {
                "price": f"{f['price']:.8f}",
                "qty": f"{f['qty']:.8f}",
                "commission": f"{f['commission']:.8f}",
                "commissionAsset": f["commissionAsset"],
                "tradeId": f["tradeId"],
            }
            for f in order.fills
        ]
    return out


def _futures_view(spec: SymbolSpec, order: Order, kind: str, new: bool) -> dict[str, Any]:
    pd = spec.display_price_decimals
    out: dict[str, Any] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
    }
    if spec.market == "coinm":
        out["pair"] = spec.pair
    executed = order.executed if not (new and kind == "ACK") else 0
    status = order.status if not (new and kind == "ACK") else "NEW"
    cum = order.cum_quote if executed else ZERO
    avg = order.avg_price if executed else ZERO
    out.update(
        {
            "status": status,
            "clientOrderId": order.client_order_id,
            "price": spec.price_str(order.price),
            "avgPrice": f"{avg:.{pd + 3}f}" if spec.market == "usdm" else f"{avg:.{pd}f}",
            "origQty": spec.qty_str(order.qty),
            "executedQty": spec.qty_str(executed),
            "cumQty": spec.qty_str(executed),
        }
    )
    if spec.market == "coinm":
        out["cumBase"] = f"{cum:.8f}"
    else:
        out["cumQuote"] = f"{cum:.5f}"
    out.update(
        {
            "timeInForce": order.time_in_force,
            "type": order.type,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side,
            "positionSide": "BOTH",
            "stopPrice": spec.price_str(0),
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "updateTime": order.time_ms if new and kind == "ACK" else order.update_ms,
        }
    )
    if kind == "QUERY":
        out["time"] = order.time_ms
    return out


class AccountViews:
    """Account, balance and position answers; each brings the account's orders up to date
    first."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine

    def spot_account(self, acct: Account, now_ms: int, omit_zero: bool) -> dict[str, Any]:
        """GET /api/v3/account."""
        self.engine.sync(acct, "spot", now_ms)
        assets = list(dict.fromkeys([*acct.spot_free, *acct.spot_locked]))
        balances = []
        for asset in assets:
            free = acct.spot_free.get(asset, ZERO)
            locked = acct.spot_locked.get(asset, ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"})
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": f"{SPOT_MAKER:.8f}",
                "taker": f"{SPOT_TAKER:.8f}",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": acct.update_ms,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 100000000 + sum(map(ord, acct.config.name)),
        }

    def _book(
        self, acct: Account, market: str, now_ms: int
    ) -> tuple[list[_Row], dict[str, dict[str, Decimal]]]:
        """Every symbol's position numbers and the sums per margin asset (the account's
        orders brought up to date first)."""
        self.engine.sync(acct, market, now_ms)
        now_s = now_ms // 1000
        per_asset = {
            asset: {"wallet": balance, **dict.fromkeys(_MARGIN_KEYS[1:], ZERO)}
            for asset, balance in acct.wallets[market].items()
        }
        orders: dict[str, list[Order]] = {}
        for o in acct.open.values():
            if o.market == market:
                orders.setdefault(o.symbol, []).append(o)
        rows = []
        for (mkt, symbol), spec in self.engine.specs.items():
            if mkt != market:
                continue
            pos = acct.positions.get((mkt, symbol)) or Position()
            lev = acct.lev(mkt, symbol)
            iso = acct.isolated(mkt, symbol)
            mark = self.engine.mark(spec, now_s)
            r = risk(spec, pos, mark, lev, iso)
            ord_im = bid = ask = ZERO
            for o in orders.get(symbol, ()):
                q, px = qty_dec(spec, o.qty), price_dec(spec, o.price)
                ord_im += margin_of(spec, q, px, lev)
                n = q * spec.contract_size / px if market == "coinm" else q * px
                if o.side == "BUY":
                    bid += n
                else:
                    ask += n
            a = per_asset.setdefault(spec.margin_asset, dict.fromkeys(_MARGIN_KEYS, ZERO))
            a["upnl"] += r.upnl
            a["pos_im"] += r.im
            a["ord_im"] += ord_im
            a["mm"] += r.mm
            a["iso"] += r.isolated_wallet
            if not iso:
                a["cross_upnl"] += r.upnl
                a["cross_im"] += r.im
                a["cross_mm"] += r.mm
            has_orders = bool(orders.get(symbol))
            rows.append(_Row(spec, pos, mark, lev, iso, r, ord_im, bid, ask, has_orders))
        for row in rows:
            a = per_asset[row.spec.margin_asset]
            if row.isolated:
                wallet, other_mm, other_upnl = row.risk.isolated_wallet, ZERO, ZERO
            else:
                wallet = a["wallet"] - a["iso"]
                other_mm = a["cross_mm"] - row.risk.mm
                other_upnl = a["cross_upnl"] - row.risk.upnl
            row.liq = liquidation_price(row.spec, row.pos, row.risk, wallet, other_mm, other_upnl)
        return rows, per_asset

    def futures_account(
        self, acct: Account, market: str, now_ms: int, version: int
    ) -> dict[str, Any]:
        """GET /fapi/v2/account, /fapi/v3/account or /dapi/v1/account, each in its own shape."""
        rows, per_asset = self._book(acct, market, now_ms)
        v2 = market == "usdm" and version == 2
        assets = [
            _asset_entry(asset, a, acct.update_ms, v2) for asset, a in per_asset.items()
        ]
        if market == "coinm":
            positions = [_account_position(r, "coinm") for r in rows]
            return {
                "assets": assets,
                "positions": positions,
                "canDeposit": True,
                "canTrade": True,
                "canWithdraw": True,
                "feeTier": 0,
                "updateTime": acct.update_ms,
            }
        usdt = per_asset.get("USDT", dict.fromkeys(_MARGIN_KEYS, ZERO))
        avail = _available(usdt)
        totals = {
            "totalInitialMargin": fmt(usdt["pos_im"] + usdt["ord_im"]),
            "totalMaintMargin": fmt(usdt["mm"]),
            "totalWalletBalance": fmt(usdt["wallet"]),
            "totalUnrealizedProfit": fmt(usdt["upnl"]),
            "totalMarginBalance": fmt(usdt["wallet"] + usdt["upnl"]),
            "totalPositionInitialMargin": fmt(usdt["pos_im"]),
            "totalOpenOrderInitialMargin": fmt(usdt["ord_im"]),
            "totalCrossWalletBalance": fmt(usdt["wallet"] - usdt["iso"]),
            "totalCrossUnPnl": fmt(usdt["cross_upnl"]),
            "availableBalance": fmt(avail),
            "maxWithdrawAmount": fmt(max(avail, ZERO)),
        }
        if v2:
            out: dict[str, Any] = {
                "feeTier": 0,
                "feeBurn": False,
                "canTrade": True,
                "canDeposit": True,
                "canWithdraw": True,
                "updateTime": 0,
                "multiAssetsMargin": False,
                "tradeGroupId": -1,
                **totals,
                "assets": assets,
                "positions": [_account_position(r, "v2") for r in rows],
            }
            return out
        return {
            **totals,
            "assets": assets,
            "positions": [_account_position(r, "v3") for r in rows if r.pos.amt or r.has_orders],
        }

    def futures_balance(self, acct: Account, market: str, now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v2/balance, /fapi/v3/balance or /dapi/v1/balance."""
        _, per_asset = self._book(acct, market, now_ms)
        out = []
        for asset, a in per_asset.items():
            available = _available(a)
            row: dict[str, Any] = {
                "accountAlias": acct.config.name,
                "asset": asset,
                "balance": fmt(a["wallet"]),
            }
            if market == "coinm":
                row["withdrawAvailable"] = fmt(max(available, ZERO))
            row.update(
                {
                    "crossWalletBalance": fmt(a["wallet"] - a["iso"]),
                    "crossUnPnl": fmt(a["cross_upnl"]),
                    "availableBalance": fmt(available),
                }
            )
            if market == "usdm":
                row["maxWithdrawAmount"] = fmt(max(available, ZERO))
                row["marginAvailable"] = True
            row["updateTime"] = acct.update_ms
            out.append(row)
        return out

    def position_risk(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int, version: int
    ) -> list[dict[str, Any]]:
        """GET /fapi/v2/positionRisk (every symbol), /fapi/v3/positionRisk (symbols with a
        position or open orders) or /dapi/v1/positionRisk (every symbol)."""
        symbol = params.get("symbol")
        if symbol:
            self.engine.spec(market, params)
        pair = params.get("pair")
        margin_asset = params.get("marginAsset")
        rows, _ = self._book(acct, market, now_ms)
        out = []
        for r in rows:
            spec = r.spec
            if (symbol and spec.symbol != symbol) or (pair and spec.pair != pair):
                continue
            if margin_asset and spec.margin_asset != margin_asset:
                continue
            if market == "usdm" and version == 3 and not (r.pos.amt or r.has_orders):
                continue
            out.append(_risk_row(r, market, version))
        return out


@attrs.define(eq=False)
class _Row:
    """One symbol's position and its numbers at the mark."""

    spec: SymbolSpec
    pos: Position
    mark: Decimal
    lev: int
    isolated: bool
    risk: Risk
    ord_im: Decimal
    bid: Decimal
    ask: Decimal
    has_orders: bool
    liq: Decimal = ZERO


def max_size(spec: SymbolSpec, lev: int) -> int:
    """The largest position (notional USDT, coin quantity on COIN-M) at leverage ``lev``:
    the cap of the last bracket that allows it."""
    cap = 0
    for b in brackets_of(spec):
        if b.leverage >= lev:
            cap = int(b.cap)
    return cap


def _available(a: Mapping[str, Decimal]) -> Decimal:
    return a["wallet"] - a["iso"] + a["cross_upnl"] - a["cross_im"] - a["ord_im"]


def _price(spec: SymbolSpec, value: Decimal) -> str:
    return fmt(value, spec.display_price_decimals + 6) if value else "0"


def _risk_row(r: _Row, market: str, version: int) -> dict[str, Any]:
    """One positionRisk row in the version's shape."""
    spec, pos = r.spec, r.pos
    iso_margin = r.risk.isolated_wallet + r.risk.upnl if r.isolated else ZERO
    entry = f"{pos.entry:.{spec.display_price_decimals + 6}f}"
    head: dict[str, Any] = {
        "symbol": spec.symbol,
        "positionAmt": spec.qty_str(int(pos.amt.scaleb(spec.qty_decimals))),
        "entryPrice": entry,
        "breakEvenPrice": entry,
        "markPrice": f"{r.mark:.{spec.display_price_decimals + 6}f}",
        "unRealizedProfit": fmt(r.risk.upnl),
        "liquidationPrice": _price(spec, r.liq),
    }
    if market == "usdm" and version == 3:
        return {
            "symbol": spec.symbol,
            "positionSide": "BOTH",
            **{k: v for k, v in head.items() if k != "symbol"},
            "isolatedMargin": fmt(iso_margin),
            "notional": fmt(r.risk.notional),
            "marginAsset": spec.margin_asset,
            "isolatedWallet": fmt(r.risk.isolated_wallet),
            "initialMargin": fmt(r.risk.im + r.ord_im),
            "maintMargin": fmt(r.risk.mm),
            "positionInitialMargin": fmt(r.risk.im),
            "openOrderInitialMargin": fmt(r.ord_im),
            "adl": 0,
            "bidNotional": fmt(r.bid),
            "askNotional": fmt(r.ask),
            "updateTime": pos.update_ms,
        }
    row = {**head, "leverage": str(r.lev)}
    if market == "coinm":
        row["maxQty"] = str(max_size(spec, r.lev))
        row["notionalValue"] = fmt(r.risk.notional)
    else:
        row["maxNotionalValue"] = str(max_size(spec, r.lev))
        row["notional"] = fmt(r.risk.notional)
    row.update(
        {
            "marginType": "isolated" if r.isolated else "cross",
            "isolatedMargin": fmt(iso_margin),
            "isAutoAddMargin": "false",
            "positionSide": "BOTH",
            "isolatedWallet": fmt(r.risk.isolated_wallet),
            "updateTime": pos.update_ms,
        }
    )
    return row


def _account_position(r: _Row, shape: str) -> dict[str, Any]:
    """One ``positions`` entry of the futures account: ``v2`` (USDⓈ-M v2), ``v3`` or
    ``coinm`` (/dapi/v1/account)."""
    spec, pos = r.spec, r.pos
    amt = spec.qty_str(int(pos.amt.scaleb(spec.qty_decimals)))
    if shape == "v3":
        return {
            "symbol": spec.symbol,
            "positionSide": "BOTH",
            "positionAmt": amt,
            "unrealizedProfit": fmt(r.risk.upnl),
            "isolatedMargin": fmt(r.risk.isolated_wallet + r.risk.upnl if r.isolated else ZERO),
            "notional": fmt(r.risk.notional),
            "isolatedWallet": fmt(r.risk.isolated_wallet),
            "initialMargin": fmt(r.risk.im + r.ord_im),
            "maintMargin": fmt(r.risk.mm),
            "updateTime": pos.update_ms,
        }
    entry: dict[str, Any] = {
        "symbol": spec.symbol,
        "initialMargin": fmt(r.risk.im + r.ord_im),
        "maintMargin": fmt(r.risk.mm),
        "unrealizedProfit": fmt(r.risk.upnl),
        "positionInitialMargin": fmt(r.risk.im),
        "openOrderInitialMargin": fmt(r.ord_im),
        "leverage": str(r.lev),
        "isolated": r.isolated,
        "entryPrice": fmt(pos.entry),
        "breakEvenPrice": fmt(pos.entry),
    }
    if shape == "coinm":
        entry.update(
            {
                "maxQty": str(max_size(spec, r.lev)),
                "notionalValue": fmt(r.risk.notional),
                "isolatedWallet": fmt(r.risk.isolated_wallet),
                "positionSide": "BOTH",
                "positionAmt": amt,
                "updateTime": pos.update_ms,
            }
        )
        return entry
    entry.update(
        {
            "maxNotional": str(max_size(spec, r.lev)),
            "bidNotional": fmt(r.bid),
            "askNotional": fmt(r.ask),
            "positionSide": "BOTH",
            "positionAmt": amt,
            "updateTime": pos.update_ms,
        }
    )
    return entry


def _asset_entry(
    asset: str, a: Mapping[str, Decimal], update_ms: int, margin_available: bool
) -> dict[str, Any]:
    """One ``assets`` entry of the futures account (USDⓈ-M v2 adds ``marginAvailable``)."""
    available = _available(a)
    out: dict[str, Any] = {
        "asset": asset,
        "walletBalance": fmt(a["wallet"]),
        "unrealizedProfit": fmt(a["upnl"]),
        "marginBalance": fmt(a["wallet"] + a["upnl"]),
        "maintMargin": fmt(a["mm"]),
        "initialMargin": fmt(a["pos_im"] + a["ord_im"]),
        "positionInitialMargin": fmt(a["pos_im"]),
        "openOrderInitialMargin": fmt(a["ord_im"]),
        "crossWalletBalance": fmt(a["wallet"] - a["iso"]),
        "crossUnPnl": fmt(a["cross_upnl"]),
        "availableBalance": fmt(available),
        "maxWithdrawAmount": fmt(max(available, ZERO)),
    }
    if margin_available:
        out["marginAvailable"] = True
    out["updateTime"] = update_ms
    return out


def income_view(spec_symbol: str, inc: Income) -> dict[str, Any]:
    """One ``/fapi/v1/income`` or ``/dapi/v1/income`` row."""
    return {
        "symbol": spec_symbol,
        "incomeType": inc.kind,
        "income": fmt(inc.amount),
        "asset": inc.asset,
        "info": inc.kind,
        "time": inc.time_ms,
        "tranId": inc.tran_id,
        "tradeId": str(inc.trade_id) if inc.trade_id else "",
    }
