"""Typed stream events: frozen attrs classes parsed from Binance's JSON payloads.

Prices and quantities are ``Decimal``: Binance sends them as strings, and a ``Decimal`` keeps
them exact (``float`` would not) at a cost of well under a microsecond each. Times are epoch
milliseconds (``int``). Every event carries the ``stream`` it came from, so one consumer can
read several streams. Fields Binance adds later are ignored; a payload of a kind not listed
here arrives as :class:`RawEvent`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

__all__ = [
    "AggTrade",
    "BookTicker",
    "DepthUpdate",
    "Event",
    "Kline",
    "MarkPrice",
    "MiniTicker",
    "PartialDepth",
    "RawEvent",
    "StreamGap",
    "Ticker",
    "Trade",
    "parser_for",
]

Level = tuple[Decimal, Decimal]


@attrs.frozen
class StreamGap:
    """Events of ``stream`` between ``start_ms`` and ``end_ms`` (server time) may be missing.

    Sent once per stream for every unplanned reconnect (a dropped or silent connection), in
    the place of the missing events, so a consumer can backfill over REST. Planned rollovers
    (the 24-hour limit, ``serverShutdown``) lose nothing and send no gap.
    """

    stream: str
    start_ms: int
    end_ms: int


@attrs.frozen
class Trade:
    stream: str
    symbol: str
    event_time: int
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time: int
    buyer_is_maker: bool


@attrs.frozen
class AggTrade:
    stream: str
    symbol: str
    event_time: int
    agg_trade_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    trade_time: int
    buyer_is_maker: bool


@attrs.frozen
class Kline:
    """One update of a candle; ``closed`` is true on its final update (Binance's ``x``)."""

    stream: str
    symbol: str
    event_time: int
    interval: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    closed: bool


@attrs.frozen
class MiniTicker:
    stream: str
    symbol: str
    event_time: int
    close: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal


@attrs.frozen
class Ticker:
    """24-hour rolling ticker; the best bid/ask fields are ``None`` on futures (not sent)."""

    stream: str
    symbol: str
    event_time: int
    price_change: Decimal
    price_change_percent: Decimal
    weighted_avg_price: Decimal
    last_price: Decimal
    last_quantity: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time: int
    close_time: int
    first_trade_id: int
    last_trade_id: int
    trades: int
    bid_price: Decimal | None
    bid_quantity: Decimal | None
    ask_price: Decimal | None
    ask_quantity: Decimal | None


@attrs.frozen
class BookTicker:
    """Best bid and ask; ``event_time`` is ``None`` on spot (not sent)."""

    stream: str
    symbol: str
    update_id: int
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal
    event_time: int | None


@attrs.frozen
class PartialDepth:
    """The top N levels (``<symbol>@depth<N>``); the symbol comes from the stream name,
    since spot's payload has none. ``last_update_id`` is spot's ``lastUpdateId`` or the
    futures ``u``."""

    stream: str
    symbol: str
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    event_time: int | None


@attrs.frozen
class DepthUpdate:
    """A diff of the book (``<symbol>@depth``): levels are absolute, quantity 0 deletes.

    ``U``/``u``/``pu`` are Binance's first, final and (futures only) previous final update
    ids, also readable under those names.
    """

    stream: str
    symbol: str
    event_time: int
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @property
    def U(self) -> int:
        return self.first_update_id

    @property
    def u(self) -> int:
        return self.final_update_id

    @property
    def pu(self) -> int | None:
        return self.prev_final_update_id


@attrs.frozen
class MarkPrice:
    """Futures mark price; ``funding_rate``/``next_funding_time`` are ``None`` on
    delivery contracts (empty in the payload)."""

    stream: str
    symbol: str
    event_time: int
    mark_price: Decimal
    index_price: Decimal | None
    estimated_settle_price: Decimal | None
    funding_rate: Decimal | None
    next_funding_time: int | None


@attrs.frozen
class RawEvent:
    """A payload of a kind this module does not type (``data`` is the JSON as parsed)."""

    stream: str
    data: Any


Event = (
    Trade
    | AggTrade
    | Kline
    | MiniTicker
    | Ticker
    | BookTicker
    | PartialDepth
    | DepthUpdate
    | MarkPrice
    | RawEvent
    | StreamGap
)

D = Decimal


def _opt(value: Any) -> Decimal | None:
    return D(value) if value not in (None, "") else None


def _levels(rows: Any) -> tuple[Level, ...]:
    return tuple((D(p), D(q)) for p, q in rows)


def _trade(stream: str, d: dict[str, Any]) -> Trade:
    return Trade(stream, d["s"], d["E"], d["t"], D(d["p"]), D(d["q"]), d["T"], d["m"])


def _agg_trade(stream: str, d: dict[str, Any]) -> AggTrade:
    return AggTrade(
        stream, d["s"], d["E"], d["a"], D(d["p"]), D(d["q"]), d["f"], d["l"], d["T"], d["m"]
    )


def _kline(stream: str, d: dict[str, Any]) -> Kline:
    k = d["k"]
    return Kline(
        stream,
        k.get("s") or d.get("s") or d.get("ps", ""),
        d["E"],
        k["i"],
        k["t"],
        k["T"],
        D(k["o"]),
        D(k["h"]),
        D(k["l"]),
        D(k["c"]),
        D(k["v"]),
        D(k["q"]),
        k["n"],
        D(k["V"]),
        D(k["Q"]),
        k["x"],
    )


def _mini_ticker(stream: str, d: dict[str, Any]) -> MiniTicker:
    return MiniTicker(
        stream, d["s"], d["E"], D(d["c"]), D(d["o"]), D(d["h"]), D(d["l"]), D(d["v"]), D(d["q"])
    )


def _ticker(stream: str, d: dict[str, Any]) -> Ticker:
    return Ticker(
        stream,
        d["s"],
        d["E"],
        D(d["p"]),
        D(d["P"]),
        D(d["w"]),
        D(d["c"]),
        D(d["Q"]),
        D(d["o"]),
        D(d["h"]),
        D(d["l"]),
        D(d["v"]),
        D(d["q"]),
        d["O"],
        d["C"],
        d["F"],
        d["L"],
        d["n"],
        _opt(d.get("b")),
        _opt(d.get("B")),
        _opt(d.get("a")),
        _opt(d.get("A")),
    )


def _book_ticker(stream: str, d: dict[str, Any]) -> BookTicker:
    return BookTicker(
        stream, d["s"], d["u"], D(d["b"]), D(d["B"]), D(d["a"]), D(d["A"]), d.get("E")
    )


def _partial_depth(stream: str, d: dict[str, Any]) -> PartialDepth:
    symbol = d.get("s") or stream.split("@", 1)[0].upper()
    if "lastUpdateId" in d:
        return PartialDepth(
            stream, symbol, d["lastUpdateId"], _levels(d["bids"]), _levels(d["asks"]), None
        )
    return PartialDepth(stream, symbol, d["u"], _levels(d["b"]), _levels(d["a"]), d.get("E"))


def _depth_update(stream: str, d: dict[str, Any]) -> DepthUpdate:
    return DepthUpdate(
        stream, d["s"], d["E"], d["U"], d["u"], d.get("pu"), _levels(d["b"]), _levels(d["a"])
    )


def _mark_price(stream: str, d: dict[str, Any]) -> MarkPrice:
    nft = d.get("T")
    return MarkPrice(
        stream,
        d["s"],
        d["E"],
        D(d["p"]),
        _opt(d.get("i")),
        _opt(d.get("P")),
        _opt(d.get("r")),
        nft if nft else None,
    )


def _raw(stream: str, d: Any) -> RawEvent:
    return RawEvent(stream, d)


_BY_EVENT: dict[str, Callable[[str, dict[str, Any]], Event]] = {
    "trade": _trade,
    "aggTrade": _agg_trade,
    "kline": _kline,
    "continuous_kline": _kline,
    "24hrMiniTicker": _mini_ticker,
    "24hrTicker": _ticker,
    "bookTicker": _book_ticker,
    "depthUpdate": _depth_update,
    "markPriceUpdate": _mark_price,
}

_PARTIAL = re.compile(r"@depth(5|10|20)(@\d+ms)?$")


def _by_payload(stream: str, d: Any) -> Event:
    if not isinstance(d, dict):
        return RawEvent(stream, d)
    fn = _BY_EVENT.get(d.get("e", ""))
    if fn is None:
        if "u" in d and "b" in d and "A" in d:
            return _book_ticker(stream, d)
        if "lastUpdateId" in d:
            return _partial_depth(stream, d)
        return RawEvent(stream, d)
    try:
        return fn(stream, d)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return RawEvent(stream, d)


def parser_for(stream: str) -> Callable[[str, Any], Event]:
    """The parser for a stream's payloads, chosen once from its name.

    Partial depth is known by its name only (futures send it as a ``depthUpdate``); every
    other kind is read from the payload's ``e``. A payload that does not parse becomes a
    :class:`RawEvent` rather than an error: one odd message must not end the stream.
    """
    if _PARTIAL.search(stream):

        def partial(name: str, d: Any) -> Event:
            try:
                return _partial_depth(name, d)
            except (KeyError, TypeError, ValueError, ArithmeticError):
                return RawEvent(name, d)

        return partial
    return _by_payload
