"""The spot family: `/api/v3/...` on api.binance.com.

Each class only says where its endpoint lives, its limits, and the spot-only parameters
(`symbols=` lists, the 24h `type`, `timeZone`, `quoteOrderQty`...); fields, checks and
wording come from the kinds in `_base`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from ..markets import Market
from ._base import (
    AccountTask,
    AggTradesTask,
    BalancesTask,
    BinanceTask,
    BookTickerTask,
    CancelOrderTask,
    ExchangeInfoTask,
    KlinesTask,
    MyTradesTask,
    OpenOrdersTask,
    OrderBookTask,
    OrderTask,
    PingTask,
    QueryOrderTask,
    ServerTimeTask,
    Ticker24hTask,
    TickerPriceTask,
    TradesTask,
    about,
    subject,
    symbols_converter,
)
from ._validate import (
    SPOT_INTERVALS,
    Requirement,
    check_decimal,
    check_enum,
    decimal_text,
    optional_int,
    optional_symbols,
    required_symbol,
)

__all__ = [
    "SpotCancelOrder",
    "SpotFetchAccount",
    "SpotFetchAggTrades",
    "SpotFetchAvgPrice",
    "SpotFetchBalances",
    "SpotFetchBookTicker",
    "SpotFetchExchangeInfo",
    "SpotFetchKline",
    "SpotFetchMyTrades",
    "SpotFetchOpenOrders",
    "SpotFetchOrderBook",
    "SpotFetchTicker",
    "SpotFetchTicker24h",
    "SpotFetchTrades",
    "SpotNewOrder",
    "SpotPing",
    "SpotQueryOrder",
    "SpotServerTime",
    "SpotTestOrder",
]


class _Spot:
    """Mixin: the market of every task below."""

    __slots__ = ()
    market: ClassVar[Market] = Market.SPOT


def _symbol_or_symbols(task: Any) -> None:
    if task.symbol is not None and task.symbols is not None:
        raise ValueError(
            f"{type(task).__name__}: give symbol or symbols, not both; "
            f"got symbol={task.symbol!r}, symbols={list(task.symbols)!r}"
        )


def _symbols_field() -> Any:
    return attrs.field(default=None, converter=symbols_converter, validator=optional_symbols)


# -- market data ---------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class SpotPing(_Spot, PingTask):
    """GET /api/v3/ping: `{}`."""

    path = "/api/v3/ping"


@attrs.define(eq=False, kw_only=True)
class SpotServerTime(_Spot, ServerTimeTask):
    """GET /api/v3/time: `{"serverTime": ms}`."""

    path = "/api/v3/time"


@attrs.define(eq=False, kw_only=True)
class SpotFetchExchangeInfo(_Spot, ExchangeInfoTask):
    """GET /api/v3/exchangeInfo, for all symbols or the ones named."""

    path = "/api/v3/exchangeInfo"

    symbol: str | None = attrs.field(default=None)
    symbols: Sequence[str] | None = _symbols_field()

    @symbol.validator
    def _check_symbol(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            required_symbol(self, attribute, value)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        _symbol_or_symbols(self)

    def describe(self) -> str:
        who = subject(self.symbol, symbols=self.symbols)
        return f"exchange info for {who}" if who else "exchange info"


@attrs.define(eq=False, kw_only=True)
class SpotFetchOrderBook(_Spot, OrderBookTask):
    """GET /api/v3/depth: `{lastUpdateId, bids, asks}`; limit 1..5000 (weight 5 to 250)."""

    path = "/api/v3/depth"


@attrs.define(eq=False, kw_only=True)
class SpotFetchTrades(_Spot, TradesTask):
    """GET /api/v3/trades: `[{id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch}]`."""

    path = "/api/v3/trades"


@attrs.define(eq=False, kw_only=True)
class SpotFetchAggTrades(_Spot, AggTradesTask):
    """GET /api/v3/aggTrades."""

    path = "/api/v3/aggTrades"


@attrs.define(eq=False, kw_only=True)
class SpotFetchKline(_Spot, KlinesTask):
    """GET /api/v3/klines: 12-field rows; limit 1..1000; intervals include `1s`."""

    path = "/api/v3/klines"
    intervals = SPOT_INTERVALS

    timeZone: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    """Hours and minutes from UTC the candles are cut in ("8", "-1:30"); times stay UTC."""


@attrs.define(eq=False, kw_only=True)
class SpotFetchTicker(_Spot, TickerPriceTask):
    """GET /api/v3/ticker/price: `{symbol, price}`, a list without `symbol`."""

    path = "/api/v3/ticker/price"

    symbols: Sequence[str] | None = _symbols_field()

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        _symbol_or_symbols(self)

    def describe(self) -> str:
        return about("ticker price", subject(self.symbol, symbols=self.symbols))


@attrs.define(eq=False, kw_only=True)
class SpotFetchTicker24h(_Spot, Ticker24hTask):
    """GET /api/v3/ticker/24hr; `type="MINI"` drops the change and bid/ask fields."""

    path = "/api/v3/ticker/24hr"

    symbols: Sequence[str] | None = _symbols_field()
    type: str | None = attrs.field(
        default=None, validator=check_enum("FULL", "MINI", optional=True)
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        _symbol_or_symbols(self)

    def describe(self) -> str:
        return about("24h ticker", subject(self.symbol, symbols=self.symbols))


@attrs.define(eq=False, kw_only=True)
class SpotFetchBookTicker(_Spot, BookTickerTask):
    """GET /api/v3/ticker/bookTicker: `{symbol, bidPrice, bidQty, askPrice, askQty}`."""

    path = "/api/v3/ticker/bookTicker"

    symbols: Sequence[str] | None = _symbols_field()

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        _symbol_or_symbols(self)

    def describe(self) -> str:
        return about("book ticker", subject(self.symbol, symbols=self.symbols))


@attrs.define(eq=False, kw_only=True)
class SpotFetchAvgPrice(_Spot, BinanceTask):
    """GET /api/v3/avgPrice: `{mins, price, closeTime}`."""

    path = "/api/v3/avgPrice"

    symbol: str = attrs.field(validator=required_symbol)

    def describe(self) -> str:
        return f"{self.symbol} average price"


# -- account -------------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class SpotFetchAccount(_Spot, AccountTask):
    """GET /api/v3/account (signed, weight 20): commissions, permissions and `balances`."""

    path = "/api/v3/account"

    omitZeroBalances: bool | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(bool))
    )


@attrs.define(eq=False, kw_only=True)
class SpotFetchBalances(_Spot, BalancesTask):
    """The `balances` list of GET /api/v3/account: `[{asset, free, locked}]`."""

    path = "/api/v3/account"
    zero_fields = ("free", "locked")

    def params(self) -> dict[str, object]:
        # Let Binance shrink the answer too; parse() filters anyway.
        return {"omitZeroBalances": True} if self.omitZeroBalances else {}

    def rows(self, raw: Any) -> list[dict[str, Any]]:
        return list(raw["balances"])


@attrs.define(eq=False, kw_only=True)
class SpotFetchOpenOrders(_Spot, OpenOrdersTask):
    """GET /api/v3/openOrders (signed): weight 6 with a symbol, 80 without."""

    path = "/api/v3/openOrders"


# -- orders --------------------------------------------------------------------------------

_SPOT_REQUIREMENTS: dict[str, tuple[Requirement, ...]] = {
    "LIMIT": ("timeInForce", "quantity", "price"),
    "MARKET": (("quantity", "quoteOrderQty"),),
    "STOP_LOSS": ("quantity", ("stopPrice", "trailingDelta")),
    "TAKE_PROFIT": ("quantity", ("stopPrice", "trailingDelta")),
    "STOP_LOSS_LIMIT": ("timeInForce", "quantity", "price", ("stopPrice", "trailingDelta")),
    "TAKE_PROFIT_LIMIT": ("timeInForce", "quantity", "price", ("stopPrice", "trailingDelta")),
    "LIMIT_MAKER": ("quantity", "price"),
}


@attrs.define(eq=False, kw_only=True)
class _SpotOrder(_Spot, OrderTask):
    """Spot order parameters (shared by the real order and the test order)."""

    order_types = tuple(_SPOT_REQUIREMENTS)
    time_in_force = ("GTC", "IOC", "FOK")
    resp_types = ("ACK", "RESULT", "FULL")
    requirements = _SPOT_REQUIREMENTS

    quoteOrderQty: str | None = attrs.field(
        default=None, converter=decimal_text, validator=check_decimal
    )
    """MARKET orders: spend (BUY) or receive (SELL) this much of the quote asset."""
    trailingDelta: int | None = attrs.field(default=None, validator=optional_int)
    icebergQty: str | None = attrs.field(
        default=None, converter=decimal_text, validator=check_decimal
    )
    selfTradePreventionMode: str | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.quantity is not None and self.quoteOrderQty is not None:
            raise ValueError(
                f"{type(self).__name__}: give quantity or quoteOrderQty, not both; "
                f"got quantity={self.quantity!r}, quoteOrderQty={self.quoteOrderQty!r}"
            )

    def extra_words(self) -> list[str]:
        return [] if self.quoteOrderQty is None else [f"quote amount {self.quoteOrderQty}"]


@attrs.define(eq=False, kw_only=True)
class SpotNewOrder(_SpotOrder):
    """POST /api/v3/order (signed): places the order. Never retried blindly."""

    path = "/api/v3/order"


@attrs.define(eq=False, kw_only=True)
class SpotTestOrder(_SpotOrder):
    """POST /api/v3/order/test (signed): checks the order, never reaches the engine."""

    path = "/api/v3/order/test"
    action = "test order"

    computeCommissionRates: bool | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(bool))
    )
    """Answer the commission rates instead of `{}` (weight 20 instead of 1)."""


@attrs.define(eq=False, kw_only=True)
class SpotQueryOrder(_Spot, QueryOrderTask):
    """GET /api/v3/order (signed, weight 4)."""

    path = "/api/v3/order"


@attrs.define(eq=False, kw_only=True)
class SpotCancelOrder(_Spot, CancelOrderTask):
    """DELETE /api/v3/order (signed)."""

    path = "/api/v3/order"


@attrs.define(eq=False, kw_only=True)
class SpotFetchMyTrades(_Spot, MyTradesTask):
    """GET /api/v3/myTrades (signed): weight 20, or 5 with `orderId`;
    a range spans 24 hours at most."""

    path = "/api/v3/myTrades"
