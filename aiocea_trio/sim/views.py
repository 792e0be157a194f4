"""The JSON rendering: orders, accounts, balances and positions in Binance's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .accounts import (
    SPOT_MAKER,
    SPOT_TAKER,
    ZERO,
    Account,
    AccountTrade,
    Order,
    Position,
    margin_of,
    price_dec,
    qty_dec,
    unrealized,
)
from .matching import MatchingEngine
from .symbols import SymbolSpec

__all__ = ["AccountViews", "account_trade_view", "order_view", "test_order_commissions"]

_MARGIN_KEYS = ("wallet", "upnl", "pos_im", "ord_im", "mm")


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
            "realizedPnl": f"{t.realized or ZERO:.8f}",  # never "-0.00000000"
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

    def futures_account(
        self, acct: Account, market: str, now_ms: int, version: int
    ) -> dict[str, Any]:
        """GET /fapi/v2|v3/account or /dapi/v1/account: totals, assets and positions."""
        self.engine.sync(acct, market, now_ms)
        per_asset: dict[str, dict[str, Decimal]] = {
            asset: {"wallet": balance, **dict.fromkeys(_MARGIN_KEYS[1:], ZERO)}
            for asset, balance in acct.wallets[market].items()
        }
        positions = self._position_entries(acct, market, now_ms // 1000, version, per_asset)
        assets, totals = _asset_entries(per_asset, acct.update_ms)
        if market == "coinm":
            return {
                "assets": assets,
                "positions": positions,
                "canDeposit": True,
                "canTrade": True,
                "canWithdraw": True,
                "feeTier": 0,
                "updateTime": acct.update_ms,
            }
        return {
            "totalInitialMargin": f"{totals['pos_im'] + totals['ord_im']:.8f}",
            "totalMaintMargin": f"{totals['mm']:.8f}",
            "totalWalletBalance": f"{totals['wallet']:.8f}",
            "totalUnrealizedProfit": f"{totals['upnl']:.8f}",
            "totalMarginBalance": f"{totals['wallet'] + totals['upnl']:.8f}",
            "totalPositionInitialMargin": f"{totals['pos_im']:.8f}",
            "totalOpenOrderInitialMargin": f"{totals['ord_im']:.8f}",
            "totalCrossWalletBalance": f"{totals['wallet']:.8f}",
            "totalCrossUnPnl": f"{totals['upnl']:.8f}",
            "availableBalance": f"{totals['avail']:.8f}",
            "maxWithdrawAmount": f"{max(totals['avail'], ZERO):.8f}",
            "assets": assets,
            "positions": positions,
        }

    def _position_entries(
        self,
        acct: Account,
        market: str,
        now_s: int,
        version: int,
        per_asset: dict[str, dict[str, Decimal]],
    ) -> list[dict[str, Any]]:
        """The account's positions (v3: open ones only), adding up margins per asset."""
        lev = acct.config.leverage
        positions = []
        for (mkt, symbol), spec in self.engine.specs.items():
            if mkt != market:
                continue
            pos = acct.positions.get((mkt, symbol), Position())
            mark = self.engine.mark(spec, now_s)
            row = per_asset.setdefault(spec.margin_asset, dict.fromkeys(_MARGIN_KEYS, ZERO))
            upnl = unrealized(spec, pos, mark)
            im = margin_of(spec, abs(pos.amt), mark, lev) if pos.amt else ZERO
            mm = im * lev * Decimal("0.004")
            ord_im = sum(
                (
                    margin_of(spec, qty_dec(spec, o.qty), price_dec(spec, o.price), lev)
                    for o in acct.open.values()
                    if o.market == mkt and o.symbol == symbol
                ),
                ZERO,
            )
            row["upnl"] += upnl
            row["pos_im"] += im
            row["ord_im"] += ord_im
            row["mm"] += mm
            if version >= 3 and pos.amt == 0:
                continue
            positions.append(_position_entry(spec, pos, mark, upnl, im, ord_im, mm, lev, version))
        return positions

    def futures_balance(self, acct: Account, market: str, now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v2/balance or /dapi/v1/balance."""
        self.engine.sync(acct, market, now_ms)
        out = []
        for asset, balance in acct.wallets[market].items():
            unpnl = ZERO
            for (mkt, symbol), pos in acct.positions.items():
                spec = self.engine.specs[(mkt, symbol)]
                if mkt == market and spec.margin_asset == asset and pos.amt:
                    mark = self.engine.mark(spec, now_ms // 1000)
                    unpnl += unrealized(spec, pos, mark)
            available = self.engine.available(acct, market, asset)
            row: dict[str, Any] = {
                "accountAlias": acct.config.name,
                "asset": asset,
                "balance": f"{balance:.8f}",
            }
            if market == "coinm":
                row["withdrawAvailable"] = f"{max(available, ZERO):.8f}"
            row.update(
                {
                    "crossWalletBalance": f"{balance:.8f}",
                    "crossUnPnl": f"{unpnl:.8f}",
                    "availableBalance": f"{available:.8f}",
                }
            )
            if market == "usdm":
                row["maxWithdrawAmount"] = f"{max(available, ZERO):.8f}"
                row["marginAvailable"] = True
            row["updateTime"] = acct.update_ms
            out.append(row)
        return out

    def position_risk(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int
    ) -> list[dict[str, Any]]:
        """GET /fapi/v2/positionRisk or /dapi/v1/positionRisk: one row per symbol."""
        symbol = params.get("symbol")
        if symbol:
            self.engine.spec(market, params)
        pair = params.get("pair")
        self.engine.sync(acct, market, now_ms)
        out = []
        for (mkt, sym), spec in self.engine.specs.items():
            if mkt != market or (symbol and sym != symbol) or (pair and spec.pair != pair):
                continue
            pos = acct.positions.get((mkt, sym), Position())
            mark = self.engine.mark(spec, now_ms // 1000)
            pd = spec.display_price_decimals
            notional = pos.amt * spec.contract_size / mark if market == "coinm" else pos.amt * mark
            row: dict[str, Any] = {
                "symbol": sym,
                "positionAmt": spec.qty_str(int(pos.amt.scaleb(spec.qty_decimals))),
                "entryPrice": f"{pos.entry:.{pd + 6}f}",
                "breakEvenPrice": f"{pos.entry:.{pd + 6}f}",
                "markPrice": f"{mark:.{pd + 6}f}",
                "unRealizedProfit": f"{unrealized(spec, pos, mark):.8f}",
                "liquidationPrice": "0",
                "leverage": str(acct.config.leverage),
            }
            if market == "coinm":
                row["maxQty"] = "1000000"
                row["notionalValue"] = f"{notional:.8f}"
            else:
                row["maxNotionalValue"] = "20000000"
                row["notional"] = f"{notional:.8f}"
            row.update(
                {
                    "marginType": "cross",
                    "isolatedMargin": "0.00000000",
                    "isAutoAddMargin": "false",
                    "positionSide": "BOTH",
                    "isolatedWallet": "0",
                    "updateTime": pos.update_ms,
                }
            )
            out.append(row)
        return out


def _position_entry(
    spec: SymbolSpec,
    pos: Position,
    mark: Decimal,
    upnl: Decimal,
    im: Decimal,
    ord_im: Decimal,
    mm: Decimal,
    lev: int,
    version: int,
) -> dict[str, Any]:
    """One position of the futures account (v2 shows more fields than v3)."""
    notional = pos.amt * spec.contract_size / mark if spec.market == "coinm" else pos.amt * mark
    entry: dict[str, Any] = {
        "symbol": spec.symbol,
        "positionSide": "BOTH",
        "positionAmt": spec.qty_str(int(pos.amt.scaleb(spec.qty_decimals))),
        "unrealizedProfit": f"{upnl:.8f}",
        "isolatedMargin": "0",
        "notional": f"{notional:.8f}",
        "isolatedWallet": "0",
        "initialMargin": f"{im + ord_im:.8f}",
        "maintMargin": f"{mm:.8f}",
        "updateTime": pos.update_ms,
    }
    if version < 3:
        entry.update(
            {
                "positionInitialMargin": f"{im:.8f}",
                "openOrderInitialMargin": f"{ord_im:.8f}",
                "leverage": str(lev),
                "isolated": False,
                "entryPrice": f"{pos.entry:.8f}",
                "breakEvenPrice": f"{pos.entry:.8f}",
            }
        )
        if spec.market == "coinm":
            entry["maxQty"] = "1000000"
        else:
            entry["maxNotional"] = "20000000"
    return entry


def _asset_entries(
    per_asset: Mapping[str, Mapping[str, Decimal]], update_ms: int
) -> tuple[list[dict[str, Any]], dict[str, Decimal]]:
    """The futures account's assets, and the totals over them."""
    assets = []
    totals = dict.fromkeys((*_MARGIN_KEYS, "avail"), ZERO)
    for asset, row in per_asset.items():
        margin_balance = row["wallet"] + row["upnl"]
        available = margin_balance - row["pos_im"] - row["ord_im"]
        for k in _MARGIN_KEYS:
            totals[k] += row[k]
        totals["avail"] += available
        assets.append(
            {
                "asset": asset,
                "walletBalance": f"{row['wallet']:.8f}",
                "unrealizedProfit": f"{row['upnl']:.8f}",
                "marginBalance": f"{margin_balance:.8f}",
                "maintMargin": f"{row['mm']:.8f}",
                "initialMargin": f"{row['pos_im'] + row['ord_im']:.8f}",
                "positionInitialMargin": f"{row['pos_im']:.8f}",
                "openOrderInitialMargin": f"{row['ord_im']:.8f}",
                "crossWalletBalance": f"{row['wallet']:.8f}",
                "crossUnPnl": f"{row['upnl']:.8f}",
                "availableBalance": f"{available:.8f}",
                "maxWithdrawAmount": f"{max(available, ZERO):.8f}",
                "updateTime": update_ms,
            }
        )
    return assets, totals
