"""The typed order parser: a new order's parameters checked as Binance checks them, in its order
(mandatory parameters and enums, then the price, lot size and notional filters)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation

import attrs

from .errors import ApiError, mandatory
from .market import Series
from .symbols import SymbolSpec

__all__ = ["NewOrder", "OrderRef", "parse_decimal", "parse_int", "parse_new_order", "parse_ref"]

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DECIMAL = re.compile(r"^-?([0-9]{1,20})(\.[0-9]{1,20})?$")
_ZERO = Decimal(0)


@attrs.frozen
class NewOrder:
    """A new order that passed every check. Prices in ticks, quantities in lot-step units.

    Attributes:
        resp_type: the answer's shape (``ACK``, ``RESULT``, ``FULL``), the market's default
            filled in.
        best_bid / best_ask: the book's top (ticks) when the order was checked.
    """

    side: str
    type: str
    time_in_force: str
    price: int
    qty: int
    quote_qty: Decimal
    client_id: str
    resp_type: str
    reduce_only: bool
    best_bid: int
    best_ask: int

    @property
    def buy(self) -> bool:
        return self.side == "BUY"


@attrs.frozen
class OrderRef:
    """How a query or cancel names its order: by id, by client id, or both (must agree)."""

    order_id: int | None
    client_id: str | None


def parse_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    """A decimal parameter, None when absent or empty."""
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


def parse_int(params: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer parameter, None when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


def parse_ref(market: str, params: Mapping[str, str]) -> OrderRef:
    """``orderId`` and/or ``origClientOrderId`` (one of them is mandatory)."""
    order_id = parse_int(params, "orderId")
    client_id = params.get("origClientOrderId")
    if order_id is None and not client_id:
        if market == "spot":
            raise ApiError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
    return OrderRef(order_id, client_id or None)


@attrs.frozen
class _Fields:
    """The order's enums and identifiers, before the filters."""

    side: str
    type: str
    tif: str
    price: Decimal | None
    qty: Decimal | None
    quote_qty: Decimal | None
    client_id: str
    resp_type: str
    reduce_only: bool


def parse_new_order(
    market: str, params: Mapping[str, str], series: Series, spec: SymbolSpec, now_ms: int
) -> NewOrder:
    """Parse and check a new order's parameters (mandatory params, enums, filters)."""
    f = _fields(market, params)
    is_spot = market == "spot"
    price_ticks = _price_ticks(spec, f.price, is_spot) if f.type != "MARKET" else 0
    book_bid, book_ask = series.book(now_ms, 1)
    best_bid, best_ask = book_bid[0][0], book_ask[0][0]
    market_px = best_ask if f.side == "BUY" else best_bid
    qty = f.qty
    if qty is None and f.quote_qty is not None:
        # quoteOrderQty: the quantity the quote amount buys, rounded down to the step.
        px = Decimal(market_px).scaleb(-spec.price_decimals)
        units = int((f.quote_qty / px).scaleb(spec.qty_decimals).to_integral_value(ROUND_DOWN))
        qty = Decimal(units).scaleb(-spec.qty_decimals)
    assert qty is not None
    qty_units = _qty_units(spec, qty, f.type, is_spot)
    ref_ticks = price_ticks if f.type != "MARKET" else market_px
    notional = Decimal(ref_ticks).scaleb(-spec.price_decimals) * qty
    if is_spot and notional < spec.min_notional:
        raise ApiError(-1013, "Filter failure: NOTIONAL")
    if market == "usdm" and notional < spec.min_notional and not f.reduce_only:
        raise ApiError(
            -4164,
            f"Order's notional must be no smaller than {spec.min_notional} (unless you "
            "choose reduce only).",
        )
    return NewOrder(
        side=f.side,
        type=f.type,
        time_in_force=f.tif,
        price=price_ticks,
        qty=qty_units,
        quote_qty=f.quote_qty or _ZERO,
        client_id=f.client_id,
        resp_type=f.resp_type,
        reduce_only=f.reduce_only,
        best_bid=best_bid,
        best_ask=best_ask,
    )


def _fields(market: str, params: Mapping[str, str]) -> _Fields:
    # One check after the other in Binance's order: which error a bad order gets depends on it.
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
    price = parse_decimal(params, "price")
    qty = parse_decimal(params, "quantity")
    quote_qty = parse_decimal(params, "quoteOrderQty") if market == "spot" else None
    tif = _time_in_force(market, otype, params.get("timeInForce"), price, qty, quote_qty)
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
    if resp_type is None:
        full = market == "spot" and otype in ("LIMIT", "MARKET")
        resp_type = "FULL" if full else "ACK"
    reduce_only = params.get("reduceOnly", "false").lower() == "true"
    return _Fields(side, otype, tif, price, qty, quote_qty, client_id, resp_type, reduce_only)


def _time_in_force(
    market: str,
    otype: str,
    tif: str | None,
    price: Decimal | None,
    qty: Decimal | None,
    quote_qty: Decimal | None,
) -> str:
    """The mandatory price and quantity of the type, then its time in force."""
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
    if tif is None or tif not in valid_tif:
        raise ApiError(-1115, "Invalid timeInForce.")
    return tif


def _price_ticks(spec: SymbolSpec, price: Decimal | None, is_spot: bool) -> int:
    """PRICE_FILTER: the price in ticks (0 when the order has none)."""
    if price is None:
        return 0
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
    return int(scaled)


def _qty_units(spec: SymbolSpec, qty: Decimal, otype: str, is_spot: bool) -> int:
    """LOT_SIZE (MARKET_LOT_SIZE for market orders): the quantity in lot steps."""
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
    return int(scaled_qty)
