"""Accounts, orders and matching against the deterministic price path.

Matching is lazy and exact in time: a resting LIMIT order is checked, whenever its account is
touched, against the completed seconds since it was last checked; it fills in full at its own
price in the first second whose low (buy) or high (sell) reaches it. MARKET orders and marketable
LIMIT orders fill at once at the best ask (buy) or best bid (sell) of the synthetic book.

Simplifications (documented in docs/simulator.md): fills are never partial; spot STOP/TAKE_PROFIT
and futures conditional orders are not supported (-1116); futures are one-way mode, cross margin,
fixed leverage (default 20); no liquidations, funding payments or delivery settlement.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import attrs

from .errors import ApiError, mandatory
from .market import MarketData, Series
from .symbols import SymbolSpec

__all__ = ["Account", "AccountConfig", "Order", "Trading"]

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DECIMAL = re.compile(r"^-?([0-9]{1,20})(\.[0-9]{1,20})?$")
_ZERO = Decimal(0)
_SPOT_MAKER = Decimal("0.001")
_SPOT_TAKER = Decimal("0.001")
_FUT_MAKER = Decimal("0.0002")
_FUT_TAKER = Decimal("0.0005")
_MAX_CLOSED_ORDERS = 100_000


def _decimals(value: Mapping[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in value.items()}


@attrs.define
class AccountConfig:
    """A simulated account and its API keys.

    Attributes:
        name: a label (appears as ``accountAlias`` and in logs).
        api_key: the key of its HMAC credential (64 characters, like Binance's).
        api_secret: the HMAC secret (None: the account has no HMAC key).
        ed25519_api_key: the key of its Ed25519 credential, if any.
        ed25519_public_key: the Ed25519 public key, PEM (SubjectPublicKeyInfo).
        spot / usdm / coinm: starting balances per asset (decimal strings).
        leverage: futures leverage for every symbol.
    """

    name: str
    api_key: str
    api_secret: str | None = attrs.field(default=None, repr=False)
    ed25519_api_key: str | None = None
    ed25519_public_key: str | None = None
    spot: Mapping[str, str] = attrs.field(
        factory=lambda: {"USDT": "100000", "BTC": "1", "ETH": "10", "BNB": "50"}
    )
    usdm: Mapping[str, str] = attrs.field(factory=lambda: {"USDT": "100000"})
    coinm: Mapping[str, str] = attrs.field(factory=lambda: {"BTC": "10", "ETH": "100"})
    leverage: int = 20


@attrs.define(eq=False)
class Order:
    """One order (open or closed). Prices in ticks, quantities in lot-step units."""

    market: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: int
    qty: int
    time_ms: int
    quote_order_qty: Decimal = _ZERO
    status: str = "NEW"
    executed: int = 0
    cum_quote: Decimal = _ZERO
    avg_price: Decimal = _ZERO
    update_ms: int = 0
    checked_s: int = 0
    reduce_only: bool = False
    locked: Decimal = _ZERO
    fills: list[dict[str, Any]] = attrs.field(factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@attrs.define(eq=False)
class _Position:
    amt: Decimal = _ZERO  # base qty (usdm) or contracts (coinm); negative = short
    entry: Decimal = _ZERO
    update_ms: int = 0


@attrs.define(eq=False)
class Account:
    """Live state of one account."""

    config: AccountConfig
    spot_free: dict[str, Decimal]
    spot_locked: dict[str, Decimal]
    wallets: dict[str, dict[str, Decimal]]  # "usdm"/"coinm" -> asset -> wallet balance
    positions: dict[tuple[str, str], _Position] = attrs.field(factory=dict)
    orders: dict[tuple[str, str, int], Order] = attrs.field(factory=dict)
    by_client: dict[tuple[str, str, str], Order] = attrs.field(factory=dict)
    open: dict[tuple[str, str, int], Order] = attrs.field(factory=dict)
    closed: deque[Order] = attrs.field(factory=deque)
    update_ms: int = 0

    @classmethod
    def from_config(cls, config: AccountConfig) -> Account:
        return cls(
            config=config,
            spot_free=_decimals(config.spot),
            spot_locked={},
            wallets={"usdm": _decimals(config.usdm), "coinm": _decimals(config.coinm)},
        )


def _parse_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _DECIMAL.match(raw):
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the regex already guards
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.") from None


def _parse_int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


class Trading:
    """Order entry, matching and account views for all accounts of one simulator."""

    def __init__(self, market_data: MarketData, specs: list[SymbolSpec]) -> None:
        self.md = market_data
        self.specs = {(s.market, s.symbol): s for s in specs}
        self._ids = itertools.count(4_000_000_001)
        self._trade_ids = itertools.count(900_000_001)
        self._client_ids = itertools.count(1)

    # -- helpers ---------------------------------------------------------------------------

    def spec(self, market: str, params: Mapping[str, str]) -> tuple[SymbolSpec, Series]:
        symbol = params.get("symbol")
        if not symbol:
            raise mandatory("symbol")
        spec = self.specs.get((market, symbol))
        series = self.md.get(market, symbol)
        if spec is None or series is None:
            raise ApiError(-1121, "Invalid symbol.")
        return spec, series

    @staticmethod
    def _price_dec(spec: SymbolSpec, ticks: int) -> Decimal:
        return Decimal(ticks).scaleb(-spec.price_decimals)

    @staticmethod
    def _qty_dec(spec: SymbolSpec, units: int) -> Decimal:
        return Decimal(units).scaleb(-spec.qty_decimals)

    def _new_client_id(self) -> str:
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

    def _fill(self, acct: Account, order: Order, price: int, *, maker: bool, now_ms: int) -> None:
        spec = self.specs[(order.market, order.symbol)]
        qty = self._qty_dec(spec, order.qty)
        px = self._price_dec(spec, price)
        trade_id = next(self._trade_ids)
        if order.market == "spot":
            quote = px * qty
            rate = _SPOT_MAKER if maker else _SPOT_TAKER
            buy = order.side == "BUY"
            # What the order pays: from its lock if it rested (maker fills at its own price, so
            # the lock is exactly what it pays), from the free balance if it filled at once.
            pay_asset, pay = (spec.quote, quote) if buy else (spec.base, qty)
            if order.locked:
                acct.spot_locked[pay_asset] = acct.spot_locked.get(pay_asset, _ZERO) - order.locked
                acct.spot_free[pay_asset] = (
                    acct.spot_free.get(pay_asset, _ZERO) + order.locked - pay
                )
            else:
                acct.spot_free[pay_asset] = acct.spot_free.get(pay_asset, _ZERO) - pay
            get_asset, get = (spec.base, qty) if buy else (spec.quote, quote)
            commission = (get * rate).quantize(Decimal("1e-8"), ROUND_DOWN)
            commission_asset = get_asset
            acct.spot_free[get_asset] = acct.spot_free.get(get_asset, _ZERO) + get - commission
            order.locked = _ZERO
            order.cum_quote = quote
        else:
            rate = _FUT_MAKER if maker else _FUT_TAKER
            signed = qty if order.side == "BUY" else -qty
            pos = acct.positions.setdefault((order.market, order.symbol), _Position())
            realized = self._apply_position(spec, pos, signed, px)
            pos.update_ms = now_ms
            wallet = acct.wallets[order.market]
            asset = spec.margin_asset
            if order.market == "coinm":
                notional = qty * spec.contract_size / px
                order.cum_quote = notional.quantize(Decimal("1e-8"), ROUND_DOWN)
            else:
                notional = qty * px
                order.cum_quote = notional
            commission = (notional * rate).quantize(Decimal("1e-8"), ROUND_DOWN)
            commission_asset = asset
            wallet[asset] = wallet.get(asset, _ZERO) + realized - commission
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
    def _apply_position(spec: SymbolSpec, pos: _Position, signed: Decimal, px: Decimal) -> Decimal:
        """Apply a fill to a one-way position; returns the realized PnL (margin asset)."""
        realized = _ZERO
        inverse = spec.market == "coinm"
        cs = Decimal(spec.contract_size)
        if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
            new = pos.amt + signed
            if inverse:
                cost = abs(pos.amt) / pos.entry if pos.amt else _ZERO
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
            pos.amt, pos.entry = _ZERO, _ZERO
        elif (new > 0) != (pos.amt > 0):
            pos.amt, pos.entry = new, px
        else:
            pos.amt = new
        return realized

    # -- order entry -----------------------------------------------------------------------

    def _validate(
        self,
        market: str,
        params: Mapping[str, str],
        series: Series,
        spec: SymbolSpec,
        now_ms: int,
    ) -> dict[str, Any]:
        """Parse and check a new order's parameters (mandatory params, enums, filters)."""
        side = params.get("side")
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        otype = params.get("type")
        if not otype:
            raise mandatory("type")
        supported = ("LIMIT", "MARKET", "LIMIT_MAKER") if market == "spot" else ("LIMIT", "MARKET")
        if otype not in supported:
            raise ApiError(-1116, "Invalid orderType.")
        tif = params.get("timeInForce")
        price = _parse_decimal(params, "price")
        qty = _parse_decimal(params, "quantity")
        quote_qty = _parse_decimal(params, "quoteOrderQty") if market == "spot" else None
        if otype == "LIMIT" and not tif:
            raise mandatory("timeInForce")
        if otype in ("LIMIT", "LIMIT_MAKER"):
            if price is None:
                raise mandatory("price")
            if qty is None:
                raise mandatory("quantity")
        if otype == "MARKET":
            if qty is None and quote_qty is None:
                if market == "spot":
                    raise ApiError(
                        -1102,
                        "Param 'quantity' or 'quoteOrderQty' must be sent, but both were "
                        "empty/null!",
                    )
                raise mandatory("quantity")
            tif = tif or "GTC"
        if otype == "LIMIT_MAKER":
            tif = "GTC"
        valid_tif = ("GTC", "IOC", "FOK") if market == "spot" else ("GTC", "IOC", "FOK", "GTX")
        if tif not in valid_tif:
            raise ApiError(-1115, "Invalid timeInForce.")
        client_id = params.get("newClientOrderId") or ""
        if client_id and not _CLIENT_ID.match(client_id):
            raise ApiError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                "'^[a-zA-Z0-9-_]{1,36}$'.",
            )
        resp_type = params.get("newOrderRespType")
        if resp_type is not None and resp_type not in ("ACK", "RESULT", "FULL"):
            raise ApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
        if market != "spot" and resp_type == "FULL":
            resp_type = "RESULT"
        reduce_only = params.get("reduceOnly", "false").lower() == "true"

        # Filters, in Binance's order: price, lot size, notional.
        is_spot = market == "spot"
        price_ticks = 0
        if price is not None and otype != "MARKET":
            if price.as_tuple().exponent < -8:  # type: ignore[operator]
                raise ApiError(-1111, "Parameter 'price' has too much precision.")
            scaled = price.scaleb(spec.price_decimals)
            max_price = Decimal(round(spec.price * 40))
            if scaled != scaled.to_integral_value() or price <= 0 or price > max_price:
                if is_spot:
                    raise ApiError(-1013, "Filter failure: PRICE_FILTER")
                if price <= 0:
                    raise ApiError(-4001, "Price less than 0.")
                if price > max_price:
                    raise ApiError(-4002, "Price greater than max price.")
                raise ApiError(-4014, "Price not increased by tick size.")
            price_ticks = int(scaled)
        book_bid, book_ask = series.book(now_ms, 1)
        best_bid, best_ask = book_bid[0][0], book_ask[0][0]
        market_px = best_ask if side == "BUY" else best_bid
        if qty is None and quote_qty is not None:
            # quoteOrderQty: the quantity the quote amount buys, rounded down to the step.
            units = int(
                (quote_qty / self._price_dec(spec, market_px))
                .scaleb(spec.qty_decimals)
                .to_integral_value(ROUND_DOWN)
            )
            qty = self._qty_dec(spec, units)
        assert qty is not None
        if qty.as_tuple().exponent < -8:  # type: ignore[operator]
            raise ApiError(-1111, "Parameter 'quantity' has too much precision.")
        scaled_qty = qty.scaleb(spec.qty_decimals)
        lot = "MARKET_LOT_SIZE" if otype == "MARKET" else "LOT_SIZE"
        max_qty = spec.max_qty / 10 if otype == "MARKET" else spec.max_qty
        if scaled_qty != scaled_qty.to_integral_value():
            if is_spot:
                raise ApiError(-1013, f"Filter failure: {lot}")
            raise ApiError(-1111, "Precision is over the maximum defined for this asset.")
        if qty < spec.min_qty or qty > max_qty:
            if is_spot:
                raise ApiError(-1013, f"Filter failure: {lot}")
            if qty <= 0:
                raise ApiError(-4003, "Quantity less than or equal to zero.")
            if qty < spec.min_qty:
                raise ApiError(-4004, "Quantity less than min quantity.")
            raise ApiError(-4005, "Quantity greater than max quantity.")
        qty_units = int(scaled_qty)
        ref_ticks = price_ticks if otype != "MARKET" else market_px
        notional = self._price_dec(spec, ref_ticks) * qty
        if is_spot and notional < spec.min_notional:
            raise ApiError(-1013, "Filter failure: NOTIONAL")
        if market == "usdm" and notional < spec.min_notional and not reduce_only:
            raise ApiError(
                -4164,
                f"Order's notional must be no smaller than {spec.min_notional} (unless you "
                "choose reduce only).",
            )
        return {
            "side": side,
            "type": otype,
            "tif": tif,
            "price": price_ticks,
            "qty": qty_units,
            "quote_qty": quote_qty or _ZERO,
            "client_id": client_id,
            "resp_type": resp_type,
            "reduce_only": reduce_only,
            "best_bid": best_bid,
            "best_ask": best_ask,
        }

    def test_order(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int
    ) -> dict[str, Any]:
        """POST .../order/test: validate only."""
        spec, series = self.spec(market, params)
        self._validate(market, params, series, spec, now_ms)
        if market == "spot" and params.get("computeCommissionRates", "").lower() == "true":
            rate = f"{_SPOT_TAKER:.8f}"
            return {
                "standardCommissionForOrder": {"maker": f"{_SPOT_MAKER:.8f}", "taker": rate},
                "specialCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
                "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": "0.00000000",
                },
            }
        return {}

    def place(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int
    ) -> dict[str, Any]:
        """POST .../order: validate, reserve, match; returns the response for the resp type."""
        spec, series = self.spec(market, params)
        self.sync(acct, market, now_ms)
        v = self._validate(market, params, series, spec, now_ms)
        client_id = v["client_id"] or self._new_client_id()
        existing = acct.by_client.get((market, spec.symbol, client_id))
        if existing is not None and existing.is_open:
            if market == "spot":
                raise ApiError(-2010, "Duplicate order sent.")
            raise ApiError(-4116, "ClientOrderId is duplicated.")
        side, otype, tif = v["side"], v["type"], v["tif"]
        buy = side == "BUY"
        best = v["best_ask"] if buy else v["best_bid"]
        marketable = otype == "MARKET" or (v["price"] >= best if buy else v["price"] <= best)
        if otype == "LIMIT_MAKER" and marketable:
            raise ApiError(-2010, "Order would immediately match and take.")
        order = Order(
            market=market,
            symbol=spec.symbol,
            order_id=next(self._ids),
            client_order_id=client_id,
            side=side,
            type=otype,
            time_in_force=tif,
            price=v["price"],
            qty=v["qty"],
            time_ms=now_ms,
            quote_order_qty=v["quote_qty"],
            update_ms=now_ms,
            checked_s=now_ms // 1000 + 1,
            reduce_only=v["reduce_only"],
        )
        qty = self._qty_dec(spec, order.qty)
        fill_px = best if marketable else order.price
        if market == "spot":
            self._reserve_spot(acct, spec, order, qty, marketable, fill_px)
        else:
            self._check_margin(acct, market, spec, order, qty, fill_px)
        resp_type = v["resp_type"] or (
            ("FULL" if otype in ("LIMIT", "MARKET") else "ACK") if market == "spot" else "ACK"
        )
        acct.orders[(market, spec.symbol, order.order_id)] = order
        acct.by_client[(market, spec.symbol, client_id)] = order
        acct.open[(market, spec.symbol, order.order_id)] = order
        acct.update_ms = now_ms
        snapshot = self.order_view(order, resp_type, new=True) if market != "spot" else None
        if tif == "GTX" and marketable:  # post-only that would take: expires unfilled
            order.status = "EXPIRED"
            self._close(acct, order)
        elif marketable:
            self._fill(acct, order, fill_px, maker=False, now_ms=now_ms)
        elif tif in ("IOC", "FOK"):
            self._unlock(acct, spec, order)
            order.status = "EXPIRED"
            self._close(acct, order)
        if market != "spot" and resp_type == "ACK":
            assert snapshot is not None
            return snapshot
        return self.order_view(order, resp_type, new=True)

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
        need = self._price_dec(spec, fill_px) * qty if buy else qty
        free = acct.spot_free.get(asset, _ZERO)
        if need > free:
            raise ApiError(-2010, "Account has insufficient balance for requested action.")
        if not marketable and order.time_in_force == "GTC":
            acct.spot_free[asset] = free - need
            acct.spot_locked[asset] = acct.spot_locked.get(asset, _ZERO) + need
            order.locked = need

    def _unlock(self, acct: Account, spec: SymbolSpec, order: Order) -> None:
        if order.market != "spot" or not order.locked:
            return
        asset = spec.quote if order.side == "BUY" else spec.base
        acct.spot_locked[asset] = acct.spot_locked.get(asset, _ZERO) - order.locked
        acct.spot_free[asset] = acct.spot_free.get(asset, _ZERO) + order.locked
        order.locked = _ZERO

    def _margin_of(self, spec: SymbolSpec, qty: Decimal, px: Decimal, leverage: int) -> Decimal:
        if spec.market == "coinm":
            return qty * spec.contract_size / px / leverage
        return qty * px / leverage

    def _available(self, acct: Account, market: str, asset: str) -> Decimal:
        """Wallet + unrealized PnL - position margin - open order margin, for one asset."""
        lev = acct.config.leverage
        total = acct.wallets[market].get(asset, _ZERO)
        for (mkt, symbol), pos in acct.positions.items():
            spec = self.specs[(mkt, symbol)]
            if mkt != market or spec.margin_asset != asset or pos.amt == 0:
                continue
            series = self.md.get(mkt, symbol)
            assert series is not None
            mark = self._price_dec(spec, series.price_at(acct.update_ms // 1000))
            total += self._unrealized(spec, pos, mark)
            total -= self._margin_of(spec, abs(pos.amt), mark, lev)
        for order in acct.open.values():
            spec = self.specs[(order.market, order.symbol)]
            if order.market == market and spec.margin_asset == asset:
                total -= self._margin_of(
                    spec, self._qty_dec(spec, order.qty), self._price_dec(spec, order.price), lev
                )
        return total

    @staticmethod
    def _unrealized(spec: SymbolSpec, pos: _Position, mark: Decimal) -> Decimal:
        if pos.amt == 0:
            return _ZERO
        if spec.market == "coinm":
            return pos.amt * spec.contract_size * (1 / pos.entry - 1 / mark)
        return (mark - pos.entry) * pos.amt

    def _check_margin(
        self, acct: Account, market: str, spec: SymbolSpec, order: Order, qty: Decimal, fill_px: int
    ) -> None:
        pos = acct.positions.get((market, spec.symbol))
        amt = pos.amt if pos else _ZERO
        signed = qty if order.side == "BUY" else -qty
        reduces = amt != 0 and (amt > 0) != (signed > 0)
        if order.reduce_only and (not reduces or abs(signed) > abs(amt)):
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        if reduces and abs(signed) <= abs(amt):
            return
        need = self._margin_of(spec, qty, self._price_dec(spec, fill_px), acct.config.leverage)
        if need > self._available(acct, market, spec.margin_asset):
            raise ApiError(-2019, "Margin is insufficient.")

    def _find(
        self,
        acct: Account,
        market: str,
        spec: SymbolSpec,
        params: Mapping[str, str],
        *,
        cancel: bool,
    ) -> Order:
        order_id = _parse_int(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and not client_id:
            if market == "spot":
                raise ApiError(
                    -1102,
                    "Param 'origClientOrderId' or 'orderId' must be sent, but both were "
                    "empty/null!",
                )
            raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
        order: Order | None = None
        if order_id is not None:
            order = acct.orders.get((market, spec.symbol, order_id))
            if order is not None and client_id and order.client_order_id != client_id:
                order = None
        elif client_id:
            order = acct.by_client.get((market, spec.symbol, client_id))
        if order is None:
            if cancel:
                raise ApiError(-2011, "Unknown order sent.")
            raise ApiError(-2013, "Order does not exist.")
        return order

    def query(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int
    ) -> dict[str, Any]:
        """GET .../order: by orderId or origClientOrderId, open or closed."""
        spec, _ = self.spec(market, params)
        self.sync(acct, market, now_ms)
        order = self._find(acct, market, spec, params, cancel=False)
        return self.order_view(order, "QUERY")

    def cancel(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int
    ) -> dict[str, Any]:
        """DELETE .../order: cancel an open order (-2011 if it is not open)."""
        spec, _ = self.spec(market, params)
        self.sync(acct, market, now_ms)
        order = self._find(acct, market, spec, params, cancel=True)
        if not order.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        self._unlock(acct, spec, order)
        order.status = "CANCELED"
        self._touch(acct, order, now_ms)
        self._close(acct, order)
        view = self.order_view(order, "CANCEL")
        if market == "spot":
            view["origClientOrderId"] = order.client_order_id
            view["clientOrderId"] = params.get("newClientOrderId") or self._new_client_id()
            view["transactTime"] = now_ms
        return view

    def open_orders(
        self, acct: Account, market: str, params: Mapping[str, str], now_ms: int
    ) -> list[dict[str, Any]]:
        """GET .../openOrders, for one symbol or all."""
        symbol = params.get("symbol")
        if symbol:
            self.spec(market, params)
        self.sync(acct, market, now_ms)
        return [
            self.order_view(o, "QUERY")
            for o in acct.open.values()
            if o.market == market and (not symbol or o.symbol == symbol)
        ]

    # -- views -----------------------------------------------------------------------------

    def order_view(self, order: Order, kind: str, *, new: bool = False) -> dict[str, Any]:
        """An order in Binance's shape. kind: ACK, RESULT, FULL (new orders), QUERY, CANCEL."""
        spec = self.specs[(order.market, order.symbol)]
        if order.market == "spot":
            return self._spot_view(spec, order, kind)
        return self._futures_view(spec, order, kind, new)

    def _spot_view(self, spec: SymbolSpec, order: Order, kind: str) -> dict[str, Any]:
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

    def _futures_view(self, spec: SymbolSpec, order: Order, kind: str, new: bool) -> dict[str, Any]:
        pd = spec.display_price_decimals
        out: dict[str, Any] = {
            "orderId": order.order_id,
            "symbol": order.symbol,
        }
        if spec.market == "coinm":
            out["pair"] = spec.pair
        executed = order.executed if not (new and kind == "ACK") else 0
        status = order.status if not (new and kind == "ACK") else "NEW"
        cum = order.cum_quote if executed else _ZERO
        avg = order.avg_price if executed else _ZERO
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

    def spot_account(self, acct: Account, now_ms: int, omit_zero: bool) -> dict[str, Any]:
        """GET /api/v3/account."""
        self.sync(acct, "spot", now_ms)
        assets = list(dict.fromkeys([*acct.spot_free, *acct.spot_locked]))
        balances = []
        for asset in assets:
            free = acct.spot_free.get(asset, _ZERO)
            locked = acct.spot_locked.get(asset, _ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"})
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": f"{_SPOT_MAKER:.8f}",
                "taker": f"{_SPOT_TAKER:.8f}",
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
        self.sync(acct, market, now_ms)
        lev = acct.config.leverage
        now_s = now_ms // 1000
        per_asset: dict[str, dict[str, Decimal]] = {}
        for asset, balance in acct.wallets[market].items():
            per_asset[asset] = {
                "wallet": balance,
                "upnl": _ZERO,
                "pos_im": _ZERO,
                "ord_im": _ZERO,
                "mm": _ZERO,
            }
        positions = []
        for (mkt, symbol), spec in self.specs.items():
            if mkt != market:
                continue
            pos = acct.positions.get((mkt, symbol), _Position())
            series = self.md.get(mkt, symbol)
            assert series is not None
            mark = self._price_dec(spec, series.price_at(now_s))
            row = per_asset.setdefault(
                spec.margin_asset,
                {"wallet": _ZERO, "upnl": _ZERO, "pos_im": _ZERO, "ord_im": _ZERO, "mm": _ZERO},
            )
            upnl = self._unrealized(spec, pos, mark)
            im = self._margin_of(spec, abs(pos.amt), mark, lev) if pos.amt else _ZERO
            mm = im * lev * Decimal("0.004")
            ord_im = sum(
                (
                    self._margin_of(
                        spec, self._qty_dec(spec, o.qty), self._price_dec(spec, o.price), lev
                    )
                    for o in acct.open.values()
                    if o.market == mkt and o.symbol == symbol
                ),
                _ZERO,
            )
            row["upnl"] += upnl
            row["pos_im"] += im
            row["ord_im"] += ord_im
            row["mm"] += mm
            notional = pos.amt * spec.contract_size / mark if market == "coinm" else pos.amt * mark
            if version >= 3 and pos.amt == 0:
                continue
            entry: dict[str, Any] = {
                "symbol": symbol,
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
                if market == "coinm":
                    entry["maxQty"] = "1000000"
                else:
                    entry["maxNotional"] = "20000000"
            positions.append(entry)
        assets = []
        totals = dict.fromkeys(("wallet", "upnl", "pos_im", "ord_im", "mm", "avail"), _ZERO)
        for asset, row in per_asset.items():
            margin_balance = row["wallet"] + row["upnl"]
            available = margin_balance - row["pos_im"] - row["ord_im"]
            for k in ("wallet", "upnl", "pos_im", "ord_im", "mm"):
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
                    "maxWithdrawAmount": f"{max(available, _ZERO):.8f}",
                    "updateTime": acct.update_ms,
                }
            )
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
            "maxWithdrawAmount": f"{max(totals['avail'], _ZERO):.8f}",
            "assets": assets,
            "positions": positions,
        }

    def futures_balance(self, acct: Account, market: str, now_ms: int) -> list[dict[str, Any]]:
        """GET /fapi/v2/balance or /dapi/v1/balance."""
        self.sync(acct, market, now_ms)
        out = []
        for asset, balance in acct.wallets[market].items():
            unpnl = _ZERO
            for (mkt, symbol), pos in acct.positions.items():
                spec = self.specs[(mkt, symbol)]
                if mkt == market and spec.margin_asset == asset and pos.amt:
                    series = self.md.get(mkt, symbol)
                    assert series is not None
                    mark = self._price_dec(spec, series.price_at(now_ms // 1000))
                    unpnl += self._unrealized(spec, pos, mark)
            available = self._available(acct, market, asset)
            row: dict[str, Any] = {
                "accountAlias": acct.config.name,
                "asset": asset,
                "balance": f"{balance:.8f}",
            }
            if market == "coinm":
                row["withdrawAvailable"] = f"{max(available, _ZERO):.8f}"
            row.update(
                {
                    "crossWalletBalance": f"{balance:.8f}",
                    "crossUnPnl": f"{unpnl:.8f}",
                    "availableBalance": f"{available:.8f}",
                }
            )
            if market == "usdm":
                row["maxWithdrawAmount"] = f"{max(available, _ZERO):.8f}"
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
            self.spec(market, params)
        pair = params.get("pair")
        self.sync(acct, market, now_ms)
        out = []
        for (mkt, sym), spec in self.specs.items():
            if mkt != market or (symbol and sym != symbol) or (pair and spec.pair != pair):
                continue
            series = self.md.get(mkt, sym)
            assert series is not None
            pos = acct.positions.get((mkt, sym), _Position())
            mark = self._price_dec(spec, series.price_at(now_ms // 1000))
            pd = spec.display_price_decimals
            notional = pos.amt * spec.contract_size / mark if market == "coinm" else pos.amt * mark
            row: dict[str, Any] = {
                "symbol": sym,
                "positionAmt": spec.qty_str(int(pos.amt.scaleb(spec.qty_decimals))),
                "entryPrice": f"{pos.entry:.{pd + 6}f}",
                "breakEvenPrice": f"{pos.entry:.{pd + 6}f}",
                "markPrice": f"{mark:.{pd + 6}f}",
                "unRealizedProfit": f"{self._unrealized(spec, pos, mark):.8f}",
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
