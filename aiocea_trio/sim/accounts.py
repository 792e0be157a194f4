"""Accounts and their orders and positions (state), and the margin arithmetic on them.

Orders are matched in matching.py, parsed in orders.py and shown in Binance's shapes in
views.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from .symbols import SymbolSpec

__all__ = [
    "FUT_MAKER",
    "FUT_TAKER",
    "SPOT_MAKER",
    "SPOT_TAKER",
    "ZERO",
    "Account",
    "AccountConfig",
    "AccountTrade",
    "Order",
    "Position",
    "margin_of",
    "price_dec",
    "qty_dec",
    "unrealized",
]

ZERO = Decimal(0)
#: Commission rates: spot maker and taker, futures maker and taker.
SPOT_MAKER = Decimal("0.001")
SPOT_TAKER = Decimal("0.001")
FUT_MAKER = Decimal("0.0002")
FUT_TAKER = Decimal("0.0005")


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
    quote_order_qty: Decimal = ZERO
    status: str = "NEW"
    executed: int = 0
    cum_quote: Decimal = ZERO
    avg_price: Decimal = ZERO
    update_ms: int = 0
    checked_s: int = 0
    reduce_only: bool = False
    locked: Decimal = ZERO
    fills: list[dict[str, Any]] = attrs.field(factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@attrs.frozen(slots=True)
class AccountTrade:
    """One fill of one of the account's orders (``myTrades`` / ``userTrades`` rows).

    ``price`` is in ticks, ``qty`` in lot steps (contracts on COIN-M); ``quote`` is the
    quote amount (spot, USDⓈ-M) or the base amount (COIN-M); ``realized`` the realized PnL
    in the margin asset (futures)."""

    id: int
    order_id: int
    side: str
    price: int
    qty: int
    quote: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    maker: bool
    realized: Decimal = ZERO


@attrs.define(eq=False)
class Position:
    amt: Decimal = ZERO  # base qty (usdm) or contracts (coinm); negative = short
    entry: Decimal = ZERO
    update_ms: int = 0


@attrs.define(eq=False)
class Account:
    """Live state of one account."""

    config: AccountConfig
    spot_free: dict[str, Decimal]
    spot_locked: dict[str, Decimal]
    wallets: dict[str, dict[str, Decimal]]  # "usdm"/"coinm" -> asset -> wallet balance
    positions: dict[tuple[str, str], Position] = attrs.field(factory=dict)
    orders: dict[tuple[str, str, int], Order] = attrs.field(factory=dict)
    by_client: dict[tuple[str, str, str], Order] = attrs.field(factory=dict)
    open: dict[tuple[str, str, int], Order] = attrs.field(factory=dict)
    closed: deque[Order] = attrs.field(factory=deque)
    update_ms: int = 0
    #: Every fill, per (market, symbol), in id order; ids count from 1 per symbol.
    trades: dict[tuple[str, str], list[AccountTrade]] = attrs.field(factory=dict)

    @classmethod
    def from_config(cls, config: AccountConfig) -> Account:
        return cls(
            config=config,
            spot_free=_decimals(config.spot),
            spot_locked={},
            wallets={"usdm": _decimals(config.usdm), "coinm": _decimals(config.coinm)},
        )


def price_dec(spec: SymbolSpec, ticks: int) -> Decimal:
    """A price in ticks as a decimal."""
    return Decimal(ticks).scaleb(-spec.price_decimals)


def qty_dec(spec: SymbolSpec, units: int) -> Decimal:
    """A quantity in lot steps as a decimal."""
    return Decimal(units).scaleb(-spec.qty_decimals)


def margin_of(spec: SymbolSpec, qty: Decimal, px: Decimal, leverage: int) -> Decimal:
    """Initial margin of ``qty`` at ``px`` (in the margin asset)."""
    if spec.market == "coinm":
        return qty * spec.contract_size / px / leverage
    return qty * px / leverage


def unrealized(spec: SymbolSpec, pos: Position, mark: Decimal) -> Decimal:
    """A position's unrealized PnL at ``mark`` (in the margin asset)."""
    if pos.amt == 0:
        return ZERO
    if spec.market == "coinm":
        return pos.amt * spec.contract_size * (1 / pos.entry - 1 / mark)
    return (mark - pos.entry) * pos.amt
