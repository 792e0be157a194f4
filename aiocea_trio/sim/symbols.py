"""The simulator's instruments: their precisions, filters and price levels, and exchangeInfo.

Prices are integers counted in ticks and quantities integers counted in lot steps, so candles
aggregate exactly and every string the simulator prints is a valid price or quantity.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

__all__ = [
    "PERPETUAL_DELIVERY_MS",
    "SymbolSpec",
    "default_symbols",
    "fixed",
    "quarterly_delivery_ms",
]

#: deliveryDate Binance uses for perpetual contracts (2100-12-25 08:00 UTC).
PERPETUAL_DELIVERY_MS = 4133404800000


def fixed(units: int, decimals: int) -> str:
    """Format an integer count of ``10**-decimals`` units as a fixed-point decimal string."""
    if decimals <= 0:
        return str(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


@attrs.frozen
class SymbolSpec:
    """One tradable instrument.

    Attributes:
        market: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        price_decimals: the tick is ``10**-price_decimals``.
        qty_decimals: the lot step is ``10**-qty_decimals`` (0 for COIN-M contracts).
        price: the long-run price level (quote per base) the deterministic path wanders around.
        daily_volume: typical daily volume in base units (contracts for COIN-M).
        daily_trades: typical trades per day.
        anchor: symbols sharing an anchor follow the same daily path (spot and perpetual BTC).
        basis: relative premium over the anchor path (quarterly contracts).
        display_price_decimals / display_qty_decimals: decimals printed (spot prints 8).
    """

    market: str
    symbol: str
    base: str
    quote: str
    price_decimals: int
    qty_decimals: int
    price: float
    daily_volume: float
    daily_trades: int
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    display_price_decimals: int
    display_qty_decimals: int
    anchor: str
    onboard_ms: int
    basis: float = 0.0
    pair: str = ""
    contract_type: str = ""
    contract_size: int = 0
    margin_asset: str = ""
    delivery_ms: int = PERPETUAL_DELIVERY_MS

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_decimals)

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.qty_decimals)

    def price_str(self, ticks: int) -> str:
        return fixed(
            ticks * 10 ** (self.display_price_decimals - self.price_decimals),
            self.display_price_decimals,
        )

    def qty_str(self, units: int) -> str:
        return fixed(
            units * 10 ** (self.display_qty_decimals - self.qty_decimals), self.display_qty_decimals
        )

    def dec_str(self, value: Decimal, decimals: int) -> str:
        return f"{value:.{decimals}f}"

    def filters(self) -> list[dict[str, Any]]:
        """exchangeInfo filters, in the market's own shape."""
        pd, qd = self.display_price_decimals, self.display_qty_decimals
        max_price = Decimal(self.price * 40).quantize(Decimal(1))
        price_filter = {
            "filterType": "PRICE_FILTER",
            "minPrice": self.dec_str(self.tick, pd),
            "maxPrice": self.dec_str(max_price, pd),
            "tickSize": self.dec_str(self.tick, pd),
        }
        lot = {
            "filterType": "LOT_SIZE",
            "minQty": self.dec_str(self.min_qty, qd),
            "maxQty": self.dec_str(self.max_qty, qd),
            "stepSize": self.dec_str(self.step, qd),
        }
        market_lot = {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": self.dec_str(self.min_qty, qd),
            "maxQty": self.dec_str(self.max_qty / 10, qd),
            "stepSize": self.dec_str(self.step, qd),
        }
        if self.market == "spot":
            return [
                price_filter,
                lot,
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                market_lot,
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "5",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": self.dec_str(self.min_notional, 8),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ]
        out: list[dict[str, Any]] = [
            price_filter,
            lot,
            market_lot,
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        ]
        if self.market == "usdm":
            out.append({"filterType": "MIN_NOTIONAL", "notional": str(self.min_notional)})
        out.append(
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            }
        )
        return out

    def exchange_info_entry(self) -> dict[str, Any]:
        """This symbol as exchangeInfo lists it."""
        if self.market == "spot":
            return {
                "symbol": self.symbol,
                "status": "TRADING",
                "baseAsset": self.base,
                "baseAssetPrecision": 8,
                "quoteAsset": self.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                "icebergAllowed": False,
                "ocoAllowed": False,
                "otoAllowed": False,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": False,
                "cancelReplaceAllowed": False,
                "amendAllowed": False,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": self.filters(),
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": [
                    "NONE",
                    "EXPIRE_TAKER",
                    "EXPIRE_MAKER",
                    "EXPIRE_BOTH",
                ],
            }
        entry: dict[str, Any] = {
            "symbol": self.symbol,
            "pair": self.pair,
            "contractType": self.contract_type,
            "deliveryDate": self.delivery_ms,
            "onboardDate": self.onboard_ms,
        }
        if self.market == "usdm":
            entry["status"] = "TRADING"
        else:
            entry["contractStatus"] = "TRADING"
            entry["contractSize"] = self.contract_size
        entry.update(
            {
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": self.base,
                "quoteAsset": self.quote,
                "marginAsset": self.margin_asset,
                "pricePrecision": self.display_price_decimals,
                "quantityPrecision": self.display_qty_decimals,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": self.filters(),
                "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
        )
        if self.market == "coinm":
            entry["equalQtyPrecision"] = 4
        return entry


def _ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0)) * 1000


def quarterly_delivery_ms(now_ms: int) -> int:
    """The next quarterly delivery (last Friday of Mar/Jun/Sep/Dec, 08:00 UTC) after ``now_ms``."""
    now = _dt.datetime.fromtimestamp(now_ms / 1000, tz=_dt.UTC)
    year, month = now.year, now.month
    while True:
        if month % 3 == 0:
            last_day = calendar.monthrange(year, month)[1]
            day = last_day - (_dt.date(year, month, last_day).weekday() - 4) % 7
            delivery = _ms(year, month, day, 8)
            if delivery > now_ms + 86_400_000:
                return delivery
        month += 1
        if month > 12:
            year, month = year + 1, 1


def default_symbols(now_ms: int) -> list[SymbolSpec]:
    """Spot BTCUSDT/ETHUSDT/BNBUSDT/SOLUSDT, USDⓈ-M BTCUSDT/ETHUSDT perpetuals, COIN-M BTCUSD_PERP,
    ETHUSD_PERP and the current BTCUSD quarterly (its name depends on ``now_ms``)."""
    delivery = quarterly_delivery_ms(now_ms)
    quarter = _dt.datetime.fromtimestamp(delivery / 1000, tz=_dt.UTC).strftime("%y%m%d")
    d = Decimal
    return [
        SymbolSpec(
            "spot",
            "BTCUSDT",
            "BTC",
            "USDT",
            2,
            5,
            65000.0,
            25000.0,
            1_500_000,
            d("0.00001"),
            d("9000"),
            d("5"),
            8,
            8,
            "BTC",
            _ms(2017, 8, 17),
        ),
        SymbolSpec(
            "spot",
            "ETHUSDT",
            "ETH",
            "USDT",
            2,
            4,
            3200.0,
            350000.0,
            900_000,
            d("0.0001"),
            d("9000"),
            d("5"),
            8,
            8,
            "ETH",
            _ms(2017, 8, 17),
        ),
        SymbolSpec(
            "spot",
            "BNBUSDT",
            "BNB",
            "USDT",
            2,
            3,
            600.0,
            150000.0,
            300_000,
            d("0.001"),
            d("9000"),
            d("5"),
            8,
            8,
            "BNB",
            _ms(2017, 11, 6),
        ),
        SymbolSpec(
            "spot",
            "SOLUSDT",
            "SOL",
            "USDT",
            2,
            3,
            150.0,
            2_500_000.0,
            600_000,
            d("0.001"),
            d("9000"),
            d("5"),
            8,
            8,
            "SOL",
            _ms(2020, 8, 11),
        ),
        SymbolSpec(
            "usdm",
            "BTCUSDT",
            "BTC",
            "USDT",
            1,
            3,
            65000.0,
            150000.0,
            2_500_000,
            d("0.001"),
            d("1000"),
            d("100"),
            2,
            3,
            "BTC",
            _ms(2019, 9, 25),
            pair="BTCUSDT",
            contract_type="PERPETUAL",
            margin_asset="USDT",
        ),
        SymbolSpec(
            "usdm",
            "ETHUSDT",
            "ETH",
            "USDT",
            2,
            3,
            3200.0,
            2_500_000.0,
            2_000_000,
            d("0.001"),
            d("10000"),
            d("20"),
            2,
            3,
            "ETH",
            _ms(2019, 11, 27),
            pair="ETHUSDT",
            contract_type="PERPETUAL",
            margin_asset="USDT",
        ),
        SymbolSpec(
            "coinm",
            "BTCUSD_PERP",
            "BTC",
            "USD",
            1,
            0,
            65000.0,
            5_000_000.0,
            1_000_000,
            d("1"),
            d("1000000"),
            d("0"),
            1,
            0,
            "BTC",
            _ms(2020, 8, 10),
            pair="BTCUSD",
            contract_type="PERPETUAL",
            contract_size=100,
            margin_asset="BTC",
        ),
        SymbolSpec(
            "coinm",
            "ETHUSD_PERP",
            "ETH",
            "USD",
            2,
            0,
            3200.0,
            6_000_000.0,
            800_000,
            d("1"),
            d("1000000"),
            d("0"),
            2,
            0,
            "ETH",
            _ms(2020, 8, 14),
            pair="ETHUSD",
            contract_type="PERPETUAL",
            contract_size=10,
            margin_asset="ETH",
        ),
        SymbolSpec(
            "coinm",
            f"BTCUSD_{quarter}",
            "BTC",
            "USD",
            1,
            0,
            65000.0,
            400_000.0,
            200_000,
            d("1"),
            d("1000000"),
            d("0"),
            1,
            0,
            "BTC",
            delivery - 180 * 86_400_000,
            basis=0.01,
            pair="BTCUSD",
            contract_type="CURRENT_QUARTER",
            contract_size=100,
            margin_asset="BTC",
            delivery_ms=delivery,
        ),
    ]


def assets_of(specs: Iterable[SymbolSpec]) -> list[str]:
    """All assets named by ``specs`` (for balances and futures ``assets``)."""
    seen: dict[str, None] = {}
    for s in specs:
        seen.setdefault(s.base)
        seen.setdefault(s.quote)
    return list(seen)
