"""The matching engine: order entry, fills against the deterministic price path, cancels.

Matching is lazy and exact in time: a resting LIMIT order is checked, whenever its account is
touched, against the completed seconds since it was last checked; it fills in full at its own
price in the first second whose low (buy) or high (sell) reaches it. MARKET orders and marketable
LIMIT orders fill at once at the best ask (buy) or best bid (sell) of the synthetic book.

Simplifications (documented in docs/simulator.md): fills are never partial; spot STOP/TAKE_PROFIT
and futures conditional orders are not supported (-1116); futures are one-way mode, cross margin,
leverage and margin type per symbol (POST leverage/marginType); funding fees paid at each 8-hour
funding time a perpetual position is held across (settled when the account is next touched, at
the position then held); no liquidations or delivery settlement.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

from .accounts import (
    FUT_MAKER,
    FUT_TAKER,
    SPOT_MAKER,
    SPOT_TAKER,
    ZERO,
    Account,
    AccountTrade,
    Income,
    Order,
    Position,
    margin_of,
    price_dec,
    qty_dec,
    unrealized,
)
from .errors import ApiError, mandatory
from .market import MarketData, Series
from .orders import NewOrder, OrderRef
from .symbols import SymbolSpec

__all__ = ["MatchingEngine"]

_MAX_CLOSED_ORDERS = 100_000
_SATOSHI = Decimal("1e-8")
_FUNDING_S = 28_800


class MatchingEngine:
    """Order entry, matching and cancels for all accounts of one simulator."""

    def __init__(self, market_data: MarketData, specs: list[SymbolSpec]) -> None:
        self.md = market_data
        self.specs = {(s.market, s.symbol): s for s in specs}
        self._ids = itertools.count(4_000_000_001)
        self._client_ids = itertools.count(1)
        self._tran_ids = itertools.count(9_000_000_001)

    def spec(self, market: str, params: Mapping[str, str]) -> tuple[SymbolSpec, Series]:
        """The instrument ``symbol`` names (mandatory; -1121 if unknown)."""
        symbol = params.get("symbol")
        if not symbol:
            raise mandatory("symbol")
        spec = self.specs.get((market, symbol))
        series = self.md.get(market, symbol)
        if spec is None or series is None:
            raise ApiError(-1121, "Invalid symbol.")
        return spec, series

    def mark(self, spec: SymbolSpec, t_s: int) -> Decimal:
        """The instrument's price at second ``t_s``, as a decimal."""
        series = self.md.get(spec.market, spec.symbol)
        assert series is not None
        return price_dec(spec, series.price_at(t_s))

    def new_client_id(self) -> str:
        return f"sim{next(self._client_ids):019d}"

    def _touch(self, acct: Account, order: Order, now_ms: int) -> None:
        order.update_ms = now_ms
        acct.update_ms = now_ms

    def _close(self, acct: Account, order: Order) -> None:
        acct.open.pop((order.market, order.symbol, order.order_id), None)
        acct.closed.append(order)
        while len(acct.closed) > _MAX_CLOSED_ORDERS:
            old = acct.closed.popleft()
            acct.orders.pop((old.market, old.symbol, old.order_id), None)
            key = (old.market, old.symbol, old.client_order_id)
            if acct.by_client.get(key) is old:
                del acct.by_client[key]

    # -- matching --------------------------------------------------------------------------

    def sync(self, acct: Account, market: str, now_ms: int) -> None:
        """Fill the account's resting orders the price has crossed since they were checked."""
        now_s = now_ms // 1000
        if market != "spot":
            self._fund(acct, market, now_s)
        for order in [o for o in acct.open.values() if o.market == market]:
            if order.checked_s >= now_s:
                continue
            series = self.md.get(order.market, order.symbol)
            assert series is not None
            second = series.first_cross(order.checked_s, now_s, order.price, order.side == "BUY")
            order.checked_s = now_s
            if second is not None:
                fill_ms = second * 1000 + 500
                self._fill(acct, order, order.price, maker=True, now_ms=fill_ms)

    def _fund(self, acct: Account, market: str, now_s: int) -> None:
        """Pay or receive the funding fees of the 8-hour funding times since last settled:
        -positionAmt * mark * rate (USDⓈ-M, in USDT) or -contracts * contractSize / mark *
        rate (COIN-M, in the coin)."""
        k_now = now_s // _FUNDING_S
        for (mkt, symbol), pos in acct.positions.items():
            if mkt != market or pos.funded_k >= k_now:
                continue
            spec = self.specs[(mkt, symbol)]
            if pos.amt == 0 or spec.contract_type != "PERPETUAL":
                pos.funded_k = k_now
                continue
            series = self.md.get(mkt, symbol)
            assert series is not None
            wallet = acct.wallets[mkt]
            for k in range(pos.funded_k + 1, k_now + 1):
                mark = price_dec(spec, series.price_at(k * _FUNDING_S))
                rate = Decimal(series.funding_rate(k)).scaleb(-8)
                if market == "coinm":
                    notional = pos.amt * spec.contract_size / mark
                else:
                    notional = pos.amt * mark
                fee = (-notional * rate).quantize(_SATOSHI, ROUND_DOWN)
                wallet[spec.margin_asset] = wallet.get(spec.margin_asset, ZERO) + fee
                self._income(acct, mkt, symbol, "FUNDING_FEE", fee, spec.margin_asset,
                             k * _FUNDING_S * 1000)
            pos.funded_k = k_now

    def _income(
        self,
        acct: Account,
        market: str,
        symbol: str,
        kind: str,
        amount: Decimal,
        asset: str,
        time_ms: int,
        trade_id: int = 0,
    ) -> None:
        acct.income[market].append(
            Income(next(self._tran_ids), symbol, kind, amount, asset, time_ms, trade_id)
        )

    def _fill(self, acct: Account, order: Order, price: int, *, maker: bool, now_ms: int) -> None:
        spec = self.specs[(order.market, order.symbol)]
        qty = qty_dec(spec, order.qty)
        px = price_dec(spec, price)
        history = acct.trades.setdefault((order.market, order.symbol), [])
        trade_id = len(history) + 1
        realized = ZERO
        if order.market == "spot":
            commission, commission_asset = self._settle_spot(acct, spec, order, qty, px, maker)
        else:
            commission, commission_asset, realized = self._settle_futures(
                acct, spec, order, qty, px, maker
            )
            pos = acct.positions[(order.market, order.symbol)]
            pos.update_ms = now_ms
            if pos.funded_k < now_ms // 1000 // _FUNDING_S:
                pos.funded_k = now_ms // 1000 // _FUNDING_S
            if realized:
                self._income(acct, order.market, order.symbol, "REALIZED_PNL", realized,
                             commission_asset, now_ms, trade_id)
            if commission:
                self._income(acct, order.market, order.symbol, "COMMISSION", -commission,
                             commission_asset, now_ms, trade_id)
        history.append(
            AccountTrade(
                id=trade_id,
                order_id=order.order_id,
                side=order.side,
                price=price,
                qty=order.qty,
                quote=order.cum_quote,
                commission=commission,
                commission_asset=commission_asset,
                time_ms=now_ms,
                maker=maker,
                realized=realized,
            )
        )
        order.executed = order.qty
        order.avg_price = px
        order.status = "FILLED"
        order.fills.append(
            {
                "price": px,
                "qty": qty,
                "commission": commission,
                "commissionAsset": commission_asset,
                "tradeId": trade_id,
            }
        )
        self._touch(acct, order, now_ms)
        self._close(acct, order)

    @staticmethod
    def _settle_spot(
        acct: Account, spec: SymbolSpec, order: Order, qty: Decimal, px: Decimal, maker: bool
    ) -> tuple[Decimal, str]:
        """Move the balances of a spot fill; returns the commission and its asset."""
        quote = px * qty
        rate = SPOT_MAKER if maker else SPOT_TAKER
        buy = order.side == "BUY"
        # What the order pays: from its lock if it rested (maker fills at its own price, so
        # the lock is exactly what it pays), from the free balance if it filled at once.
        pay_asset, pay = (spec.quote, quote) if buy else (spec.base, qty)
        if order.locked:
            acct.spot_locked[pay_asset] = acct.spot_locked.get(pay_asset, ZERO) - order.locked
            acct.spot_free[pay_asset] = acct.spot_free.get(pay_asset, ZERO) + order.locked - pay
        else:
            acct.spot_free[pay_asset] = acct.spot_free.get(pay_asset, ZERO) - pay
        get_asset, get = (spec.base, qty) if buy else (spec.quote, quote)
        commission = (get * rate).quantize(_SATOSHI, ROUND_DOWN)
        acct.spot_free[get_asset] = acct.spot_free.get(get_asset, ZERO) + get - commission
        order.locked = ZERO
        order.cum_quote = quote
        return commission, get_asset

    def _settle_futures(
        self, acct: Account, spec: SymbolSpec, order: Order, qty: Decimal, px: Decimal, maker: bool
    ) -> tuple[Decimal, str, Decimal]:
        """Apply a futures fill to the position and wallet; returns the commission, its
        asset and the realized PnL."""
        rate = FUT_MAKER if maker else FUT_TAKER
        signed = qty if order.side == "BUY" else -qty
        pos = acct.positions.setdefault((order.market, order.symbol), Position())
        realized = self._apply_position(spec, pos, signed, px)
        wallet = acct.wallets[order.market]
        asset = spec.margin_asset
        if order.market == "coinm":
            notional = qty * spec.contract_size / px
            order.cum_quote = notional.quantize(_SATOSHI, ROUND_DOWN)
        else:
            notional = qty * px
            order.cum_quote = notional
        commission = (notional * rate).quantize(_SATOSHI, ROUND_DOWN)
        wallet[asset] = wallet.get(asset, ZERO) + realized - commission
        return commission, asset, realized

    @staticmethod
    def _apply_position(spec: SymbolSpec, pos: Position, signed: Decimal, px: Decimal) -> Decimal:
        """Apply a fill to a one-way position; returns the realized PnL (margin asset)."""
        realized = ZERO
        inverse = spec.market == "coinm"
        cs = Decimal(spec.contract_size)
        if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
            new = pos.amt + signed
            if inverse:
                cost = abs(pos.amt) / pos.entry if pos.amt else ZERO
                pos.entry = abs(new) / (cost + abs(signed) / px)
            else:
                pos.entry = (pos.entry * abs(pos.amt) + px * abs(signed)) / abs(new)
            pos.amt = new
            return realized
        closing = min(abs(signed), abs(pos.amt))
        direction = 1 if pos.amt > 0 else -1
        if inverse:
            realized = closing * cs * (1 / pos.entry - 1 / px) * direction
        else:
            realized = (px - pos.entry) * closing * direction
        new = pos.amt + signed
        if new == 0:
            pos.amt, pos.entry = ZERO, ZERO
        elif (new > 0) != (pos.amt > 0):
            pos.amt, pos.entry = new, px
        else:
            pos.amt = new
        return realized

    # -- order entry -----------------------------------------------------------------------

    def place(
        self, acct: Account, market: str, spec: SymbolSpec, new: NewOrder, now_ms: int
    ) -> Order:
        """Reserve, then match a checked order: it fills, rests or expires."""
        client_id = new.client_id or self.new_client_id()
        existing = acct.by_client.get((market, spec.symbol, client_id))
        if existing is not None and existing.is_open:
            if market == "spot":
                raise ApiError(-2010, "Duplicate order sent.")
            raise ApiError(-4116, "ClientOrderId is duplicated.")
        best = new.best_ask if new.buy else new.best_bid
        marketable = new.type == "MARKET" or (new.price >= best if new.buy else new.price <= best)
        if new.type == "LIMIT_MAKER" and marketable:
            raise ApiError(-2010, "Order would immediately match and take.")
        order = Order(
            market=market,
            symbol=spec.symbol,
            order_id=next(self._ids),
            client_order_id=client_id,
            side=new.side,
            type=new.type,
            time_in_force=new.time_in_force,
            price=new.price,
            qty=new.qty,
            time_ms=now_ms,
            quote_order_qty=new.quote_qty,
            update_ms=now_ms,
            checked_s=now_ms // 1000 + 1,
            reduce_only=new.reduce_only,
        )
        qty = qty_dec(spec, order.qty)
        fill_px = best if marketable else order.price
        if market == "spot":
            self._reserve_spot(acct, spec, order, qty, marketable, fill_px)
        else:
            self._check_margin(acct, market, spec, order, qty, fill_px)
        acct.orders[(market, spec.symbol, order.order_id)] = order
        acct.by_client[(market, spec.symbol, client_id)] = order
        acct.open[(market, spec.symbol, order.order_id)] = order
        acct.update_ms = now_ms
        if order.time_in_force == "GTX" and marketable:  # post-only that would take: expires
            order.status = "EXPIRED"
            self._close(acct, order)
        elif marketable:
            self._fill(acct, order, fill_px, maker=False, now_ms=now_ms)
        elif order.time_in_force in ("IOC", "FOK"):
            self._unlock(acct, spec, order)
            order.status = "EXPIRED"
            self._close(acct, order)
        return order

    def _reserve_spot(
        self,
        acct: Account,
        spec: SymbolSpec,
        order: Order,
        qty: Decimal,
        marketable: bool,
        fill_px: int,
    ) -> None:
        buy = order.side == "BUY"
        asset = spec.quote if buy else spec.base
        need = price_dec(spec, fill_px) * qty if buy else qty
        free = acct.spot_free.get(asset, ZERO)
        if need > free:
            raise ApiError(-2010, "Account has insufficient balance for requested action.")
        if not marketable and order.time_in_force == "GTC":
            acct.spot_free[asset] = free - need
            acct.spot_locked[asset] = acct.spot_locked.get(asset, ZERO) + need
            order.locked = need

    def _unlock(self, acct: Account, spec: SymbolSpec, order: Order) -> None:
        if order.market != "spot" or not order.locked:
            return
        asset = spec.quote if order.side == "BUY" else spec.base
        acct.spot_locked[asset] = acct.spot_locked.get(asset, ZERO) - order.locked
        acct.spot_free[asset] = acct.spot_free.get(asset, ZERO) + order.locked
        order.locked = ZERO

    def available(self, acct: Account, market: str, asset: str) -> Decimal:
        """Wallet + unrealized PnL - position margin - open order margin, for one asset."""
        total = acct.wallets[market].get(asset, ZERO)
        for (mkt, symbol), pos in acct.positions.items():
            spec = self.specs[(mkt, symbol)]
            if mkt != market or spec.margin_asset != asset or pos.amt == 0:
                continue
            lev = acct.lev(mkt, symbol)
            if acct.isolated(mkt, symbol):  # its isolated wallet left the cross wallet
                total -= margin_of(spec, abs(pos.amt), pos.entry, lev)
                continue
            mark = self.mark(spec, acct.update_ms // 1000)
            total += unrealized(spec, pos, mark)
            total -= margin_of(spec, abs(pos.amt), mark, lev)
        for order in acct.open.values():
            spec = self.specs[(order.market, order.symbol)]
            if order.market == market and spec.margin_asset == asset:
                lev = acct.lev(order.market, order.symbol)
                total -= margin_of(
                    spec, qty_dec(spec, order.qty), price_dec(spec, order.price), lev
                )
        return total

    def _check_margin(
        self, acct: Account, market: str, spec: SymbolSpec, order: Order, qty: Decimal, fill_px: int
    ) -> None:
        pos = acct.positions.get((market, spec.symbol))
        amt = pos.amt if pos else ZERO
        signed = qty if order.side == "BUY" else -qty
        reduces = amt != 0 and (amt > 0) != (signed > 0)
        if order.reduce_only and (not reduces or abs(signed) > abs(amt)):
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        if reduces and abs(signed) <= abs(amt):
            return
        need = margin_of(spec, qty, price_dec(spec, fill_px), acct.lev(market, spec.symbol))
        if need > self.available(acct, market, spec.margin_asset):
            raise ApiError(-2019, "Margin is insufficient.")

    # -- finding and cancelling ------------------------------------------------------------

    def find(
        self, acct: Account, market: str, spec: SymbolSpec, ref: OrderRef, *, cancel: bool
    ) -> Order:
        """The order ``ref`` names (-2011 for a cancel, -2013 for a query, if unknown)."""
        order: Order | None = None
        if ref.order_id is not None:
            order = acct.orders.get((market, spec.symbol, ref.order_id))
            if order is not None and ref.client_id and order.client_order_id != ref.client_id:
                order = None
        elif ref.client_id:
            order = acct.by_client.get((market, spec.symbol, ref.client_id))
        if order is None:
            if cancel:
                raise ApiError(-2011, "Unknown order sent.")
            raise ApiError(-2013, "Order does not exist.")
        return order

    def cancel(self, acct: Account, spec: SymbolSpec, order: Order, now_ms: int) -> None:
        """Cancel an open order (-2011 if it is not open)."""
        if not order.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        self._unlock(acct, spec, order)
        order.status = "CANCELED"
        self._touch(acct, order, now_ms)
        self._close(acct, order)

    def open_orders(self, acct: Account, market: str, symbol: str | None) -> list[Order]:
        """The account's open orders on ``market``, of one symbol or all."""
        return [
            o
            for o in acct.open.values()
            if o.market == market and (not symbol or o.symbol == symbol)
        ]
