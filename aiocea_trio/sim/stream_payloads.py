"""Stream names and payloads: what each market stream of the simulator sends, and when.

Every payload is read from the same generator the REST answers come from, at the push time:
trades of a second are pushed once the second completes (when ``/trades`` shows them), a
kline's final event (``x`` true) carries the REST kline, a ticker is ``/ticker/24hr`` of the
same instant, a book is ``/depth`` of the same second and a diff is ``Series.book_diff``
(see ``depth.py``). Pushes are aligned to multiples of their period on the simulator's clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import attrs

from ..endpoints import KLINE_INTERVALS
from ..markets import Market
from .market import MarketData, Series, interval_bounds
from .market_handlers import TickerHandlers
from .symbols import SymbolSpec, fixed

__all__ = ["USDM_ROUTES", "Stream", "StreamError", "parse_stream"]

#: USDⓈ-M routed paths and the stream kinds each delivers (Binance's split of 2026-03; the
#: unrouted ``/fstream/ws`` receives ``public`` data only). ``trade`` is undocumented on
#: futures; it is served with the trades, on ``market``.
USDM_ROUTES: Final[dict[str, frozenset[str]]] = {
    "public": frozenset({"bookTicker", "depth", "depthN"}),
    "market": frozenset({"aggTrade", "trade", "kline", "miniTicker", "ticker", "markPrice"}),
}

_DEPTH_SPEEDS: Final = {"spot": ("100ms", "1000ms"), "futures": ("100ms", "250ms", "500ms")}
_NAME = re.compile(
    r"^(?P<symbol>[a-z0-9_]+)@(?P<kind>aggTrade|trade|kline_(?P<interval>\w+)|miniTicker|ticker"
    r"|bookTicker|markPrice(?:@1s)?|depth(?P<levels>5|10|20)?(?:@(?P<speed>\d+ms))?)$"
)


class StreamError(ValueError):
    """A stream name the simulator does not serve on this market."""


Payload = dict[str, Any]


@attrs.define(eq=False)
class Stream:
    """One subscribed stream: its schedule and the state that makes each event exactly once.

    ``events(t_ms)`` is called at every multiple of ``period_ms`` and returns the payloads to
    send then (maybe none).
    """

    name: str
    kind: str  # trade, aggTrade, kline, miniTicker, ticker, bookTicker, depthN, depth, markPrice
    series: Series
    market: str
    period_ms: int
    interval: str = ""
    levels: int = 0
    md: MarketData | None = None
    tickers: TickerHandlers | None = None
    next_s: int | None = None  # trades: first second not yet sent; depth: last second sent
    open_s: int | None = None  # kline: the open candle last sent
    last_u: int | None = None  # bookTicker: last update id sent
    skip_next: bool = False  # fault: drop the next diff event (a gap in update ids)

    due_ms: int = 0  # the next push time (epoch ms)
    silent: bool = False  # subscribed on a USDⓈ-M route that does not deliver it

    def start(self, t_ms: int) -> None:
        """Subscribed at ``t_ms``: trades from this second on, diffs after this second's book."""
        if self.kind in ("trade", "aggTrade", "depth"):
            self.next_s = t_ms // 1000

    def events(self, t_ms: int) -> list[Payload]:
        return _BUILDERS[self.kind](self, t_ms)


def parse_stream(
    name: str, market: str, md: MarketData, tickers: TickerHandlers, specs: dict[str, SymbolSpec]
) -> Stream:
    """The stream ``name`` of ``market``; StreamError if it is not served."""
    m = _NAME.match(name)
    if m is None:
        raise StreamError(name)
    spec = specs.get(m["symbol"].upper())
    series = md.get(market, spec.symbol) if spec is not None else None
    if series is None:
        raise StreamError(name)
    kind = m["kind"]
    spot = market == "spot"
    if kind.startswith("kline_"):
        interval = m["interval"]
        if interval not in KLINE_INTERVALS[Market(market)]:
            raise StreamError(name)
        period = 1000 if interval == "1s" else 2000 if spot else 250
        return Stream(name, "kline", series, market, period, interval=interval, md=md)
    if kind.startswith("depth"):
        speed = m["speed"]
        allowed = _DEPTH_SPEEDS["spot" if spot else "futures"]
        if speed is not None and speed not in allowed:
            raise StreamError(name)
        period = int(speed[:-2]) if speed else 1000 if spot else 250
        levels = int(m["levels"] or 0)
        return Stream(name, "depthN" if levels else "depth", series, market, period, levels=levels)
    if kind.startswith("markPrice"):
        if spot:
            raise StreamError(name)
        return Stream(name, "markPrice", series, market, 1000 if kind.endswith("1s") else 3000)
    periods = {"trade": 1000, "aggTrade": 1000, "miniTicker": 1000, "ticker": 1000}
    return Stream(name, kind, series, market, periods.get(kind, 1000), tickers=tickers)


def route_of(kind: str) -> str:
    """The USDⓈ-M route (``public`` or ``market``) that delivers a stream kind."""
    return next(route for route, kinds in USDM_ROUTES.items() if kind in kinds)


# -- builders ---------------------------------------------------------------------------------


def _trades(stream: Stream, t_ms: int) -> list[Payload]:
    """The trades of the seconds completed since the last push (as ``/trades`` shows them)."""
    series, spec = stream.series, stream.series.spec
    now_s = t_ms // 1000
    if stream.next_s is None:
        stream.next_s = now_s
    out: list[Payload] = []
    symbol = spec.symbol
    ps, qs = spec.price_str, spec.qty_str
    spot = stream.market == "spot"
    for s in range(stream.next_s, now_s):
        for tid, ms, price, qty, maker in series.second_trades(s):
            if stream.kind == "trade":
                row: Payload = {"e": "trade", "E": t_ms, "s": symbol, "t": tid}
                row.update({"p": ps(price), "q": qs(qty), "T": ms, "m": maker})
                if spot:
                    row["M"] = True
                else:
                    row["X"] = "MARKET"
            else:
                row = {"e": "aggTrade", "E": t_ms, "s": symbol, "a": tid, "p": ps(price)}
                row["q"] = qs(qty)
                if not spot:
                    row["nq"] = qs(qty)
                row.update({"f": tid, "l": tid, "T": ms, "m": maker})
                if spot:
                    row["M"] = True
            out.append(row)
    stream.next_s = max(stream.next_s, now_s)
    return out


def _kline_payload(stream: Stream, t_ms: int, open_s: int, now_s: int) -> Payload:
    series, spec = stream.series, stream.series.spec
    o, h, low, c, v, q, n, tb, tq = series.candle(stream.interval, open_s, now_s)
    close_s = interval_bounds(stream.interval, open_s)[1]
    first = series.first_id(open_s)
    ps, qs = spec.price_str, spec.qty_str
    if spec.market == "usdm":
        qv, tqv = fixed(q // 1000, 5), fixed(tq // 1000, 5)
    else:
        qv, tqv = fixed(q, 8), fixed(tq, 8)
    k = {
        "t": open_s * 1000,
        "T": close_s * 1000 - 1,
        "s": spec.symbol,
        "i": stream.interval,
        "f": first if n else -1,
        "L": first + n - 1 if n else -1,
        "o": ps(o),
        "c": ps(c),
        "h": ps(h),
        "l": ps(low),
        "v": qs(v),
        "n": n,
        "x": close_s <= now_s,
        "q": qv,
        "V": qs(tb),
        "Q": tqv,
        "B": "0",
    }
    return {"e": "kline", "E": t_ms, "s": spec.symbol, "k": k}


def _kline(stream: Stream, t_ms: int) -> list[Payload]:
    """The open candle; first the one that closed since the last push, ``x`` true, once."""
    now_s = t_ms // 1000
    open_s = interval_bounds(stream.interval, now_s)[0]
    out: list[Payload] = []
    if stream.open_s is not None and stream.open_s != open_s:
        out.append(_kline_payload(stream, t_ms, stream.open_s, now_s))
    stream.open_s = open_s
    out.append(_kline_payload(stream, t_ms, open_s, now_s))
    return out


def _ticker(stream: Stream, t_ms: int) -> list[Payload]:
    """``/ticker/24hr`` of the same instant, in the stream's field names."""
    assert stream.tickers is not None
    spec = stream.series.spec
    full = stream.kind == "ticker"
    row = stream.tickers._ticker24(stream.series, t_ms, full)
    volume_q = row.get("quoteVolume", row.get("baseVolume"))
    if not full:
        return [
            {
                "e": "24hrMiniTicker",
                "E": t_ms,
                "s": spec.symbol,
                "c": row["lastPrice"],
                "o": row["openPrice"],
                "h": row["highPrice"],
                "l": row["lowPrice"],
                "v": row["volume"],
                "q": volume_q,
            }
        ]
    out: Payload = {"e": "24hrTicker", "E": t_ms, "s": spec.symbol}
    out.update(
        {"p": row["priceChange"], "P": row["priceChangePercent"], "w": row["weightedAvgPrice"]}
    )
    if stream.market == "spot":
        out["x"] = row["prevClosePrice"]
    out.update({"c": row["lastPrice"], "Q": row["lastQty"]})
    if stream.market == "spot":
        out.update(
            {"b": row["bidPrice"], "B": row["bidQty"], "a": row["askPrice"], "A": row["askQty"]}
        )
    out.update(
        {
            "o": row["openPrice"],
            "h": row["highPrice"],
            "l": row["lowPrice"],
            "v": row["volume"],
            "q": volume_q,
            "O": row["openTime"],
            "C": row["closeTime"],
            "F": row["firstId"],
            "L": row["lastId"],
            "n": row["count"],
        }
    )
    return [out]


def _book_ticker(stream: Stream, t_ms: int) -> list[Payload]:
    """Level 1 of ``/depth``, sent when the book changed (once a second)."""
    series, spec = stream.series, stream.series.spec
    s = t_ms // 1000
    u = series.update_id(s)
    if u == stream.last_u:
        return []
    stream.last_u = u
    bids, asks = series.book(t_ms, 1)
    row: Payload = {"u": u, "s": spec.symbol}
    if stream.market != "spot":
        row = {"e": "bookTicker", "u": u, "E": t_ms, "T": t_ms, "s": spec.symbol}
    ps, qs = spec.price_str, spec.qty_str
    row.update({"b": ps(bids[0][0]), "B": qs(bids[0][1]), "a": ps(asks[0][0])})
    row["A"] = qs(asks[0][1])
    return [row]


def _levels(spec: SymbolSpec, levels: list[tuple[int, int]]) -> list[list[str]]:
    ps, qs = spec.price_str, spec.qty_str
    return [[ps(p), qs(q)] for p, q in levels]


def _depth_event(stream: Stream, t_ms: int, s: int, bids: Any, asks: Any) -> Payload:
    series, spec = stream.series, stream.series.spec
    first, last = series.update_id(s - 1) + 1, series.update_id(s)
    if stream.market == "spot":
        row: Payload = {"e": "depthUpdate", "E": t_ms, "s": spec.symbol, "U": first, "u": last}
    else:
        row = {"e": "depthUpdate", "E": t_ms, "T": t_ms, "s": spec.symbol}
        if stream.market == "coinm":
            row["ps"] = spec.pair
        row.update({"U": first, "u": last, "pu": first - 1})
    row.update({"b": _levels(spec, bids), "a": _levels(spec, asks)})
    return row


def _partial_depth(stream: Stream, t_ms: int) -> list[Payload]:
    """The top levels of ``/depth`` at the same second."""
    series = stream.series
    s = t_ms // 1000
    bids, asks = series.book(t_ms, stream.levels)
    if stream.market == "spot":
        spec = series.spec
        return [
            {
                "lastUpdateId": series.update_id(s),
                "bids": _levels(spec, bids),
                "asks": _levels(spec, asks),
            }
        ]
    return [_depth_event(stream, t_ms, s, bids, asks)]


def _diff_depth(stream: Stream, t_ms: int) -> list[Payload]:
    """One event per second since the last one: ids chained, ``U`` = previous ``u`` + 1."""
    s = t_ms // 1000
    assert stream.next_s is not None  # (set by start: the state at subscription)
    out = []
    for second in range(stream.next_s + 1, s + 1):
        bids, asks = stream.series.book_diff(second)
        if stream.skip_next:
            stream.skip_next = False
            continue
        out.append(_depth_event(stream, t_ms, second, bids, asks))
    stream.next_s = max(stream.next_s, s)
    return out


def _mark_price(stream: Stream, t_ms: int) -> list[Payload]:
    """``/premiumIndex`` of the same instant."""
    series, spec = stream.series, stream.series.spec
    now_s = t_ms // 1000
    dec = spec.display_price_decimals + 6
    mark = series.price_at(now_s) * 10 ** (dec - spec.price_decimals)
    index = mark * 9998 // 10000
    perpetual = spec.contract_type == "PERPETUAL"
    k = now_s // 28800
    return [
        {
            "e": "markPriceUpdate",
            "E": t_ms,
            "s": spec.symbol,
            "p": fixed(mark, dec),
            "i": fixed(index, dec),
            "P": fixed(index, dec),
            "r": fixed(series.funding_rate(k), 8) if perpetual else "",
            "T": (k + 1) * 28_800_000 if perpetual else 0,
        }
    ]


_BUILDERS: Final[dict[str, Callable[[Stream, int], list[Payload]]]] = {
    "trade": _trades,
    "aggTrade": _trades,
    "kline": _kline,
    "miniTicker": _ticker,
    "ticker": _ticker,
    "bookTicker": _book_ticker,
    "depthN": _partial_depth,
    "depth": _diff_depth,
    "markPrice": _mark_price,
}
