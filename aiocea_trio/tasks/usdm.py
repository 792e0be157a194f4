"""The USDⓈ-M futures family: `/fapi/...` on fapi.binance.com.

Each class only says where its endpoint lives; fields, checks and wording come from the
kinds in `_base` (futures kline limit 1..1500, depth limit one of 5..1000, no `1s`).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..markets import Market
from ._base import (
    AccountTask,
    AggTradesTask,
    BalancesTask,
    BookTickerTask,
    CancelOrderTask,
    ExchangeInfoTask,
    FundingRateTask,
    FuturesOrderTask,
    KlinesTask,
    MyTradesTask,
    OpenInterestTask,
    OpenOrdersTask,
    OrderBookTask,
    PingTask,
    PositionRiskTask,
    PremiumIndexTask,
    QueryOrderTask,
    ServerTimeTask,
    Ticker24hTask,
    TickerPriceTask,
    TradesTask,
    about,
    subject,
)
from ._validate import check_time, optional_symbol

__all__ = [
    "UsdMCancelOrder",
    "UsdMFetchAccount",
    "UsdMFetchAggTrades",
    "UsdMFetchBalances",
    "UsdMFetchBookTicker",
    "UsdMFetchExchangeInfo",
    "UsdMFetchFundingRate",
    "UsdMFetchKline",
    "UsdMFetchOpenInterest",
    "UsdMFetchOpenOrders",
    "UsdMFetchOrderBook",
    "UsdMFetchPositionRisk",
    "UsdMFetchPremiumIndex",
    "UsdMFetchTicker",
    "UsdMFetchTicker24h",
    "UsdMFetchTrades",
    "UsdMFetchUserTrades",
    "UsdMNewOrder",
    "UsdMPing",
    "UsdMQueryOrder",
    "UsdMServerTime",
    "UsdMTestOrder",
]


class _UsdM:
    """Mixin: the market of every task below."""

    __slots__ = ()
    market: ClassVar[Market] = Market.USDM


# -- market data ---------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class UsdMPing(_UsdM, PingTask):
    """GET /fapi/v1/ping: `{}`."""

    path = "/fapi/v1/ping"


@attrs.define(eq=False, kw_only=True)
class UsdMServerTime(_UsdM, ServerTimeTask):
    """GET /fapi/v1/time: `{"serverTime": ms}`."""

    path = "/fapi/v1/time"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchExchangeInfo(_UsdM, ExchangeInfoTask):
    """GET /fapi/v1/exchangeInfo: `{rateLimits, serverTime, assets, symbols, ...}`."""

    path = "/fapi/v1/exchangeInfo"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchOrderBook(_UsdM, OrderBookTask):
    """GET /fapi/v1/depth: `{lastUpdateId, E, T, bids, asks}`; limit 5/10/20/50/100/500/1000."""

    path = "/fapi/v1/depth"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchTrades(_UsdM, TradesTask):
    """GET /fapi/v1/trades: `[{id, price, qty, quoteQty, time, isBuyerMaker}]`."""

    path = "/fapi/v1/trades"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchAggTrades(_UsdM, AggTradesTask):
    """GET /fapi/v1/aggTrades (weight 20): a time range must be under one hour."""

    path = "/fapi/v1/aggTrades"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchKline(_UsdM, KlinesTask):
    """GET /fapi/v1/klines: 12-field rows; limit 1..1500 (weight 1 to 10 by limit)."""

    path = "/fapi/v1/klines"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchTicker(_UsdM, TickerPriceTask):
    """GET /fapi/v1/ticker/price: `{symbol, price, time}`, a list without `symbol`."""

    path = "/fapi/v1/ticker/price"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchTicker24h(_UsdM, Ticker24hTask):
    """GET /fapi/v1/ticker/24hr: weight 1 with a symbol, 40 without."""

    path = "/fapi/v1/ticker/24hr"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchBookTicker(_UsdM, BookTickerTask):
    """GET /fapi/v1/ticker/bookTicker: `{symbol, bidPrice, bidQty, askPrice, askQty, time}`."""

    path = "/fapi/v1/ticker/bookTicker"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchPremiumIndex(_UsdM, PremiumIndexTask):
    """GET /fapi/v1/premiumIndex: mark and index price, last funding rate, next funding time."""

    path = "/fapi/v1/premiumIndex"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchFundingRate(_UsdM, FundingRateTask):
    """GET /fapi/v1/fundingRate: `[{symbol, fundingRate, fundingTime, markPrice}]`."""

    path = "/fapi/v1/fundingRate"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchOpenInterest(_UsdM, OpenInterestTask):
    """GET /fapi/v1/openInterest: `{openInterest, symbol, time}`."""

    path = "/fapi/v1/openInterest"


# -- account -------------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class UsdMFetchAccount(_UsdM, AccountTask):
    """GET /fapi/v3/account (signed, weight 5): margin totals, `assets` and `positions`.

    v3 is Binance's current form (v2 also lists every symbol's empty position).
    """

    path = "/fapi/v3/account"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchBalances(_UsdM, BalancesTask):
    """GET /fapi/v2/balance (signed): `[{accountAlias, asset, balance, availableBalance, ...}]`."""

    path = "/fapi/v2/balance"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchOpenOrders(_UsdM, OpenOrdersTask):
    """GET /fapi/v1/openOrders (signed): weight 1 with a symbol, 40 without."""

    path = "/fapi/v1/openOrders"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchPositionRisk(_UsdM, PositionRiskTask):
    """GET /fapi/v2/positionRisk (signed, weight 5): one row per symbol and position side."""

    path = "/fapi/v2/positionRisk"

    symbol: str | None = attrs.field(default=None, validator=optional_symbol)

    def describe(self) -> str:
        return about("position risk", subject(self.symbol))


# -- orders --------------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class _UsdMOrder(_UsdM, FuturesOrderTask):
    """USDⓈ-M order parameters: futures ones plus GTD orders' `goodTillDate`."""

    time_in_force = ("GTC", "IOC", "FOK", "GTX", "GTD")

    goodTillDate: int | None = attrs.field(default=None, validator=check_time)
    """When a GTD order expires (ms); needed with timeInForce="GTD"."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.timeInForce == "GTD" and self.goodTillDate is None:
            raise ValueError(
                f"{type(self).__name__}: a GTD order needs goodTillDate; missing: goodTillDate"
            )


@attrs.define(eq=False, kw_only=True)
class UsdMNewOrder(_UsdMOrder):
    """POST /fapi/v1/order (signed): places the order. Never retried blindly."""

    path = "/fapi/v1/order"


@attrs.define(eq=False, kw_only=True)
class UsdMTestOrder(_UsdMOrder):
    """POST /fapi/v1/order/test (signed): checks the order, never reaches the engine."""

    path = "/fapi/v1/order/test"
    action = "test order"


@attrs.define(eq=False, kw_only=True)
class UsdMQueryOrder(_UsdM, QueryOrderTask):
    """GET /fapi/v1/order (signed)."""

    path = "/fapi/v1/order"


@attrs.define(eq=False, kw_only=True)
class UsdMCancelOrder(_UsdM, CancelOrderTask):
    """DELETE /fapi/v1/order (signed)."""

    path = "/fapi/v1/order"


@attrs.define(eq=False, kw_only=True)
class UsdMFetchUserTrades(_UsdM, MyTradesTask):
    """GET /fapi/v1/userTrades (signed, weight 5):
    no range means the last 7 days; a range spans 7 days at most."""

    path = "/fapi/v1/userTrades"
