"""`BinanceTask`, and the endpoint kinds the three markets share.

A catalog task is a declaration: its market, HTTP method, path, whether it is signed, and
its parameters as attrs fields named exactly as Binance names them (so `params()` is just
"every field"). One kind class (klines, order book, ...) holds the fields, checks and
wording of an endpoint; each market subclasses it and only says where the endpoint lives
and what its limits are. That keeps the three families identical where Binance is, and
different exactly where Binance is.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .._params import param_str
from ..endpoints import ENDPOINTS, Endpoint, find
from ..errors import BinanceResponseError
from ..markets import Market
from ..pipeline import _checks
from ..pipeline.task import Task
from ._validate import (
    FUTURES_INTERVALS,
    LimitRule,
    Requirement,
    check_client_order_id,
    check_decimal,
    check_enum,
    check_interval,
    check_limit,
    check_one_of_ids,
    check_order_requirements,
    check_time,
    check_time_range,
    decimal_text,
    new_client_order_id,
    optional_int,
    optional_symbol,
    required_symbol,
)

if TYPE_CHECKING:
    from ..client import BinanceClient

__all__ = ["BinanceTask", "local_field"]

_NOT_PARAMS = frozenset({"client", "timeout"})
_LOCAL = "aiocea_local"


SIDES = ("BUY", "SELL")


def local_field(default: Any, **kwargs: Any) -> Any:
    """An attrs field that tunes the task itself and is not sent to Binance."""
    return attrs.field(default=default, metadata={_LOCAL: True}, **kwargs)


@attrs.define(eq=False, kw_only=True)
class BinanceTask(Task):
    """A task that is one Binance REST request.

    Subclasses set the class attributes and declare Binance's parameters as attrs fields
    (keyword-only, Binance's camelCase names); `run` sends every field that is not None.
    Override `params` to send something else, `parse` to reshape the answer, and
    `describe` for the words `str()` prints after the market's label.
    """

    market: ClassVar[Market]
    """Which market; also the label `str()` starts with ("spot", "USDⓈ-M", "COIN-M")."""
    method: ClassVar[str] = "GET"
    path: ClassVar[str]
    endpoint: ClassVar[Endpoint]
    """The registry's entry for (market, method, path), set when a class names its path:
    its weight, whether it is signed and whether it is an order all come from there."""
    signed: ClassVar[bool] = False
    """Needs the API key and a signature (account and order endpoints); from `endpoint`."""
    limit_rule: ClassVar[LimitRule]
    """What `limit` may be, for tasks that have one; from `endpoint`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        path = getattr(cls, "path", None)
        market = getattr(cls, "market", None)
        if path is None or market is None:
            return  # a family base: its concrete classes name the endpoint
        endpoint = find(market, cls.method, path)
        if endpoint not in ENDPOINTS:
            raise TypeError(
                f"{cls.__name__}: {market} {cls.method} {path} is not in the endpoint "
                "registry (aiocea_trio.endpoints): add it there, with its weight"
            )
        cls.endpoint = endpoint
        cls.signed = endpoint.signed
        if endpoint.limit is not None:
            cls.limit_rule = endpoint.limit
    answer: ClassVar[type | tuple[type, ...] | None] = None
    """The JSON type Binance answers with (``list``, ``dict``), checked before `parse`."""

    def params(self) -> dict[str, object]:
        """Binance's parameters: every field but `client`, `timeout` and local fields.

        None values are dropped by the client, so optional parameters are simply None.
        """
        return {
            a.name: getattr(self, a.name)
            for a in attrs.fields(self.__class__)
            if a.init and a.name not in _NOT_PARAMS and not a.metadata.get(_LOCAL)
        }

    @property
    def weight(self) -> int:
        """The request weight Binance charges for this request (what a limiter reserves).

        Read it to choose parameters before sending: an all-symbols ticker or a deep order
        book costs many times a single-symbol one.
        """
        sent = {k: param_str(v) for k, v in self.params().items() if v is not None}
        return self.endpoint.request_weight(sent)

    def parse(self, raw: Any) -> Any:
        """Turn Binance's decoded JSON into the task's result (as is, by default)."""
        return raw

    def describe(self) -> str:
        """What the task fetches or does, in words, without the market label."""
        return self.__class__.__name__

    async def run(self, client: BinanceClient) -> Any:
        raw = await client.call(self.endpoint, self.params())
        try:
            if self.answer is not None and not isinstance(raw, self.answer):
                raise TypeError(f"a JSON {type(raw).__name__}")
            return self.parse(raw)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            # The answer parsed as JSON but is not what this endpoint returns ({} or
            # null where a list is due): a server error, not a bug in the caller.
            raise BinanceResponseError.wrong_shape(
                f"{self.describe()}'s answer ({type(exc).__name__}: {exc})",
                raw,
                market=self.market.value,
                method=self.method,
                path=self.path,
            ) from None

    def __str__(self) -> str:
        return f"{self.market.label} {self.describe()}"


# -- wording ---------------------------------------------------------------------------


def window(start: int | None, end: int | None) -> str | None:
    """A time range as words: "from A to B", "from A", "up to B"."""
    if start is not None and end is not None:
        return f"from {start} to {end}"
    if start is not None:
        return f"from {start}"
    if end is not None:
        return f"up to {end}"
    return None


def phrase(head: str, *parts: str | None) -> str:
    """The head, then every given part, comma-separated."""
    return ", ".join([head, *(p for p in parts if p)])


def limit_words(limit: int | None) -> str | None:
    return None if limit is None else f"limit {limit}"


def subject(
    symbol: str | None, *, symbols: Sequence[str] | None = None, pair: str | None = None
) -> str | None:
    """Which instruments a request covers, or None for "all symbols"."""
    if symbol is not None:
        return symbol
    if symbols:
        return ",".join(symbols)
    if pair is not None:
        return f"pair {pair}"
    return None


def about(what: str, who: str | None) -> str:
    """`"BTCUSDT ticker price"`, or `"ticker price, all symbols"` when nobody is named."""
    return f"{who} {what}" if who else f"{what}, all symbols"


def flag_converter(value: object) -> object:
    """Binance's words for a flag, ``"true"``/``"false"`` (any case), become a bool.

    Anything else passes through to `_checks.flag`, which refuses what is not a bool: a
    flag given as ``"no"`` or ``1`` would otherwise be sent, or read, as true.
    """
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _flag_field() -> Any:
    return attrs.field(
        default=None, converter=flag_converter, validator=_checks.flag(optional=True)
    )


def symbols_converter(value: object) -> object:
    """Freeze a list of symbols into a tuple, so a queued task cannot change under it."""
    # Anything else passes through to be judged by the validator.
    return tuple(value) if isinstance(value, list) else value


# -- public market data ------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class PingTask(BinanceTask):
    """Test connectivity; the answer is `{}`."""

    answer: ClassVar[type | tuple[type, ...] | None] = dict

    def describe(self) -> str:
        return "ping"


@attrs.define(eq=False, kw_only=True)
class ServerTimeTask(BinanceTask):
    """The exchange's clock: `{"serverTime": ms}`."""

    answer: ClassVar[type | tuple[type, ...] | None] = dict

    def describe(self) -> str:
        return "server time"


@attrs.define(eq=False, kw_only=True)
class ExchangeInfoTask(BinanceTask):
    """Trading rules, rate limits and symbols."""

    answer: ClassVar[type | tuple[type, ...] | None] = dict

    def describe(self) -> str:
        return "exchange info"


@attrs.define(eq=False, kw_only=True)
class OrderBookTask(BinanceTask):
    """Bids and asks; `limit` is the depth (and sets the weight)."""

    answer: ClassVar[type | tuple[type, ...] | None] = dict


    symbol: str = attrs.field(validator=required_symbol)
    limit: int | None = attrs.field(default=None, validator=check_limit)

    def describe(self) -> str:
        return phrase(f"{self.symbol} order book", limit_words(self.limit))


@attrs.define(eq=False, kw_only=True)
class TradesTask(BinanceTask):
    """The latest trades, newest last."""

    answer: ClassVar[type | tuple[type, ...] | None] = list


    symbol: str = attrs.field(validator=required_symbol)
    limit: int | None = attrs.field(default=None, validator=check_limit)

    def describe(self) -> str:
        return phrase(f"{self.symbol} recent trades", limit_words(self.limit))


@attrs.define(eq=False, kw_only=True)
class AggTradesTask(BinanceTask):
    """Compressed trades (`a`, `p`, `q`, `f`, `l`, `T`, `m`), from an id or a time range."""

    answer: ClassVar[type | tuple[type, ...] | None] = list


    symbol: str = attrs.field(validator=required_symbol)
    fromId: int | None = attrs.field(default=None, validator=optional_int)
    startTime: int | None = attrs.field(default=None, validator=check_time)
    endTime: int | None = attrs.field(default=None, validator=check_time)
    limit: int | None = attrs.field(default=None, validator=check_limit)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        check_time_range(self, self.startTime, self.endTime)

    def describe(self) -> str:
        start = None if self.fromId is None else f"from id {self.fromId}"
        return phrase(
            f"{self.symbol} aggregate trades",
            start,
            window(self.startTime, self.endTime),
            limit_words(self.limit),
        )


@attrs.define(eq=False, kw_only=True)
class KlinesTask(BinanceTask):
    """Candles: rows of 12 fields, oldest first."""

    answer: ClassVar[type | tuple[type, ...] | None] = list

    intervals: ClassVar[tuple[str, ...]] = FUTURES_INTERVALS

    symbol: str = attrs.field(validator=required_symbol)
    interval: str = attrs.field(validator=check_interval)
    startTime: int | None = attrs.field(default=None, validator=check_time)
    endTime: int | None = attrs.field(default=None, validator=check_time)
    limit: int | None = attrs.field(default=None, validator=check_limit)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        check_time_range(self, self.startTime, self.endTime)

    def describe(self) -> str:
        return phrase(
            f"{self.symbol} {self.interval} klines",
            window(self.startTime, self.endTime),
            limit_words(self.limit),
        )


@attrs.define(eq=False, kw_only=True)
class TickerPriceTask(BinanceTask):
    """Last price of one symbol, or of all when no symbol is given."""

    symbol: str | None = attrs.field(default=None, validator=optional_symbol)

    def describe(self) -> str:
        return about("ticker price", subject(self.symbol))


@attrs.define(eq=False, kw_only=True)
class Ticker24hTask(BinanceTask):
    """24-hour rolling statistics."""

    symbol: str | None = attrs.field(default=None, validator=optional_symbol)

    def describe(self) -> str:
        return about("24h ticker", subject(self.symbol))


@attrs.define(eq=False, kw_only=True)
class BookTickerTask(BinanceTask):
    """Best bid and ask."""

    symbol: str | None = attrs.field(default=None, validator=optional_symbol)

    def describe(self) -> str:
        return about("book ticker", subject(self.symbol))


@attrs.define(eq=False, kw_only=True)
class PremiumIndexTask(BinanceTask):
    """Mark price, index price and funding rate of perpetuals."""

    symbol: str | None = attrs.field(default=None, validator=optional_symbol)

    def describe(self) -> str:
        return about("premium index", subject(self.symbol))


@attrs.define(eq=False, kw_only=True)
class FundingRateTask(BinanceTask):
    """Funding-rate history, oldest first."""

    answer: ClassVar[type | tuple[type, ...] | None] = list


    symbol: str | None = attrs.field(default=None, validator=optional_symbol)
    startTime: int | None = attrs.field(default=None, validator=check_time)
    endTime: int | None = attrs.field(default=None, validator=check_time)
    limit: int | None = attrs.field(default=None, validator=check_limit)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        check_time_range(self, self.startTime, self.endTime)

    def describe(self) -> str:
        return phrase(
            about("funding-rate history", subject(self.symbol)),
            window(self.startTime, self.endTime),
            limit_words(self.limit),
        )


@attrs.define(eq=False, kw_only=True)
class OpenInterestTask(BinanceTask):
    """Open interest of one contract."""

    symbol: str = attrs.field(validator=required_symbol)

    def describe(self) -> str:
        return f"{self.symbol} open interest"


# -- signed: account ----------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class AccountTask(BinanceTask):
    """The account: balances (and, on futures, positions and margin totals)."""

    answer: ClassVar[type | tuple[type, ...] | None] = dict


    def describe(self) -> str:
        return "account"


def _is_zero(text: object) -> bool:
    try:
        return Decimal(str(text)) == 0
    except InvalidOperation:
        return False


@attrs.define(eq=False, kw_only=True)
class BalancesTask(BinanceTask):
    """The account's balance list, one dict per asset.

    `omitZeroBalances=True` leaves out the assets whose `zero_fields` are all zero; the
    filtering is done here too, so it holds whatever the server supports.
    """

    zero_fields: ClassVar[tuple[str, ...]] = ("balance",)

    omitZeroBalances: bool = local_field(False, validator=attrs.validators.instance_of(bool))

    def parse(self, raw: Any) -> Any:
        rows = self.rows(raw)
        if not self.omitZeroBalances:
            return rows
        return [row for row in rows if not all(_is_zero(row.get(k, 0)) for k in self.zero_fields)]

    def rows(self, raw: Any) -> list[dict[str, Any]]:
        """The balance rows inside Binance's answer."""
        return list(raw)

    def describe(self) -> str:
        return "balances, non-zero only" if self.omitZeroBalances else "balances"


@attrs.define(eq=False, kw_only=True)
class OpenOrdersTask(BinanceTask):
    """Open orders of one symbol, or of all (much heavier: see the docs' weights)."""

    answer: ClassVar[type | tuple[type, ...] | None] = list


    symbol: str | None = attrs.field(default=None, validator=optional_symbol)

    def describe(self) -> str:
        return about("open orders", subject(self.symbol))


@attrs.define(eq=False, kw_only=True)
class MyTradesTask(BinanceTask):
    """The account's own fills of one symbol (spot ``myTrades``, futures ``userTrades``).

    ``fromId`` gives the trades from that id on and cannot be combined with a time range
    (Binance: -1128); a range may span 24 hours (spot) or 7 days (futures).
    """

    answer: ClassVar[type | tuple[type, ...] | None] = list

    symbol: str = attrs.field(validator=required_symbol)
    orderId: int | None = attrs.field(default=None, validator=optional_int)
    startTime: int | None = attrs.field(default=None, validator=check_time)
    endTime: int | None = attrs.field(default=None, validator=check_time)
    fromId: int | None = attrs.field(default=None, validator=optional_int)
    limit: int | None = attrs.field(default=None, validator=check_limit)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        check_time_range(self, self.startTime, self.endTime)
        if self.fromId is not None and (self.startTime is not None or self.endTime is not None):
            raise ValueError(
                f"{type(self).__name__}: fromId cannot be combined with startTime or endTime "
                "(Binance answers -1128)"
            )

    def describe(self) -> str:
        return phrase(
            f"{self.symbol} account trades",
            None if self.orderId is None else f"order {self.orderId}",
            None if self.fromId is None else f"from id {self.fromId}",
            window(self.startTime, self.endTime),
            limit_words(self.limit),
        )


@attrs.define(eq=False, kw_only=True)
class PositionRiskTask(BinanceTask):
    """Positions with their entry, mark and liquidation prices."""

    answer: ClassVar[type | tuple[type, ...] | None] = list


    def describe(self) -> str:
        return "position risk, all symbols"


# -- signed: orders -------------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class OrderTask(BinanceTask):
    """Place (or test) one order; the fields every market shares.

    One task object is one order: `newClientOrderId` is fixed when the task is built
    (generated when not given), so executing the task again sends the same id, and the
    exchange refuses a duplicate instead of placing a second order.
    """

    answer: ClassVar[type | tuple[type, ...] | None] = dict

    method: ClassVar[str] = "POST"
    order_types: ClassVar[tuple[str, ...]]
    time_in_force: ClassVar[tuple[str, ...]]
    resp_types: ClassVar[tuple[str, ...]]
    requirements: ClassVar[dict[str, tuple[Requirement, ...]]]
    """Order type -> parameters it needs (a tuple: at least one of them)."""
    action: ClassVar[str] = "new order"

    symbol: str = attrs.field(validator=required_symbol)
    side: str = attrs.field(validator=check_enum(*SIDES))
    type: str = attrs.field()
    timeInForce: str | None = attrs.field(default=None)
    quantity: str | None = attrs.field(
        default=None, converter=decimal_text, validator=check_decimal
    )
    price: str | None = attrs.field(default=None, converter=decimal_text, validator=check_decimal)
    stopPrice: str | None = attrs.field(
        default=None, converter=decimal_text, validator=check_decimal
    )
    newClientOrderId: str = attrs.field(
        factory=new_client_order_id, validator=check_client_order_id
    )
    """The order's own id, generated unless given: look the order up with it."""
    newOrderRespType: str | None = attrs.field(default=None)

    @type.validator
    def _check_type(self, attribute: attrs.Attribute[Any], value: object) -> None:
        check_enum(*self.order_types)(self, attribute, value)

    @timeInForce.validator
    def _check_tif(self, attribute: attrs.Attribute[Any], value: object) -> None:
        check_enum(*self.time_in_force, optional=True)(self, attribute, value)

    @newOrderRespType.validator
    def _check_resp(self, attribute: attrs.Attribute[Any], value: object) -> None:
        check_enum(*self.resp_types, optional=True)(self, attribute, value)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        check_order_requirements(self, self.type, self.requirements, exempt=self.exempt())

    def exempt(self) -> dict[str, bool]:
        """Parameters not needed this time although the type lists them."""
        return {}

    def extra_words(self) -> list[str]:
        """Further details for `str()` (spot: the quote amount; futures: reduce only...)."""
        return []

    def describe(self) -> str:
        qty = "" if self.quantity is None else f"{self.quantity} "
        text = f"{self.action} {self.side} {qty}{self.symbol} {self.type}"
        if self.price is not None:
            text += f" at {self.price}"
        if self.stopPrice is not None:
            text += f" stop {self.stopPrice}"
        if self.timeInForce is not None:
            text += f" {self.timeInForce}"
        return phrase(text, *self.extra_words(), f"id {self.newClientOrderId}")


FUTURES_ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
FUTURES_REQUIREMENTS: dict[str, tuple[Requirement, ...]] = {
    "LIMIT": ("timeInForce", "quantity", ("price", "priceMatch")),
    "MARKET": ("quantity",),
    "STOP": ("quantity", ("price", "priceMatch"), "stopPrice"),
    "TAKE_PROFIT": ("quantity", ("price", "priceMatch"), "stopPrice"),
    "STOP_MARKET": ("quantity", "stopPrice"),
    "TAKE_PROFIT_MARKET": ("quantity", "stopPrice"),
    "TRAILING_STOP_MARKET": ("quantity", "callbackRate"),
}


@attrs.define(eq=False, kw_only=True)
class FuturesOrderTask(OrderTask):
    """USDⓈ-M and COIN-M orders (the same parameters, bar `goodTillDate`)."""

    order_types: ClassVar[tuple[str, ...]] = FUTURES_ORDER_TYPES
    resp_types: ClassVar[tuple[str, ...]] = ("ACK", "RESULT")
    requirements: ClassVar[dict[str, tuple[Requirement, ...]]] = FUTURES_REQUIREMENTS

    positionSide: str | None = attrs.field(
        default=None, validator=check_enum("BOTH", "LONG", "SHORT", optional=True)
    )
    reduceOnly: bool | None = _flag_field()
    closePosition: bool | None = _flag_field()
    activationPrice: str | None = attrs.field(
        default=None, converter=decimal_text, validator=check_decimal
    )
    callbackRate: str | None = attrs.field(
        default=None, converter=decimal_text, validator=check_decimal
    )
    workingType: str | None = attrs.field(
        default=None, validator=check_enum("MARK_PRICE", "CONTRACT_PRICE", optional=True)
    )
    priceProtect: bool | None = _flag_field()
    priceMatch: str | None = attrs.field(default=None)
    selfTradePreventionMode: str | None = attrs.field(default=None)

    def extra_words(self) -> list[str]:
        words = []
        if self.callbackRate is not None:
            words.append(f"callback {self.callbackRate}%")
        if self.reduceOnly:
            words.append("reduce only")
        if self.closePosition:
            words.append("close position")
        return words

    def exempt(self) -> dict[str, bool]:
        # closePosition=true closes the whole position: no quantity is sent.
        return {"quantity": bool(self.closePosition)}


# -- signed: one existing order -------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class OneOrderTask(BinanceTask):
    """An existing order, named by `orderId` or `origClientOrderId` (the id it was placed with)."""

    answer: ClassVar[type | tuple[type, ...] | None] = dict

    action: ClassVar[str] = "query"

    symbol: str = attrs.field(validator=required_symbol)
    orderId: int | None = attrs.field(default=None, validator=optional_int)
    origClientOrderId: str | None = attrs.field(default=None, validator=check_client_order_id)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        check_one_of_ids(self, self.orderId, self.origClientOrderId)

    def describe(self) -> str:
        if self.orderId is not None:
            which = str(self.orderId)
        else:
            which = f"client id {self.origClientOrderId}"
        return f"{self.action} {self.symbol} order {which}"


@attrs.define(eq=False, kw_only=True)
class QueryOrderTask(OneOrderTask):
    """An order's current state."""


@attrs.define(eq=False, kw_only=True)
class CancelOrderTask(OneOrderTask):
    """Cancel an open order; the answer is the order, status CANCELED."""

    method: ClassVar[str] = "DELETE"
    action: ClassVar[str] = "cancel"
