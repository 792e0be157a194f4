"""The simulator's HTTP surface: one Starlette route dispatching on (method, path).

A single catch-all route and a dict lookup keep per-request overhead low (the benchmark counts
requests per second). Every request is charged its weight before anything else, as Binance does,
then faults are drawn, then the API key, signature and timestamp are checked, then the handler
runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import attrs
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..endpoints import find
from ..markets import market_for_path
from .accounts import Account
from .auth import payload_without_signature, valid_key_format
from .errors import ApiError, SimulatedDisconnect, mandatory
from .market import INTERVALS, Series, Trade, interval_bounds
from .symbols import SymbolSpec, fixed

if TYPE_CHECKING:
    from .exchange import SimExchange

__all__ = ["build_app"]

_DAY_MS = 86_400_000
_RECV_SPOT = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,3})?$")
_SYMBOL = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_STATUS_UNKNOWN = (
    "An unexpected response was received from the message bus. Execution status unknown."
)


@attrs.frozen
class RawJSON:
    """A handler result that is already JSON text (kline pages are printed directly)."""

    text: str


def _dumps(obj: Any) -> bytes:
    if isinstance(obj, RawJSON):
        return obj.text.encode()
    return json.dumps(obj, separators=(",", ":")).encode()


class _DropResponse(Response):
    """Starts a response, then cuts the connection (a dropped-connection fault)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise SimulatedDisconnect("simulated dropped connection")


class _DripResponse(Response):
    """Sends the body one byte every ``interval`` seconds (a drip-feeding server)."""

    def __init__(self, body: bytes, status: int, headers: Mapping[str, str], interval: float):
        super().__init__(
            body, status_code=status, headers=dict(headers), media_type="application/json"
        )
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = bytes(self.body)
        for i in range(len(body)):
            await trio.sleep(self.interval)
            more = i + 1 < len(body)
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": more})
        if not body:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


_HTML_200 = (
    b"<!DOCTYPE html><html><head><title>Binance</title></head>"
    b"<body><h1>System maintenance</h1><p>Please try again later.</p></body></html>"
)
_HTML_408 = (
    b"<html><head><title>408 Request Time-out</title></head><body><h1>408 Request Time-out</h1>"
    b"Your browser didn't send a complete request in time.</body></html>"
)


def _garbage(kind: str, real: bytes, headers: Mapping[str, str]) -> Response:
    """The answer of a ``garbage_rate`` fault (see ``faults.GARBAGE_KINDS``)."""
    if kind == "html200":
        return Response(_HTML_200, status_code=200, media_type="text/html")
    if kind == "html408":
        return Response(_HTML_408, status_code=408, media_type="text/html")
    body = real[: max(1, len(real) // 2)] if kind == "truncated200" else b""
    return Response(body, status_code=200, headers=dict(headers), media_type="application/json")


def parse_params(query: bytes, body: bytes) -> dict[str, str]:
    """Merge query and form body parameters; the query wins a clash, duplicates are -1101."""
    out: dict[str, str] = {}
    for raw, is_query in ((query, True), (body, False)):
        if not raw:
            continue
        seen: set[str] = set()
        for k, v in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if k in seen:
                raise ApiError(-1101, "Duplicate values for a parameter detected.")
            seen.add(k)
            if is_query or k not in out:
                out[k] = v
    return out


@attrs.define(eq=False, slots=True)
class Ctx:
    """One request as handlers see it."""

    method: str
    path: str
    market: str
    params: dict[str, str]
    now_ms: int
    account: Account | None = None


Handler = Callable[[Ctx], Any]


@attrs.frozen
class _Endpoint:
    handler: Handler
    signed: bool = False
    allowed: frozenset[str] | None = None  # None: any parameter accepted


def _int(params: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


def _limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    limit = _int(params, "limit", default)
    assert limit is not None
    if limit < 1 or limit > maximum:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


class _Handlers:
    """The endpoint implementations (market data per market, then trading)."""

    def __init__(self, sim: SimExchange) -> None:
        self.sim = sim
        self.md = sim.market_data
        self.trading = sim.trading
        self.specs: dict[str, list[SymbolSpec]] = {"spot": [], "usdm": [], "coinm": []}
        for spec in sim.symbol_specs:
            self.specs[spec.market].append(spec)

    # -- helpers ---------------------------------------------------------------------------

    def series(self, r: Ctx, name: str = "symbol") -> Series:
        symbol = r.params.get(name)
        if not symbol:
            raise mandatory(name)
        if not _SYMBOL.match(symbol):
            raise ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is "
                "'^[A-Z0-9-_.]{1,20}$'.",
            )
        series = self.md.get(r.market, symbol)
        if series is None:
            raise ApiError(-1121, "Invalid symbol.")
        return series

    def many(self, r: Ctx) -> list[Series] | None:
        """``symbol`` or ``symbols`` (JSON array) or (COIN-M) ``pair``; None means all."""
        if "symbol" in r.params and "symbols" in r.params:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        if "symbol" in r.params:
            return [self.series(r)]
        if "symbols" in r.params:
            try:
                names = json.loads(r.params["symbols"])
            except ValueError:
                names = None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.")
            if len(set(names)) != len(names):
                raise ApiError(-1151, "Symbol is present multiple times in the list.")
            out = []
            for name in names:
                s = self.md.get(r.market, name)
                if s is None:
                    raise ApiError(-1121, "Invalid symbol.")
                out.append(s)
            return out
        if "pair" in r.params and r.market == "coinm":
            return [
                self.md.series[(r.market, s.symbol)]
                for s in self.specs["coinm"]
                if s.pair == r.params["pair"]
            ]
        return None

    def all_series(self, market: str) -> list[Series]:
        return [self.md.series[(market, s.symbol)] for s in self.specs[market]]

    @staticmethod
    def _one_or_list(r: Ctx, rows: list[dict[str, Any]]) -> Any:
        # COIN-M tickers always answer a list; spot and USDⓈ-M an object for one symbol.
        return rows[0] if "symbol" in r.params and r.market != "coinm" else rows

    # -- general ---------------------------------------------------------------------------

    def ping(self, r: Ctx) -> Any:
        return {}

    def time(self, r: Ctx) -> Any:
        return {"serverTime": r.now_ms}

    def exchange_info(self, r: Ctx) -> Any:
        sim = self.sim
        rate_limits: list[dict[str, Any]] = [sim.weight_rate_limit(r.market)]
        rate_limits.extend(sim.order_rate_limits(r.market))
        if r.market == "spot":
            rate_limits.append(
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 300000,
                }
            )
            selected = self.many(r)
            specs = [s.spec for s in selected] if selected is not None else self.specs["spot"]
            return {
                "timezone": "UTC",
                "serverTime": r.now_ms,
                "rateLimits": rate_limits,
                "exchangeFilters": [],
                "symbols": [s.exchange_info_entry() for s in specs],
            }
        margin_assets = dict.fromkeys(s.margin_asset for s in self.specs[r.market])
        return {
            "timezone": "UTC",
            "serverTime": r.now_ms,
            "futuresType": "U_MARGINED" if r.market == "usdm" else "COIN_MARGINED",
            "rateLimits": rate_limits,
            "exchangeFilters": [],
            "assets": [
                {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                for a in margin_assets
            ],
            "symbols": [s.exchange_info_entry() for s in self.specs[r.market]],
        }

    # -- order book and trades -------------------------------------------------------------

    def depth(self, r: Ctx) -> Any:
        series = self.series(r)
        spot = r.market == "spot"
        limit = _int(r.params, "limit", 100 if spot else 500)
        assert limit is not None
        if limit < 1:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        limit = min(limit, 5000 if spot else 1000)
        bids, asks = series.book(r.now_ms, limit)
        spec = series.spec
        out: dict[str, Any] = {"lastUpdateId": r.now_ms - spec.onboard_ms}
        if not spot:
            out["E"] = r.now_ms
            out["T"] = r.now_ms
            if r.market == "coinm":
                out["symbol"] = spec.symbol
                out["pair"] = spec.pair
        ps, qs = spec.price_str, spec.qty_str
        out["bids"] = [[ps(p), qs(q)] for p, q in bids]
        out["asks"] = [[ps(p), qs(q)] for p, q in asks]
        return out

    def _trade_row(self, spec: SymbolSpec, t: Trade) -> dict[str, Any]:
        tid, ms, price, qty, maker = t
        ps, qs = spec.price_str(price), spec.qty_str(qty)
        if spec.market == "coinm":
            base = qty * spec.contract_size * 10 ** (8 + spec.price_decimals) // price
            return {
                "id": tid,
                "price": ps,
                "qty": qs,
                "baseQty": fixed(base, 8),
                "time": ms,
                "isBuyerMaker": maker,
            }
        quote = fixed(price * qty * 10 ** (8 - spec.price_decimals - spec.qty_decimals), 8)
        row: dict[str, Any] = {
            "id": tid,
            "price": ps,
            "qty": qs,
            "quoteQty": quote,
            "time": ms,
            "isBuyerMaker": maker,
        }
        if spec.market == "spot":
            row["isBestMatch"] = True
        return row

    def trades(self, r: Ctx) -> Any:
        series = self.series(r)
        limit = _limit(r.params, 500, 1000)
        rows = series.recent_trades(r.now_ms // 1000, limit)
        return [self._trade_row(series.spec, t) for t in rows]

    def historical_trades(self, r: Ctx) -> Any:
        series = self.series(r)
        limit = _limit(r.params, 500, 1000)
        from_id = _int(r.params, "fromId")
        now_s = r.now_ms // 1000
        if from_id is None:
            rows = series.recent_trades(now_s, limit)
        else:
            rows = series.trades_from_id(from_id, now_s, limit)
        return [self._trade_row(series.spec, t) for t in rows]

    def agg_trades(self, r: Ctx) -> Any:
        series = self.series(r)
        limit = _limit(r.params, 500, 1000)
        from_id = _int(r.params, "fromId")
        start = _int(r.params, "startTime")
        end = _int(r.params, "endTime")
        now_s = r.now_ms // 1000
        if from_id is not None and (start is not None or end is not None) and r.market != "spot":
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None:
            if end - start > 3_600_000:
                raise ApiError(-1127, "More than 1 hours between startTime and endTime.")
            if start > end:
                raise ApiError(-1023, "Start time is greater than end time.")
        if from_id is not None:
            rows = series.trades_from_id(from_id, now_s, limit)
        elif start is not None:
            rows = series.trades_between(
                start, start + 3_600_000 if end is None else end, now_s, limit, newest=False
            )
        elif end is not None:
            rows = series.trades_between(end - 3_600_000, end, now_s, limit, newest=True)
        else:
            rows = series.recent_trades(now_s, limit)
        spec = series.spec
        out = []
        for tid, ms, price, qty, maker in rows:
            row: dict[str, Any] = {
                "a": tid,
                "p": spec.price_str(price),
                "q": spec.qty_str(qty),
                "f": tid,
                "l": tid,
                "T": ms,
                "m": maker,
            }
            if r.market == "spot":
                row["M"] = True
            out.append(row)
        return out

    # -- klines ----------------------------------------------------------------------------

    def klines(self, r: Ctx) -> Any:
        series = self.series(r)
        interval = r.params.get("interval")
        if not interval:
            raise mandatory("interval")
        if interval not in INTERVALS or (r.market != "spot" and interval == "1s"):
            raise ApiError(-1120, "Invalid interval.")
        spot = r.market == "spot"
        limit = _limit(r.params, 500, 1000 if spot else 1500)
        start = _int(r.params, "startTime")
        end = _int(r.params, "endTime")
        if start is not None and end is not None and start > end:
            if spot:
                return []
            raise ApiError(-1023, "Start time is greater than end time.")
        newest = start is None
        if r.market == "coinm":
            span = 200 * _DAY_MS
            if start is not None and end is not None:
                if end - start > span:
                    raise ApiError(-1127, "Lookup interval is too big.")
                newest = True
            elif start is not None:
                end = start + span
            elif end is not None:
                start = end - span
        now_s = r.now_ms // 1000
        first_open = interval_bounds(interval, series.onboard_s)[0]
        last_open = interval_bounds(interval, now_s)[0]
        lo = first_open
        if start is not None:
            s = -(-start // 1000)
            o, c = interval_bounds(interval, s)
            lo = max(lo, o if o == s else c)
        hi = last_open if end is None else min(last_open, interval_bounds(interval, end // 1000)[0])
        size = INTERVALS[interval]
        opens: Sequence[int]
        if size:  # lo and hi are on the interval's grid
            count = max(0, min(limit, (hi - lo) // size + 1))
            first = hi - (count - 1) * size if newest else lo
            opens = range(first, first + count * size, size)
        else:
            months: list[int] = []
            if newest:
                o = hi
                while o >= lo and len(months) < limit:
                    months.append(o)
                    o = interval_bounds(interval, o - 1)[0]
                months.reverse()
            else:
                o = lo
                while o <= hi and len(months) < limit:
                    months.append(o)
                    o = interval_bounds(interval, o)[1]
            opens = months
        return RawJSON(self.md.kline_page(series, interval, opens, now_s))

    # -- tickers ---------------------------------------------------------------------------

    def _vwap(self, spec: SymbolSpec, v: int, q: int) -> str:
        pd = spec.display_price_decimals
        if v == 0:
            return fixed(0, pd)
        if spec.market == "coinm":
            # q is base volume (1e-8), v contracts: price = v * size / base
            value = v * spec.contract_size * 10 ** (8 + pd) // max(q, 1)
        else:
            value = q * 10 ** (pd + spec.qty_decimals) // (v * 10**8)
        return fixed(value, pd)

    def _ticker24(self, series: Series, now_ms: int, full: bool) -> dict[str, Any]:
        spec = series.spec
        now_s = now_ms // 1000
        c = series.range_candle(now_s - 86400, now_s)
        assert c is not None
        o, h, low, last, v, q, n = c[:7]
        ps, qs = spec.price_str, spec.qty_str
        trades = series.recent_trades(now_s, 1)
        last_id = trades[-1][0] if trades else -1
        last_qty = trades[-1][3] if trades else 0
        change = last - o
        pct = f"{change * 100 / o:.3f}" if o else "0.000"
        out: dict[str, Any] = {"symbol": spec.symbol}
        if spec.market == "coinm":
            out["pair"] = spec.pair
        if full:
            out.update(
                {
                    "priceChange": ps(change),
                    "priceChangePercent": pct,
                    "weightedAvgPrice": self._vwap(spec, v, q),
                }
            )
            if spec.market == "spot":
                out["prevClosePrice"] = ps(o)
        out["lastPrice"] = ps(last)
        if full:
            out["lastQty"] = qs(last_qty)
            if spec.market == "spot":
                bids, asks = series.book(now_ms, 1)
                out.update(
                    {
                        "bidPrice": ps(bids[0][0]),
                        "bidQty": qs(bids[0][1]),
                        "askPrice": ps(asks[0][0]),
                        "askQty": qs(asks[0][1]),
                    }
                )
        out.update({"openPrice": ps(o), "highPrice": ps(h), "lowPrice": ps(low), "volume": qs(v)})
        if spec.market == "coinm":
            out["baseVolume"] = fixed(q, 8)
        elif spec.market == "usdm":
            out["quoteVolume"] = fixed(q // 1000, 5)
        else:
            out["quoteVolume"] = fixed(q, 8)
        out.update(
            {
                "openTime": now_ms - _DAY_MS,
                "closeTime": now_ms,
                "firstId": last_id - n + 1 if n else -1,
                "lastId": last_id,
                "count": n,
            }
        )
        return out

    def ticker_24hr(self, r: Ctx) -> Any:
        kind = r.params.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise ApiError(-1100, "Illegal characters found in parameter 'type'.")
        selected = self.many(r)
        rows = [
            self._ticker24(s, r.now_ms, kind == "FULL")
            for s in (selected if selected is not None else self.all_series(r.market))
        ]
        return self._one_or_list(r, rows)

    def ticker_price(self, r: Ctx) -> Any:
        selected = self.many(r)
        now_s = r.now_ms // 1000
        rows = []
        for s in selected if selected is not None else self.all_series(r.market):
            row: dict[str, Any] = {"symbol": s.spec.symbol}
            if r.market == "coinm":
                row["ps"] = s.spec.pair
            row["price"] = s.spec.price_str(s.price_at(now_s))
            if r.market != "spot":
                row["time"] = r.now_ms
            rows.append(row)
        return self._one_or_list(r, rows)

    def book_ticker(self, r: Ctx) -> Any:
        selected = self.many(r)
        rows = []
        for s in selected if selected is not None else self.all_series(r.market):
            spec = s.spec
            bids, asks = s.book(r.now_ms, 1)
            row: dict[str, Any] = {}
            if r.market != "spot":
                row["lastUpdateId"] = r.now_ms - spec.onboard_ms
            row["symbol"] = spec.symbol
            if r.market == "coinm":
                row["pair"] = spec.pair
            row.update(
                {
                    "bidPrice": spec.price_str(bids[0][0]),
                    "bidQty": spec.qty_str(bids[0][1]),
                    "askPrice": spec.price_str(asks[0][0]),
                    "askQty": spec.qty_str(asks[0][1]),
                }
            )
            if r.market != "spot":
                row["time"] = r.now_ms
            rows.append(row)
        return self._one_or_list(r, rows)

    def avg_price(self, r: Ctx) -> Any:
        series = self.series(r)
        now_s = r.now_ms // 1000
        c = series.range_candle(now_s - 300, now_s)
        assert c is not None
        trades = series.recent_trades(now_s, 1)
        return {
            "mins": 5,
            "price": self._vwap(series.spec, c[4], c[5]),
            "closeTime": trades[-1][1] if trades else r.now_ms,
        }

    # -- futures market data ---------------------------------------------------------------

    def premium_index(self, r: Ctx) -> Any:
        selected = self.many(r)
        now_s = r.now_ms // 1000
        rows = []
        for s in selected if selected is not None else self.all_series(r.market):
            spec = s.spec
            dec = spec.display_price_decimals + 6
            mark = s.price_at(now_s) * 10 ** (dec - spec.price_decimals)
            index = mark * 9998 // 10000
            row: dict[str, Any] = {"symbol": spec.symbol}
            if r.market == "coinm":
                row["pair"] = spec.pair
            perpetual = spec.contract_type == "PERPETUAL"
            k = now_s // 28800
            row.update(
                {
                    "markPrice": fixed(mark, dec),
                    "indexPrice": fixed(index, dec),
                    "estimatedSettlePrice": fixed(index, dec),
                    "lastFundingRate": fixed(s.funding_rate(k), 8) if perpetual else "",
                    "interestRate": "0.00010000" if perpetual else "",
                    "nextFundingTime": (k + 1) * 28_800_000 if perpetual else 0,
                    "time": r.now_ms,
                }
            )
            rows.append(row)
        return self._one_or_list(r, rows)

    def funding_rate(self, r: Ctx) -> Any:
        if r.market == "coinm" or "symbol" in r.params:
            targets = [self.series(r)]
        else:
            targets = [s for s in self.all_series(r.market) if s.spec.contract_type == "PERPETUAL"]
        limit = _limit(r.params, 100, 1000)
        start = _int(r.params, "startTime")
        end = _int(r.params, "endTime")
        now_k = r.now_ms // 28_800_000
        rows: list[tuple[int, Series]] = []
        for s in targets:
            if s.spec.contract_type != "PERPETUAL":
                continue
            first = -(-s.spec.onboard_ms // 28_800_000)
            lo = first if start is None else max(first, -(-start // 28_800_000))
            hi = now_k if end is None else min(now_k, end // 28_800_000)
            if start is not None:
                ks = range(lo, min(hi, lo + limit - 1) + 1)
            else:
                ks = range(max(lo, hi - limit + 1), hi + 1)
            rows.extend((k, s) for k in ks)
        rows.sort(key=lambda x: (x[0], x[1].spec.symbol))
        rows = rows[:limit] if start is not None else rows[-limit:]
        out = []
        for k, s in rows:
            spec = s.spec
            row: dict[str, Any] = {"symbol": spec.symbol}
            if r.market == "coinm":
                row.update(
                    {"fundingTime": k * 28_800_000, "fundingRate": fixed(s.funding_rate(k), 8)}
                )
            else:
                mark = s.price_at(k * 28800) * 10 ** (8 - spec.price_decimals)
                row.update(
                    {
                        "fundingRate": fixed(s.funding_rate(k), 8),
                        "fundingTime": k * 28_800_000,
                        "markPrice": fixed(mark, 8),
                    }
                )
            out.append(row)
        return out

    def open_interest(self, r: Ctx) -> Any:
        series = self.series(r)
        spec = series.spec
        oi = spec.qty_str(series.open_interest(r.now_ms // 1000))
        if r.market == "coinm":
            return {
                "symbol": spec.symbol,
                "pair": spec.pair,
                "openInterest": oi,
                "contractType": spec.contract_type,
                "time": r.now_ms,
            }
        return {"openInterest": oi, "symbol": spec.symbol, "time": r.now_ms}

    # -- trading ---------------------------------------------------------------------------

    def new_order(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.place(r.account, r.market, r.params, r.now_ms)

    def test_order(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.test_order(r.account, r.market, r.params, r.now_ms)

    def query_order(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.query(r.account, r.market, r.params, r.now_ms)

    def cancel_order(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.cancel(r.account, r.market, r.params, r.now_ms)

    def open_orders(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.open_orders(r.account, r.market, r.params, r.now_ms)

    def cancel_open_orders(self, r: Ctx) -> Any:
        assert r.account is not None
        self.series(r)
        out = []
        for view in self.trading.open_orders(r.account, r.market, r.params, r.now_ms):
            params = {"symbol": view["symbol"], "orderId": str(view["orderId"])}
            out.append(self.trading.cancel(r.account, r.market, params, r.now_ms))
        if r.market != "spot":
            return {"code": 200, "msg": "The operation of cancel all open order is done."}
        return out

    def all_orders(self, r: Ctx) -> Any:
        assert r.account is not None
        series = self.series(r)
        limit = _limit(r.params, 500, 1000)
        self.trading.sync(r.account, r.market, r.now_ms)
        orders = [
            o
            for o in r.account.orders.values()
            if o.market == r.market and o.symbol == series.spec.symbol
        ]
        orders.sort(key=lambda o: o.order_id)
        from_id = _int(r.params, "orderId")
        if from_id is not None:
            orders = [o for o in orders if o.order_id >= from_id]
        return [self.trading.order_view(o, "QUERY") for o in orders[-limit:]]

    def account(self, r: Ctx) -> Any:
        assert r.account is not None
        omit = r.params.get("omitZeroBalances", "false").lower() == "true"
        return self.trading.spot_account(r.account, r.now_ms, omit)

    def balance(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.futures_balance(r.account, r.market, r.now_ms)

    def leverage_bracket(self, r: Ctx) -> Any:
        """Binance's default BTCUSDT-like bracket table (the simulator uses one leverage)."""
        selected = self.many(r)
        rows = []
        for s in selected if selected is not None else self.all_series(r.market):
            brackets = [
                {
                    "bracket": i + 1,
                    "initialLeverage": lev,
                    "notionalCap": cap,
                    "notionalFloor": floor,
                    "maintMarginRatio": mmr,
                    "cum": cum,
                }
                for i, (lev, floor, cap, mmr, cum) in enumerate(
                    [
                        (125, 0, 50_000, 0.004, 0.0),
                        (100, 50_000, 600_000, 0.005, 50.0),
                        (50, 600_000, 3_000_000, 0.01, 3_050.0),
                        (20, 3_000_000, 12_000_000, 0.025, 48_050.0),
                        (10, 12_000_000, 70_000_000, 0.05, 348_050.0),
                    ]
                )
            ]
            rows.append({"symbol": s.spec.symbol, "notionalCoef": 1.0, "brackets": brackets})
        return rows[0] if "symbol" in r.params else rows

    def futures_account(self, r: Ctx) -> Any:
        assert r.account is not None
        version = 3 if r.path.startswith("/fapi/v3/") else 2
        return self.trading.futures_account(r.account, r.market, r.now_ms, version)

    def position_risk(self, r: Ctx) -> Any:
        assert r.account is not None
        return self.trading.position_risk(r.account, r.market, r.params, r.now_ms)


_MD = {"symbol", "limit"}


def _routes(h: _Handlers) -> dict[tuple[str, str], _Endpoint]:
    def md(fn: Handler, *allowed: str) -> _Endpoint:
        return _Endpoint(fn, allowed=frozenset(allowed))

    def signed(fn: Handler) -> _Endpoint:
        return _Endpoint(fn, signed=True)

    kl = ("symbol", "interval", "startTime", "endTime", "limit", "timeZone")
    routes: dict[tuple[str, str], _Endpoint] = {
        ("GET", "/api/v3/ping"): md(h.ping),
        ("GET", "/api/v3/time"): md(h.time),
        ("GET", "/api/v3/exchangeInfo"): md(
            h.exchange_info,
            "symbol",
            "symbols",
            "permissions",
            "showPermissionSets",
            "symbolStatus",
        ),
        ("GET", "/api/v3/depth"): md(h.depth, "symbol", "limit", "symbolStatus"),
        ("GET", "/api/v3/trades"): md(h.trades, "symbol", "limit"),
        ("GET", "/api/v3/historicalTrades"): md(h.historical_trades, "symbol", "limit", "fromId"),
        ("GET", "/api/v3/aggTrades"): md(
            h.agg_trades, "symbol", "fromId", "startTime", "endTime", "limit"
        ),
        ("GET", "/api/v3/klines"): md(h.klines, *kl),
        ("GET", "/api/v3/uiKlines"): md(h.klines, *kl),
        ("GET", "/api/v3/avgPrice"): md(h.avg_price, "symbol"),
        ("GET", "/api/v3/ticker/24hr"): md(
            h.ticker_24hr, "symbol", "symbols", "type", "symbolStatus"
        ),
        ("GET", "/api/v3/ticker/price"): md(h.ticker_price, "symbol", "symbols", "symbolStatus"),
        ("GET", "/api/v3/ticker/bookTicker"): md(
            h.book_ticker, "symbol", "symbols", "symbolStatus"
        ),
        ("POST", "/api/v3/order"): signed(h.new_order),
        ("POST", "/api/v3/order/test"): signed(h.test_order),
        ("GET", "/api/v3/order"): signed(h.query_order),
        ("DELETE", "/api/v3/order"): signed(h.cancel_order),
        ("GET", "/api/v3/openOrders"): signed(h.open_orders),
        ("DELETE", "/api/v3/openOrders"): signed(h.cancel_open_orders),
        ("GET", "/api/v3/allOrders"): signed(h.all_orders),
        ("GET", "/api/v3/account"): signed(h.account),
    }
    for market, prefix in (("usdm", "/fapi"), ("coinm", "/dapi")):
        sym = ("symbol", "pair") if market == "coinm" else ("symbol",)
        routes.update(
            {
                ("GET", f"{prefix}/v1/ping"): md(h.ping),
                ("GET", f"{prefix}/v1/time"): md(h.time),
                ("GET", f"{prefix}/v1/exchangeInfo"): md(h.exchange_info),
                ("GET", f"{prefix}/v1/depth"): md(h.depth, "symbol", "limit"),
                ("GET", f"{prefix}/v1/trades"): md(h.trades, "symbol", "limit"),
                ("GET", f"{prefix}/v1/historicalTrades"): md(
                    h.historical_trades, "symbol", "limit", "fromId"
                ),
                ("GET", f"{prefix}/v1/aggTrades"): md(
                    h.agg_trades, "symbol", "fromId", "startTime", "endTime", "limit"
                ),
                ("GET", f"{prefix}/v1/klines"): md(h.klines, *kl),
                ("GET", f"{prefix}/v1/ticker/price"): md(h.ticker_price, *sym),
                ("GET", f"{prefix}/v1/ticker/24hr"): md(h.ticker_24hr, *sym),
                ("GET", f"{prefix}/v1/ticker/bookTicker"): md(h.book_ticker, *sym),
                ("GET", f"{prefix}/v1/premiumIndex"): md(h.premium_index, *sym),
                ("GET", f"{prefix}/v1/fundingRate"): md(
                    h.funding_rate, "symbol", "startTime", "endTime", "limit"
                ),
                ("GET", f"{prefix}/v1/openInterest"): md(h.open_interest, "symbol"),
                ("POST", f"{prefix}/v1/order"): signed(h.new_order),
                ("POST", f"{prefix}/v1/order/test"): signed(h.test_order),
                ("GET", f"{prefix}/v1/order"): signed(h.query_order),
                ("DELETE", f"{prefix}/v1/order"): signed(h.cancel_order),
                ("GET", f"{prefix}/v1/openOrders"): signed(h.open_orders),
                ("DELETE", f"{prefix}/v1/allOpenOrders"): signed(h.cancel_open_orders),
                ("GET", f"{prefix}/v1/allOrders"): signed(h.all_orders),
            }
        )
    # No margin trading here: the margin pair lists are empty (ccxt's load_markets asks).
    routes[("GET", "/sapi/v1/margin/allPairs")] = _Endpoint(lambda r: [])
    routes[("GET", "/sapi/v1/margin/isolated/allPairs")] = _Endpoint(lambda r: [])
    routes[("GET", "/fapi/v2/ticker/price")] = md(h.ticker_price, "symbol")
    routes[("GET", "/fapi/v2/balance")] = signed(h.balance)
    routes[("GET", "/fapi/v3/balance")] = signed(h.balance)
    routes[("GET", "/fapi/v2/positionRisk")] = signed(h.position_risk)
    routes[("GET", "/fapi/v1/leverageBracket")] = signed(h.leverage_bracket)
    routes[("GET", "/fapi/v2/account")] = signed(h.futures_account)
    routes[("GET", "/fapi/v3/account")] = signed(h.futures_account)
    routes[("GET", "/dapi/v1/account")] = signed(h.futures_account)
    routes[("GET", "/fapi/v3/positionRisk")] = signed(h.position_risk)
    routes[("GET", "/dapi/v1/balance")] = signed(h.balance)
    routes[("GET", "/dapi/v1/positionRisk")] = signed(h.position_risk)
    return routes


class SimApp:
    """Request pipeline: weight -> faults -> auth -> handler -> headers."""

    def __init__(self, sim: SimExchange) -> None:
        self.sim = sim
        self.routes = _routes(_Handlers(sim))
        self._paths = {path for _, path in self.routes}

    def _reply(self, status: int, payload: Any, headers: Mapping[str, str]) -> Response:
        return Response(
            _dumps(payload),
            status_code=status,
            headers=dict(headers),
            media_type="application/json",
        )

    def _error(self, exc: ApiError, headers: dict[str, str]) -> Response:
        headers.update(exc.headers)
        return self._reply(exc.status, {"code": exc.code, "msg": exc.msg}, headers)

    async def endpoint(self, request: Request) -> Response:
        sim = self.sim
        scope = request.scope
        method: str = scope["method"]
        path: str = scope["path"]
        if path.startswith("/data/"):
            # Binance's archive host (data.binance.vision): no weight, no key, no faults.
            return await sim.archives.respond(method, path, sim.clock.now_ms())
        try:
            market = market_for_path(path).value
        except ValueError:
            return self._reply(404, {"code": -1000, "msg": "Unknown path."}, {})
        now = sim.clock.now_ms()
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        query: bytes = scope.get("query_string", b"")
        body = b"" if method == "GET" else await request.body()
        headers: dict[str, str] = {}
        params_error: ApiError | None = None
        try:
            params = parse_params(query, body)
        except ApiError as exc:
            params, params_error = {}, exc
        endpoint = find(market, method, path)
        weight = endpoint.request_weight(params)
        limiter = sim.limiter
        try:
            used = limiter.charge(market, ip, weight, now)
        except ApiError as exc:
            return self._error(exc, headers)
        headers[limiter.header] = str(used)
        ep = self.routes.get((method, path))
        if ep is None:
            if path in self._paths:
                return self._reply(405, {"code": -1000, "msg": "Method not allowed."}, headers)
            if self.sim.log_unknown_paths:
                print(f"simulator: unknown path {method} {path}", flush=True)
            return self._reply(404, {"code": -1000, "msg": "Unknown path."}, headers)
        placement = endpoint.counts_as_order
        is_order = placement or (method in ("POST", "DELETE") and path.endswith("/order"))
        elapsed_s = (now - sim.clock.initial_ms()) / 1000.0
        decision = sim.fault_injector.decide(path, is_order, placement, elapsed_s)
        if decision.drop:
            return _DropResponse()
        if decision.error:
            return self._reply(503, {"code": -1006, "msg": _STATUS_UNKNOWN}, headers)
        if decision.rate_limited is not None:
            retry = {"Retry-After": f"{decision.rate_limited:g}"}
            msg = "Too much request weight used; please use WebSocket Streams for live updates."
            return self._reply(429, {"code": -1003, "msg": msg}, {**headers, **retry})
        if decision.error_in_200:
            msg = "An unknown error occurred while processing the request."
            return self._reply(200, {"code": -1000, "msg": msg}, headers)
        ctx = Ctx(method, path, market, params, now)
        try:
            if params_error is not None:
                raise params_error
            if ep.allowed is not None and not params.keys() <= ep.allowed:
                read = len(params.keys() & ep.allowed)
                raise ApiError(
                    -1104,
                    f"Not all sent parameters were read; read '{read}' parameter(s) but was sent "
                    f"'{len(params)}'.",
                )
            ts = recv = 0.0
            if ep.signed:
                ctx.account, ts, recv = self._authenticate(ctx, query, body, request, now)
            if decision.latency:
                await trio.sleep(decision.latency)
                ctx.now_ms = sim.clock.now_ms()
                if ep.signed and market == "spot" and ctx.now_ms - ts > recv:
                    # Spot's second, pre-engine recvWindow check (since 2025-06).
                    raise ApiError(
                        -1021, "Timestamp for this request is outside of the recvWindow."
                    )
            if placement:
                assert ctx.account is not None
                headers.update(sim.order_counter.count(ctx.account.config.name, market, ctx.now_ms))
            result = ep.handler(ctx)
        except ApiError as exc:
            return self._error(exc, headers)
        if endpoint.free_on_success:
            headers[limiter.header] = str(limiter.refund(market, ip, weight, ctx.now_ms))
        if decision.lose_response and placement:
            return _DropResponse()
        if decision.garbage is not None:
            return _garbage(decision.garbage, _dumps(result), headers)
        if decision.slow_response:
            await trio.sleep(decision.slow_response)
        if decision.drip_interval:
            return _DripResponse(_dumps(result), 200, headers, decision.drip_interval)
        return self._reply(200, result, headers)

    def _authenticate(
        self, r: Ctx, query: bytes, body: bytes, request: Request, now: int
    ) -> tuple[Account, float, float]:
        """API key, then timestamp/recvWindow syntax, then signature, then timing."""
        api_key = request.headers.get("x-mbx-apikey", "")
        if not valid_key_format(api_key):
            raise ApiError(-2014, "API-key format invalid.", status=401)
        entry = self.sim.keys.get(api_key)
        if entry is None:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        raw_ts = r.params.get("timestamp", "")
        if not raw_ts.isdigit():
            raise mandatory("timestamp")
        ts = float(raw_ts)
        if ts >= 1e15:  # microseconds (spot, since 2024-12)
            ts /= 1000.0
        raw_recv = r.params.get("recvWindow")
        recv = 5000.0
        if raw_recv is not None:
            ok = _RECV_SPOT.match(raw_recv) if r.market == "spot" else raw_recv.isdigit()
            if not ok:
                raise mandatory("recvWindow")
            recv = float(raw_recv)
            if recv > 60000:
                raise ApiError(-1131, "recvWindow must be less than 60000")
        signature = r.params.get("signature")
        if not signature:
            raise mandatory("signature")
        if not entry.verify(payload_without_signature(query, body), signature):
            raise ApiError(-1022, "Signature for this request is not valid.")
        if ts >= now + 1000:
            raise ApiError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - ts > recv:
            raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return self.sim.accounts_by_name[entry.account], ts, recv


def build_app(sim: SimExchange) -> Starlette:
    """The Starlette application serving ``sim``."""
    pipeline = SimApp(sim)
    return Starlette(
        routes=[Route("/{path:path}", pipeline.endpoint, methods=["GET", "POST", "PUT", "DELETE"])]
    )
