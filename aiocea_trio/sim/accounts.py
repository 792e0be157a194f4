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
    "MARGIN_ASSETS",
    "SPOT_MAKER",
    "SPOT_TAKER",
    "ZERO",
    "Account",
    "AccountConfig",
    "AccountTrade",
    "Bracket",
    "Income",
    "Order",
    "Position",
    "Risk",
    "bracket_for",
    "brackets_of",
    "fmt",
    "liquidation_price",
    "margin_of",
    "price_dec",
    "qty_dec",
    "risk",
    "unrealized",
]

ZERO = Decimal(0)
#: Commission rates: spot maker and taker, futures maker and taker.
SPOT_MAKER = Decimal("0.001")
SPOT_TAKER = Decimal("0.001")
FUT_MAKER = Decimal("0.0002")
FUT_TAKER = Decimal("0.0005")


#: USDⓈ-M margin assets Binance lists (exchangeInfo ``assets``, account, balance), zero
#: balances included; COIN-M lists the coin of each listed contract.
MARGIN_ASSETS = ("USDT", "BTC", "BNB", "ETH", "USDC", "FDUSD")


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


@attrs.frozen(slots=True)
class Income:
    """One ``/fapi/v1/income`` row: REALIZED_PNL, COMMISSION or FUNDING_FEE."""

    tran_id: int
    symbol: str
    kind: str
    amount: Decimal
    asset: str
    time_ms: int
    trade_id: int = 0


@attrs.define(eq=False)
class Position:
    amt: Decimal = ZERO  # base qty (usdm) or contracts (coinm); negative = short
    entry: Decimal = ZERO
    update_ms: int = 0
    #: The last 8-hour funding period (``second // 28800``) settled for this position.
    funded_k: int = 0


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
    #: Per (market, symbol): leverage and margin type ("cross"/"isolated") once changed.
    leverage: dict[tuple[str, str], int] = attrs.field(factory=dict)
    margin_type: dict[tuple[str, str], str] = attrs.field(factory=dict)
    #: Income history per market ("usdm"/"coinm"), in time order.
    income: dict[str, list[Income]] = attrs.field(factory=lambda: {"usdm": [], "coinm": []})

    def lev(self, market: str, symbol: str) -> int:
        return self.leverage.get((market, symbol), self.config.leverage)

    def isolated(self, market: str, symbol: str) -> bool:
        return self.margin_type.get((market, symbol)) == "isolated"

    @classmethod
    def from_config(cls, config: AccountConfig) -> Account:
        return cls(
            config=config,
            spot_free=_decimals(config.spot),
            spot_locked={},
            wallets={
                "usdm": {a: ZERO for a in MARGIN_ASSETS} | _decimals(config.usdm),
                "coinm": _decimals(config.coinm),
            },
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


def fmt(value: Decimal, places: int = 8) -> str:
    """``value`` with ``places`` decimals, never a negative zero ("-0.00000000")."""
    out = f"{value:.{places}f}"
    if out[0] == "-" and not out.strip("-0."):
        return out[1:]
    return out


@attrs.frozen(slots=True)
class Bracket:
    """One leverage bracket: up to ``cap`` (notional USDT on USDⓈ-M, coin qty on COIN-M)."""

    number: int
    leverage: int
    floor: Decimal
    cap: Decimal
    mmr: Decimal
    cum: Decimal


def _table(rows: tuple[tuple[int, int, int, str], ...]) -> tuple[Bracket, ...]:
    """Brackets from (leverage, floor, cap, mmr); ``cum`` as Binance derives it:
    cum_n = cum_(n-1) + floor_n * (mmr_n - mmr_(n-1))."""
    out: list[Bracket] = []
    cum, prev = ZERO, ZERO
    for i, (lev, floor, cap, mmr) in enumerate(rows):
        m = Decimal(mmr)
        cum += floor * (m - prev) if out else ZERO
        out.append(Bracket(i + 1, lev, Decimal(floor), Decimal(cap), m, cum))
        prev = m
    return tuple(out)


#: Binance's BTCUSDT-like brackets (notional in USDT) and BTCUSD-like COIN-M brackets
#: (quantity in coin); the simulator uses them for every symbol of the market.
_USDM_BRACKETS = _table(
    (
        (125, 0, 50_000, "0.004"),
        (100, 50_000, 600_000, "0.005"),
        (50, 600_000, 3_000_000, "0.01"),
        (20, 3_000_000, 12_000_000, "0.025"),
        (10, 12_000_000, 70_000_000, "0.05"),
        (5, 70_000_000, 100_000_000, "0.1"),
        (4, 100_000_000, 230_000_000, "0.125"),
        (3, 230_000_000, 480_000_000, "0.15"),
        (2, 480_000_000, 600_000_000, "0.25"),
        (1, 600_000_000, 800_000_000, "0.5"),
    )
)
_COINM_BRACKETS = _table(
    (
        (125, 0, 5, "0.004"),
        (100, 5, 10, "0.005"),
        (50, 10, 20, "0.01"),
        (20, 20, 50, "0.025"),
        (10, 50, 100, "0.05"),
        (5, 100, 200, "0.1"),
        (4, 200, 400, "0.125"),
        (3, 400, 1000, "0.15"),
        (2, 1000, 1500, "0.25"),
        (1, 1500, 9_223_372_036_854_775_807, "0.5"),
    )
)


def brackets_of(spec: SymbolSpec) -> tuple[Bracket, ...]:
    return _COINM_BRACKETS if spec.market == "coinm" else _USDM_BRACKETS


def bracket_for(spec: SymbolSpec, size: Decimal) -> Bracket:
    """The bracket of a position of ``size`` (notional USDT, or coin quantity on COIN-M)."""
    table = brackets_of(spec)
    for b in table:
        if size < b.cap:
            return b
    return table[-1]


@attrs.frozen(slots=True)
class Risk:
    """A position's numbers at the mark (margin asset): notional (signed; USDT or coin),
    unrealized PnL, position initial margin, maintenance margin, its bracket, isolated
    wallet (0 when cross)."""

    notional: Decimal
    upnl: Decimal
    im: Decimal
    mm: Decimal
    bracket: Bracket
    isolated_wallet: Decimal


def risk(spec: SymbolSpec, pos: Position, mark: Decimal, lev: int, isolated: bool) -> Risk:
    """Binance's position arithmetic. USDⓈ-M: notional = amt * mark, IM = |notional| / lev,
    MM = |notional| * mmr - cum. COIN-M: notional = amt * contractSize / mark (coin),
    MM = |notional| * mmr - cum, the bracket picked by the coin quantity. Isolated wallet =
    the initial margin at the entry price."""
    if pos.amt == 0:
        b = brackets_of(spec)[0]
        return Risk(ZERO, ZERO, ZERO, ZERO, b, ZERO)
    coinm = spec.market == "coinm"
    notional = pos.amt * spec.contract_size / mark if coinm else pos.amt * mark
    size = abs(notional)
    b = bracket_for(spec, size)
    mm = max(size * b.mmr - b.cum, ZERO)
    iso = margin_of(spec, abs(pos.amt), pos.entry, lev) if isolated else ZERO
    return Risk(notional, unrealized(spec, pos, mark), size / lev, mm, b, iso)


def liquidation_price(
    spec: SymbolSpec,
    pos: Position,
    r: Risk,
    wallet: Decimal,
    other_mm: Decimal,
    other_upnl: Decimal,
) -> Decimal:
    """Binance's one-way-mode liquidation price (0 when there is none).

    USDⓈ-M: LP = (WB - TMM1 + UPNL1 + cumB - side*|pos|*EP) / (|pos|*MMR - side*|pos|).
    COIN-M: LP = (|pos|*CS*MMR + side*|pos|*CS) / (WB - TMM1 + UPNL1 + cumB + side*|pos|*CS/EP).
    WB is the cross wallet balance (cross: TMM1/UPNL1 the other cross positions' maintenance
    margin and unrealized PnL in the same asset) or the isolated wallet (TMM1 = UPNL1 = 0).
    """
    if pos.amt == 0:
        return ZERO
    side = 1 if pos.amt > 0 else -1
    size = abs(pos.amt)
    b = r.bracket
    wb = wallet - other_mm + other_upnl + b.cum
    if spec.market == "coinm":
        cs = Decimal(spec.contract_size)
        den = wb + side * size * cs / pos.entry
        lp = (size * cs * b.mmr + side * size * cs) / den if den > 0 else ZERO
    else:
        den = size * b.mmr - side * size
        lp = (wb - side * size * pos.entry) / den
    return max(lp, ZERO)
