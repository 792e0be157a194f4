"""The COIN-M futures family: `/dapi/v1/...` on dapi.binance.com.

aiocea's four tasks (`CoinMPing`, `CoinMServerTime`, `CoinMFetchTicker`,
`CoinMFetchKline`) live here with their original parameters; the rest follow the same
scheme. COIN-M differs from USDⓈ-M in a few places: tickers, premium index and open
orders also filter by `pair`, the ticker price is always a list, and the funding-rate
history needs a symbol.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
from ._validate import optional_symbol, required_symbol

__all__ = [
    "CoinMCancelOrder",
    "CoinMFetchAccount",
    "CoinMFetchAggTrades",
    "CoinMFetchBalances",
    "CoinMFetchBookTicker",
    "CoinMFetchExchangeInfo",
    "CoinMFetchFundingRate",
    "CoinMFetchKline",
    "CoinMFetchOpenInterest",
    "CoinMFetchOpenOrders",
    "CoinMFetchOrderBook",
    "CoinMFetchPositionRisk",
    "CoinMFetchPremiumIndex",
    "CoinMFetchTicker",
    "CoinMFetchTicker24h",
    "CoinMFetchTrades",
    "CoinMFetchUserTrades",
    "CoinMNewOrder",
    "CoinMPing",
    "CoinMQueryOrder",
    "CoinMServerTime",
    "CoinMTestOrder",
]


class _CoinM:
    """Mixin: the market of every task below."""

    __slots__ = ()
    market: ClassVar[Market] = Market.COINM


def _pair_field() -> Any:
    return attrs.field(default=None, validator=optional_symbol)


def _as_list(raw: Any) -> Any:
    """COIN-M's tickers answer a list even for one symbol (aiocea printed one); a
    server that answers a bare object still gives the caller the same shape."""
    return [raw] if isinstance(raw, dict) else raw


# -- market data ---------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class CoinMPing(_CoinM, PingTask):
    """GET /dapi/v1/ping: `{}`. aiocea's "ping服务器"."""

    path = "/dapi/v1/ping"


@attrs.define(eq=False, kw_only=True)
class CoinMServerTime(_CoinM, ServerTimeTask):
    """GET /dapi/v1/time: `{"serverTime": ms}`. aiocea's "获取币安币本位服务器时间"."""

    path = "/dapi/v1/time"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchExchangeInfo(_CoinM, ExchangeInfoTask):
    """GET /dapi/v1/exchangeInfo."""

    path = "/dapi/v1/exchangeInfo"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchOrderBook(_CoinM, OrderBookTask):
    """GET /dapi/v1/depth: `{lastUpdateId, symbol, pair, E, T, bids, asks}`."""

    path = "/dapi/v1/depth"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchTrades(_CoinM, TradesTask):
    """GET /dapi/v1/trades: `[{id, price, qty, baseQty, time, isBuyerMaker}]`."""

    path = "/dapi/v1/trades"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchAggTrades(_CoinM, AggTradesTask):
    """GET /dapi/v1/aggTrades (weight 20): a time range must be under one hour."""

    path = "/dapi/v1/aggTrades"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchKline(_CoinM, KlinesTask):
    """GET /dapi/v1/klines: 12-field rows ([7] is the base-asset volume); limit 1..1500.

    aiocea's "获取币本位合约:BTCUSD_PERP 1m周期 K线<None to ...>(limit 1)".
    """

    path = "/dapi/v1/klines"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchTicker(_CoinM, TickerPriceTask):
    """GET /dapi/v1/ticker/price: always a list of `{symbol, ps, price, time}`.

    aiocea's "获取币本位合约:BTCUSD_PERP 实时价格"; it passes both symbol and pair.
    """

    path = "/dapi/v1/ticker/price"

    pair: str | None = _pair_field()

    def parse(self, raw: Any) -> Any:
        return _as_list(raw)

    def describe(self) -> str:
        return about("ticker price", subject(self.symbol, pair=self.pair))


@attrs.define(eq=False, kw_only=True)
class CoinMFetchTicker24h(_CoinM, Ticker24hTask):
    """GET /dapi/v1/ticker/24hr: always a list; weight 1 with a symbol, 40 without."""

    path = "/dapi/v1/ticker/24hr"

    pair: str | None = _pair_field()

    def parse(self, raw: Any) -> Any:
        return _as_list(raw)

    def describe(self) -> str:
        return about("24h ticker", subject(self.symbol, pair=self.pair))


@attrs.define(eq=False, kw_only=True)
class CoinMFetchBookTicker(_CoinM, BookTickerTask):
    """GET /dapi/v1/ticker/bookTicker: always a list of `{symbol, pair, bidPrice, ..., time}`."""

    path = "/dapi/v1/ticker/bookTicker"

    pair: str | None = _pair_field()

    def parse(self, raw: Any) -> Any:
        return _as_list(raw)

    def describe(self) -> str:
        return about("book ticker", subject(self.symbol, pair=self.pair))


@attrs.define(eq=False, kw_only=True)
class CoinMFetchPremiumIndex(_CoinM, PremiumIndexTask):
    """GET /dapi/v1/premiumIndex (weight 10): always a list; fields as USDⓈ-M plus `pair`."""

    path = "/dapi/v1/premiumIndex"

    pair: str | None = _pair_field()

    def describe(self) -> str:
        return about("premium index", subject(self.symbol, pair=self.pair))


@attrs.define(eq=False, kw_only=True)
class CoinMFetchFundingRate(_CoinM, FundingRateTask):
    """GET /dapi/v1/fundingRate: `[{symbol, fundingTime, fundingRate}]`; symbol required."""

    path = "/dapi/v1/fundingRate"

    symbol: str = attrs.field(validator=required_symbol)


@attrs.define(eq=False, kw_only=True)
class CoinMFetchOpenInterest(_CoinM, OpenInterestTask):
    """GET /dapi/v1/openInterest: `{symbol, pair, openInterest, contractType, time}`."""

    path = "/dapi/v1/openInterest"


# -- account -------------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class CoinMFetchAccount(_CoinM, AccountTask):
    """GET /dapi/v1/account (signed, weight 5): `assets` and `positions`."""

    path = "/dapi/v1/account"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchBalances(_CoinM, BalancesTask):
    """GET /dapi/v1/balance (signed): `[{accountAlias, asset, balance, availableBalance, ...}]`."""

    path = "/dapi/v1/balance"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchOpenOrders(_CoinM, OpenOrdersTask):
    """GET /dapi/v1/openOrders (signed): by symbol, by pair, or all (weight 1 / 5)."""

    path = "/dapi/v1/openOrders"

    pair: str | None = _pair_field()

    def describe(self) -> str:
        return about("open orders", subject(self.symbol, pair=self.pair))


@attrs.define(eq=False, kw_only=True)
class CoinMFetchPositionRisk(_CoinM, PositionRiskTask):
    """GET /dapi/v1/positionRisk (signed, weight 1): filter by `marginAsset` or `pair`."""

    path = "/dapi/v1/positionRisk"

    marginAsset: str | None = attrs.field(default=None, validator=optional_symbol)
    pair: str | None = _pair_field()

    def describe(self) -> str:
        who = subject(None, pair=self.pair) or (
            None if self.marginAsset is None else f"{self.marginAsset}-margined"
        )
        return about("position risk", who)


# -- orders --------------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class _CoinMOrder(_CoinM, FuturesOrderTask):
    """COIN-M order parameters; `quantity` counts contracts."""

    time_in_force = ("GTC", "IOC", "FOK", "GTX")


@attrs.define(eq=False, kw_only=True)
class CoinMNewOrder(_CoinMOrder):
    """POST /dapi/v1/order (signed): places the order. Never retried blindly."""

    path = "/dapi/v1/order"


@attrs.define(eq=False, kw_only=True)
class CoinMTestOrder(_CoinMOrder):
    """POST /dapi/v1/order/test (signed): checks the order, never reaches the engine."""

    path = "/dapi/v1/order/test"
    action = "test order"


@attrs.define(eq=False, kw_only=True)
class CoinMQueryOrder(_CoinM, QueryOrderTask):
    """GET /dapi/v1/order (signed)."""

    path = "/dapi/v1/order"


@attrs.define(eq=False, kw_only=True)
class CoinMCancelOrder(_CoinM, CancelOrderTask):
    """DELETE /dapi/v1/order (signed)."""

    path = "/dapi/v1/order"


@attrs.define(eq=False, kw_only=True)
class CoinMFetchUserTrades(_CoinM, MyTradesTask):
    """GET /dapi/v1/userTrades (signed, weight 20):
    no range means the last 7 days; a range spans 7 days at most."""

    path = "/dapi/v1/userTrades"
