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

    # filters and exchange_info_entry run over 60 lines: Binance's JSON written out as data.
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


def _spot(base: str, *, price: float, qty_decimals: int, min_qty: str, **data: Any) -> SymbolSpec:
    """A spot ``<base>USDT`` pair: tick 0.01, quantities up to 9000, 5 USDT notional."""
    return SymbolSpec(
        market="spot",
        symbol=f"{base}USDT",
        base=base,
        quote="USDT",
        price_decimals=2,
        qty_decimals=qty_decimals,
        price=price,
        min_qty=Decimal(min_qty),
        max_qty=Decimal("9000"),
        min_notional=Decimal("5"),
        display_price_decimals=8,
        display_qty_decimals=8,
        anchor=base,
        **data,
    )


def _usdm(base: str, *, max_qty: str, min_notional: str, **data: Any) -> SymbolSpec:
    """A USDⓈ-M ``<base>USDT`` perpetual: lot 0.001, USDT margin."""
    return SymbolSpec(
        market="usdm",
        symbol=f"{base}USDT",
        base=base,
        quote="USDT",
        qty_decimals=3,
        min_qty=Decimal("0.001"),
        max_qty=Decimal(max_qty),
        min_notional=Decimal(min_notional),
        display_qty_decimals=3,
        anchor=base,
        pair=f"{base}USDT",
        contract_type="PERPETUAL",
        margin_asset="USDT",
        **data,
    )


def _coinm(base: str, symbol: str, *, price_decimals: int, **data: Any) -> SymbolSpec:
    """A COIN-M ``<base>USD`` contract: whole contracts, margined in the base coin."""
    return SymbolSpec(
        market="coinm",
        symbol=symbol,
        base=base,
        quote="USD",
        price_decimals=price_decimals,
        qty_decimals=0,
        min_qty=Decimal("1"),
        max_qty=Decimal("1000000"),
        min_notional=Decimal("0"),
        display_price_decimals=price_decimals,
        display_qty_decimals=0,
        anchor=base,
        pair=f"{base}USD",
        margin_asset=base,
        **data,
    )


def default_symbols(now_ms: int) -> list[SymbolSpec]:
    """Spot BTCUSDT/ETHUSDT/BNBUSDT/SOLUSDT, USDⓈ-M BTCUSDT/ETHUSDT perpetuals, COIN-M BTCUSD_PERP,
    ETHUSD_PERP and the current BTCUSD quarterly (its name depends on ``now_ms``)."""
    delivery = quarterly_delivery_ms(now_ms)
    quarter = _dt.datetime.fromtimestamp(delivery / 1000, tz=_dt.UTC).strftime("%y%m%d")
    listed_2017 = _ms(2017, 8, 17)
    return [
        _spot("BTC", price=65000.0, qty_decimals=5, min_qty="0.00001", daily_volume=25000.0,
              daily_trades=1_500_000, onboard_ms=listed_2017),
        _spot("ETH", price=3200.0, qty_decimals=4, min_qty="0.0001", daily_volume=350000.0,
              daily_trades=900_000, onboard_ms=listed_2017),
        _spot("BNB", price=600.0, qty_decimals=3, min_qty="0.001", daily_volume=150000.0,
              daily_trades=300_000, onboard_ms=_ms(2017, 11, 6)),
        _spot("SOL", price=150.0, qty_decimals=3, min_qty="0.001", daily_volume=2_500_000.0,
              daily_trades=600_000, onboard_ms=_ms(2020, 8, 11)),
        _usdm("BTC", price=65000.0, price_decimals=1, display_price_decimals=2, max_qty="1000",
              min_notional="100", daily_volume=150000.0, daily_trades=2_500_000,
              onboard_ms=_ms(2019, 9, 25)),
        _usdm("ETH", price=3200.0, price_decimals=2, display_price_decimals=2, max_qty="10000",
              min_notional="20", daily_volume=2_500_000.0, daily_trades=2_000_000,
              onboard_ms=_ms(2019, 11, 27)),
        _coinm("BTC", "BTCUSD_PERP", price=65000.0, price_decimals=1, contract_size=100,
               contract_type="PERPETUAL", daily_volume=5_000_000.0, daily_trades=1_000_000,
               onboard_ms=_ms(2020, 8, 10)),
        _coinm("ETH", "ETHUSD_PERP", price=3200.0, price_decimals=2, contract_size=10,
               contract_type="PERPETUAL", daily_volume=6_000_000.0, daily_trades=800_000,
               onboard_ms=_ms(2020, 8, 14)),
        _coinm("BTC", f"BTCUSD_{quarter}", price=65000.0, price_decimals=1, contract_size=100,
               contract_type="CURRENT_QUARTER", daily_volume=400_000.0, daily_trades=200_000,
               onboard_ms=delivery - 180 * 86_400_000, basis=0.01, delivery_ms=delivery),
    ]


def assets_of(specs: Iterable[SymbolSpec]) -> list[str]:
    """All assets named by ``specs`` (for balances and futures ``assets``)."""
    seen: dict[str, None] = {}
    for s in specs:
        seen.setdefault(s.base)
        seen.setdefault(s.quote)
    return list(seen)
