"""The market-data handlers: general, order book, trades, klines, tickers and futures data.

Each handler takes the request (``Ctx``) and returns the JSON-able answer in the shape of the
request's market; routes.py maps them onto the registry's endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..endpoints import KLINE_INTERVALS
from .accounts import MARGIN_ASSETS
from .errors import ApiError, mandatory
from .market import MarketData, Series, Trade, interval_bounds, interval_seconds
from .params import Ctx, RawJSON, SymbolLookup, int_param, one_or_list, page_limit
from .symbols import SymbolSpec, fixed

__all__ = ["MarketHandlers", "TickerHandlers"]

_DAY_MS = 86_400_000
_COINM_KLINE_SPAN_MS = 200 * _DAY_MS
#: openInterestHist's periods, in seconds; Binance serves the latest 30 days only.
_OI_PERIODS = {
    name: int(name[:-1]) * {"m": 60, "h": 3600, "d": 86400}[name[-1]]
    for name in ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
}
_OI_HISTORY_S = 30 * 86400
_INTERVALS_OF = {market.value: frozenset(names) for market, names in KLINE_INTERVALS.items()}


class MarketHandlers:
    """General endpoints, the order book, trades and klines."""

    def __init__(
        self,
        market_data: MarketData,
        symbols: SymbolLookup,
        rate_limits: Callable[[str], list[dict[str, Any]]],
    ) -> None:
        self.md = market_data
        self.symbols = symbols
        self.rate_limits = rate_limits

    # -- general ---------------------------------------------------------------------------

    def ping(self, r: Ctx) -> Any:
        return {}

    def time(self, r: Ctx) -> Any:
        return {"serverTime": r.now_ms}

    def system_status(self, r: Ctx) -> Any:
        """GET /sapi/v1/system/status: never under maintenance."""
        return {"status": 0, "msg": "normal"}

    def exchange_info(self, r: Ctx) -> Any:
        rate_limits = self.rate_limits(r.market)
        if r.market == "spot":
            rate_limits.append(
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 300000,
                }
            )
            specs = [s.spec for s in self.symbols.selected(r)]
            return {
                "timezone": "UTC",
                "serverTime": r.now_ms,
                "rateLimits": rate_limits,
                "exchangeFilters": [],
                "symbols": [s.exchange_info_entry() for s in specs],
            }
        # Every margin asset Binance lists (USDⓈ-M), or the coin of every contract (COIN-M).
        listed = (s.margin_asset for s in self.symbols.specs[r.market])
        margin_assets = dict.fromkeys(
            (*MARGIN_ASSETS, *listed) if r.market == "usdm" else listed
        )
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
            "symbols": [s.exchange_info_entry() for s in self.symbols.specs[r.market]],
        }

    # -- order book and trades -------------------------------------------------------------

    def depth(self, r: Ctx) -> Any:
        series = self.symbols.series(r)
        spot = r.market == "spot"
        limit = page_limit(r, 100 if spot else 500)
        bids, asks = series.book(r.now_ms, limit)
        spec = series.spec
        out: dict[str, Any] = {"lastUpdateId": series.update_id(r.now_ms // 1000)}
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
        series = self.symbols.series(r)
        limit = page_limit(r, 500)
        rows = series.recent_trades(r.now_ms // 1000, limit)
        return [self._trade_row(series.spec, t) for t in rows]

    def historical_trades(self, r: Ctx) -> Any:
        series = self.symbols.series(r)
        limit = page_limit(r, 500)
        from_id = int_param(r.params, "fromId")
        now_s = r.now_ms // 1000
        if from_id is None:
            rows = series.recent_trades(now_s, limit)
        else:
            rows = series.trades_from_id(from_id, now_s, limit)
        return [self._trade_row(series.spec, t) for t in rows]

    def agg_trades(self, r: Ctx) -> Any:
        series = self.symbols.series(r)
        limit = page_limit(r, 500)
        from_id = int_param(r.params, "fromId")
        start = int_param(r.params, "startTime")
        end = int_param(r.params, "endTime")
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
        series = self.symbols.series(r)
        interval = r.params.get("interval")
        if not interval:
            raise mandatory("interval")
        if interval not in _INTERVALS_OF[r.market]:
            raise ApiError(-1120, "Invalid interval.")
        spot = r.market == "spot"
        limit = page_limit(r, 500)
        start = int_param(r.params, "startTime")
        end = int_param(r.params, "endTime")
        if start is not None and end is not None and start > end:
            if spot:
                return []
            raise ApiError(-1023, "Start time is greater than end time.")
        newest = start is None
        if r.market == "coinm":
            if start is not None and end is not None:
                if end - start > _COINM_KLINE_SPAN_MS:
                    raise ApiError(-4088, "Maximum time interval is 200 days.")
                newest = True
            elif start is not None:
                end = start + _COINM_KLINE_SPAN_MS
            elif end is not None:
                start = end - _COINM_KLINE_SPAN_MS
        now_s = r.now_ms // 1000
        opens = _kline_opens(series, interval, start, end, now_s, limit, newest)
        return RawJSON(self.md.kline_page(series, interval, opens, now_s))


class TickerHandlers:
    """Tickers, average price and the futures' premium index, funding and open interest."""

    def __init__(self, symbols: SymbolLookup) -> None:
        self.symbols = symbols

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
        o, h, low, last, v, q = c[:6]
        ps, qs = spec.price_str, spec.qty_str
        trades = series.recent_trades(now_s, 1)
        last_id = series.first_id(now_s) - 1
        first_id = series.first_id(max(now_s - 86400, series.onboard_s))
        count = last_id - first_id + 1
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
                "firstId": first_id if count > 0 else -1,
                "lastId": last_id if count > 0 else -1,
                "count": max(count, 0),
            }
        )
        return out

    def ticker_24hr(self, r: Ctx) -> Any:
        kind = r.params.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise ApiError(-1100, "Illegal characters found in parameter 'type'.")
        rows = [self._ticker24(s, r.now_ms, kind == "FULL") for s in self.symbols.selected(r)]
        return one_or_list(r, rows)

    def ticker_price(self, r: Ctx) -> Any:
        now_s = r.now_ms // 1000
        rows = []
        for s in self.symbols.selected(r):
            row: dict[str, Any] = {"symbol": s.spec.symbol}
            if r.market == "coinm":
                row["ps"] = s.spec.pair
            row["price"] = s.spec.price_str(s.price_at(now_s))
            if r.market != "spot":
                row["time"] = r.now_ms
            rows.append(row)
        return one_or_list(r, rows)

    def book_ticker(self, r: Ctx) -> Any:
        rows = []
        for s in self.symbols.selected(r):
            spec = s.spec
            bids, asks = s.book(r.now_ms, 1)
            row: dict[str, Any] = {}
            if r.market != "spot":
                row["lastUpdateId"] = s.update_id(r.now_ms // 1000)
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
        return one_or_list(r, rows)

    def avg_price(self, r: Ctx) -> Any:
        series = self.symbols.series(r)
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
        now_s = r.now_ms // 1000
        rows = []
        for s in self.symbols.selected(r):
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
        return one_or_list(r, rows)

    def funding_rate(self, r: Ctx) -> Any:
        if r.market == "coinm" or "symbol" in r.params:
            targets = [self.symbols.series(r)]
        else:
            targets = [
                s
                for s in self.symbols.all_series(r.market)
                if s.spec.contract_type == "PERPETUAL"
            ]
        limit = page_limit(r, 100)
        start = int_param(r.params, "startTime")
        end = int_param(r.params, "endTime")
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
        series = self.symbols.series(r)
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

    def open_interest_hist(self, r: Ctx) -> Any:
        """GET /futures/data/openInterestHist: open interest at each period's start, from
        the same deterministic open interest as ``openInterest``, the latest 30 days."""
        series = self.symbols.series(r)
        period = r.params.get("period")
        if not period:
            raise mandatory("period")
        size = _OI_PERIODS.get(period)
        if size is None:
            raise ApiError(-1120, "Invalid interval.")
        limit = page_limit(r, 30)
        start = int_param(r.params, "startTime")
        end = int_param(r.params, "endTime")
        if start is not None and end is not None and start > end:
            raise ApiError(-1023, "Start time is greater than end time.")
        now_s = r.now_ms // 1000
        spec = series.spec
        lo = max(now_s - _OI_HISTORY_S, series.onboard_s)
        hi = now_s if end is None else min(now_s, end // 1000)
        if start is not None:
            lo = max(lo, -(-start // 1000))
        first, last = -(-lo // size), hi // size
        count = max(0, min(limit, last - first + 1))
        ks = range(first, first + count) if start is not None else range(last - count + 1, last + 1)
        out = []
        for k in ks:
            t_s = k * size
            oi = series.open_interest(t_s)
            value = oi * series.price_at(t_s)
            out.append(
                {
                    "symbol": spec.symbol,
                    "sumOpenInterest": fixed(_to_8(oi, spec.qty_decimals), 8),
                    "sumOpenInterestValue": fixed(
                        _to_8(value, spec.price_decimals + spec.qty_decimals), 8
                    ),
                    "timestamp": t_s * 1000,
                }
            )
        return out


def _to_8(units: int, decimals: int) -> int:
    """A count of ``10**-decimals`` units as a count of ``10**-8`` units (rounded down)."""
    if decimals <= 8:
        factor: int = 10 ** (8 - decimals)
        return units * factor
    divisor: int = 10 ** (decimals - 8)
    return units // divisor


def _kline_opens(
    series: Series,
    interval: str,
    start: int | None,
    end: int | None,
    now_s: int,
    limit: int,
    newest: bool,
) -> Sequence[int]:
    """Open times (s) of the page: up to ``limit`` candles in [start, end] ms, the newest
    ones when ``newest``, never before the symbol's first candle nor after the open one."""
    lo = interval_bounds(interval, series.onboard_s)[0]
    last_open = interval_bounds(interval, now_s)[0]
    if start is not None:
        s = -(-start // 1000)
        o, c = interval_bounds(interval, s)
        lo = max(lo, o if o == s else c)
    hi = last_open if end is None else min(last_open, interval_bounds(interval, end // 1000)[0])
    size = interval_seconds(interval)
    if size:  # lo and hi are on the interval's grid
        count = max(0, min(limit, (hi - lo) // size + 1))
        first = hi - (count - 1) * size if newest else lo
        return range(first, first + count * size, size)
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
    return months
