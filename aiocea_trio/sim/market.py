"""Deterministic market data: candles, trades, depth and tickers as pure functions of time.

How it stays consistent and cheap:

- Prices are integer ticks, volumes integer lot steps (quote volume: 1e-8 units), so aggregates
  are exact.
- Each day of a symbol is generated top down. The day's open and close come from a smooth
  closed-form "anchor" path (octaves of hashed value noise over days, shared by instruments with
  the same base asset, e.g. spot and perpetual BTC), so no cumulative sums over history are ever
  needed. Inside the day, a seeded Brownian bridge gives the 25 hour boundaries; each hour is a
  bridge of 60 minutes constrained to the hour's range, each minute a bridge of 60 seconds. One
  child always reaches the parent's high and one its low, and additive fields (volume, quote
  volume, trades, taker volumes) are split with exact integer arithmetic, so every candle is the
  exact aggregate of its children: a 1h candle equals its sixty 1m candles, a 1m its sixty 1s.
- Any candle (1s .. 1M, calendar months, Monday weeks) is an aggregate of at most a few dozen
  aligned day/hour/minute/second blocks; generated blocks live in bounded LRU caches, so a year of
  1m klines or 1M candles since listing serve in milliseconds per request.
- Time only decides what is *visible*: the open candle aggregates the completed seconds so far and
  closes at the last trade price, which is the open of the current second. Depth and tickers
  are built around the last price.

Public trades are generated per second from that second's candle, as takers sweeping the book:

- The second has exactly its candle's trade count; the price path starts at the open, ends at
  the close and reaches the high and the low (with 4 fills or more), quantities sum to its
  volume. The path is cut into runs moving one way; each run is one taker order, all its fills
  in one millisecond (its own, up to 1,000 takers a second): a climbing run is a buyer taking
  the asks (``isBuyerMaker`` false), a falling one a seller hitting the bids, a lone fill either
  side. So a taker's fills never move back, and no two fills of one taker share a price: an
  aggregate trade is one fill (``aggTrades`` ids = trade ids). When a second has both sides,
  the buy takers' quantities sum to the candle's taker buy volume.
- Ids are consecutive per instrument from 0 at the listing: the id of the first trade of second
  ``s`` is the count of trades before it, read off the hierarchy: cumulative day counts from the
  listing day (each day's count is one of its first draws, so a day is counted without building
  its hours; computed once per seed and spec and shared), plus the counts of the earlier hours of
  its day, minutes of its hour and seconds of its minute (at most 144 cached candles). The
  reverse, id -> second, bisects the day counts and walks the same 24 + 60 + 60 children. The
  24hr ticker's ``firstId``/``lastId``/``count`` come from the same mapping.

The book (``depth.py``) evolves incrementally: a hashed grid of deep levels that mostly persist,
plus each second's first taker's levels near the spread. Simplifications: a
second of 1 to 3 trades may not reach its candle's high and low (its klines stay as generated).
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from random import Random
from typing import Any

from ..endpoints import INTERVAL_MS, KLINE_INTERVALS
from ..markets import Market
from .depth import BookModel, Frame, Levels
from .depth import mix64 as _mix
from .symbols import SymbolSpec, fixed

__all__ = [
    "Candle",
    "KlineText",
    "MarketData",
    "Series",
    "Trade",
    "fixed_format",
    "interval_bounds",
    "interval_seconds",
]

# (open, high, low, close, volume, quote volume, trades, taker buy volume, taker buy quote volume)
Candle = tuple[int, int, int, int, int, int, int, int, int]
# (id, time ms, price ticks, qty units, is buyer maker)
Trade = tuple[int, int, int, int, bool]

_SIZES = (1, 60, 3600, 86400)
#: Grid points per side of the true book: the market's largest REST depth limit, so the
#: deepest snapshot is the whole book.
BOOK_BAND = {"spot": 5000, "usdm": 1000, "coinm": 1000}
_M64 = (1 << 64) - 1
_OCTAVES = ((1.0, 0.015), (4.0, 0.03), (16.0, 0.06), (64.0, 0.12), (256.0, 0.2), (1024.0, 0.3))

# Seconds per candle of every kline interval, from the registry's table (0: ``1M``, calendar
# months); a dict so the hot paths pay one lookup.
_SECONDS: dict[str, int] = {
    name: INTERVAL_MS.get(name, 0) // 1000 for name in KLINE_INTERVALS[Market.SPOT]
}


def interval_seconds(interval: str) -> int:
    """Seconds in one ``interval`` candle; 0 for ``1M`` (months vary). KeyError if unknown."""
    return _SECONDS[interval]


#: Cumulative day trade counts per (path key, symbol spec); see ``Series._day_counts``.
_DAY_CUMS: dict[tuple[int, str], list[int]] = {}

_WEEK_OFFSET = 4 * 86400  # 1970-01-05 was the first Monday


def _key(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _split(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` into parts proportional to ``weights`` that sum exactly to ``total``.

    Largest-remainder rounding: each part is the floor or the ceiling of its exact share.
    """
    n = len(weights)
    if total <= 0:
        return [0] * n
    s = sum(weights)
    if s <= 0:
        weights = [1] * n
        s = n
    qr = [divmod(total * w, s) for w in weights]
    parts = [x[0] for x in qr]
    left = total - sum(parts)
    if left:
        for i in sorted(range(n), key=lambda i: qr[i][1], reverse=True)[:left]:
            parts[i] += 1
    return parts


def _bridge(rng: Random, a: int, b: int, n: int, sigma: float, lo: int, hi: int) -> list[int]:
    """A Brownian bridge from ``a`` to ``b`` in ``n`` steps, rounded and clamped to [lo, hi]."""
    rand = rng.random
    walk = [0.0]
    w = 0.0
    step = 2.0 * sigma
    for _ in range(n):
        w += (rand() + rand() + rand() - 1.5) * step  # ~ normal(0, sigma)
        walk.append(w)
    end = walk[n]
    out = [a]
    for k in range(1, n):
        f = k / n
        x = round(a + (b - a) * f + walk[k] - end * f)
        out.append(lo if x < lo else hi if x > hi else x)
    out.append(b)
    return out


class _LRU:
    """A bounded mapping (least recently used entries are dropped)."""

    __slots__ = ("_data", "_size")

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._size = size

    def get(self, key: tuple[int, ...]) -> Any:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[int, ...], value: Any) -> None:
        self._data[key] = value
        if len(self._data) > self._size:
            self._data.popitem(last=False)


class _Caches:
    """Caches shared by all series, so memory stays bounded however many symbols exist."""

    def __init__(self) -> None:
        self.days = _LRU(256)  # day -> (candle, 24 hour candles)
        self.day_candles = _LRU(65536)
        self.children = _LRU(1024)  # (level, idx) -> 60 child candles
        self.trades = _LRU(4096)
        self.klines = _LRU(20000)  # closed multi-block candles
        self.fragments = _LRU(4096)  # (sid, level, parent) -> JSON rows of its closed children
        self.books = _LRU(256)  # (sid, second, limit) -> (bids, asks)
        self.frames = _LRU(256)  # (sid, second) -> the book's Frame


def interval_bounds(interval: str, t_s: int) -> tuple[int, int]:
    """``(open, close)`` seconds (close exclusive) of the ``interval`` candle containing ``t_s``."""
    size = _SECONDS[interval]
    if size:
        offset = _WEEK_OFFSET if interval == "1w" else 0
        start = (t_s - offset) // size * size + offset
        return start, start + size
    tm = calendar.timegm
    y, m = _year_month(t_s)
    start = tm((y, m, 1, 0, 0, 0))
    y2, m2 = (y + 1, 1) if m == 12 else (y, m + 1)
    return start, tm((y2, m2, 1, 0, 0, 0))


def _year_month(t_s: int) -> tuple[int, int]:
    days = t_s // 86400
    # civil-from-days (Howard Hinnant), avoids datetime for speed and range
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y, m


# Over 300 lines on purpose: every method reads the same day > hour > minute > second block
# hierarchy and its caches; split, the halves would share all their private state.
class Series:
    """The deterministic history of one instrument (a pure function of seed and time)."""

    def __init__(self, seed: int, spec: SymbolSpec, caches: _Caches, sid: int) -> None:
        self.spec = spec
        self._caches = caches
        self._sid = sid
        # The price path is shared by instruments on the same anchor and basis (spot and
        # perpetual BTC move together); trades, books and funding are per instrument.
        self._key = _key(seed, "path", spec.anchor, spec.basis)
        self._sym_key = _key(seed, spec.market, spec.symbol)
        self._anchor_key = _key(seed, "anchor", spec.anchor)
        self._tick = 10.0**-spec.price_decimals
        self._vol_units = spec.daily_volume * 10**spec.qty_decimals
        self.onboard_s = spec.onboard_ms // 1000
        if spec.market == "coinm":
            self._qmul = spec.contract_size * 10 ** (8 + spec.price_decimals)
        else:
            self._qmul = 10 ** (8 - spec.qty_decimals - spec.price_decimals)
        self.book_model = BookModel(
            self,
            _key(seed, "book", spec.market, spec.symbol),
            base_qty=max(1.0, self._vol_units / 40000.0),
            scale=max(1.0, spec.price * 10**spec.price_decimals / 50000.0) * 3.0,
            band=BOOK_BAND[spec.market],
        )

    # -- the generator ---------------------------------------------------------------------

    def _rng(self, level: int, idx: int) -> Random:
        key = self._key if level <= 3 else self._sym_key
        return Random((key << 70) | (level << 64) | (idx & _M64))

    def _noise(self, octave: int, i: int) -> float:
        h = _mix(self._anchor_key ^ _mix((octave << 56) ^ (i & 0xFFFFFFFFFFFFFF)))
        return (h >> 11) * (2.0 / 9007199254740992.0) - 1.0

    def anchor_ticks(self, day: int) -> int:
        """The price (ticks) at 00:00 UTC of ``day``: smooth value noise, no history needed."""
        x = 0.0
        for k, (scale, amp) in enumerate(_OCTAVES):
            pos = day / scale
            i = math.floor(pos)
            f = pos - i
            a, b = self._noise(k, i), self._noise(k, i + 1)
            x += amp * (a + (b - a) * f * f * (3.0 - 2.0 * f))
        price = self.spec.price * math.exp(x) * (1.0 + self.spec.basis)
        return max(1, round(price / self._tick))

    def _quote(self, volume: int, price: float) -> int:
        if self.spec.market == "coinm":
            return int(volume * self._qmul // max(price, 1.0))
        return int(volume * price * self._qmul)

    def _children(self, rng: Random, parent: Candle, pts: list[int], wig: float) -> list[Candle]:
        _, h, low, _, v, q, n, tb, tq = parent
        rand = rng.random
        count = len(pts) - 1
        highs: list[int] = []
        lows: list[int] = []
        weights: list[int] = []
        jh = jl = 0
        top_max = -1
        bot_min = h + 1
        for i in range(count):
            a, b = pts[i], pts[i + 1]
            top, bot = (a, b) if a >= b else (b, a)
            if top > top_max:
                top_max, jh = top, i
            if bot < bot_min:
                bot_min, jl = bot, i
            u = rand()
            hi = top + int(u * u * wig)
            u = rand()
            lo = bot - int(u * u * wig)
            hi = h if hi > h else hi
            lo = low if lo < low else lo
            highs.append(hi)
            lows.append(lo)
            weights.append(int((0.3 + rand()) * (1.0 + (hi - lo) / (wig + 1.0)) * 1e6))
        highs[jh] = h
        lows[jl] = low
        vs = _split(v, weights)
        ns = _split(n, weights)
        if self.spec.market == "coinm":
            wq = [vs[i] * (1 << 40) // (highs[i] + lows[i]) for i in range(count)]
        else:
            wq = [vs[i] * (highs[i] + lows[i]) for i in range(count)]
        qs = _split(q, wq)
        tbs = _split(tb, vs)
        tqs = _split(tq, qs)
        return [
            (pts[i], highs[i], lows[i], pts[i + 1], vs[i], qs[i], ns[i], tbs[i], tqs[i])
            for i in range(count)
        ]

    def _day_head(self, rng: Random, o: int, c: int) -> tuple[list[int], float, int, int, int, int]:
        """The first draws of a day: (hour points, wiggle, high, low, volume, trades)."""
        rand = rng.random
        mid = (o + c) / 2.0
        vol = 0.012 + 0.028 * rand() ** 2
        sigma = mid * vol / math.sqrt(24.0) * 0.8
        pts = _bridge(rng, o, c, 24, sigma, 1, 1 << 62)
        wig = sigma * 0.6
        h = max(pts) + int(rand() * wig)
        low = max(1, min(pts) - int(rand() * wig))
        activity = (0.6 + 0.8 * rand()) * (1.0 + 15.0 * (h - low) / mid)
        v = max(1, int(self._vol_units * activity))
        n = max(1, min(int(self.spec.daily_trades * activity), v // 2, 86400 * 200))
        return pts, wig, h, low, v, n

    def _day(self, day: int) -> tuple[Candle, list[Candle]]:
        key = (self._sid, day)
        hit = self._caches.days.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        rng = self._rng(3, day)
        o, c = self.anchor_ticks(day), self.anchor_ticks(day + 1)
        pts, wig, h, low, v, n = self._day_head(rng, o, c)
        rand = rng.random
        q = self._quote(v, (o + c + h + low) / 4.0)
        tb = int(v * (0.42 + 0.16 * rand()))
        tq = q * tb // v
        candle: Candle = (o, h, low, c, v, q, n, tb, tq)
        result = (candle, self._children(rng, candle, pts, wig))
        self._caches.days.put(key, result)
        self._caches.day_candles.put(key, candle)
        return result

    def _sub(self, level: int, idx: int) -> list[Candle]:
        """The 60 children (minutes of an hour: level 2; seconds of a minute: level 1)."""
        key = (self._sid, level, idx)
        hit = self._caches.children.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        parent = self.block(level, idx)
        o, h, low, c = parent[0], parent[1], parent[2], parent[3]
        rng = self._rng(level, idx)
        sigma = 0.6 * max(h - low, 1) / 7.746  # sqrt(60)
        pts = _bridge(rng, o, c, 60, sigma, low, h)
        out = self._children(rng, parent, pts, sigma * 0.6)
        self._caches.children.put(key, out)
        return out

    def block(self, level: int, idx: int) -> Candle:
        """The aligned candle ``idx`` of a level (0 second, 1 minute, 2 hour, 3 day)."""
        if level == 0:
            return self._sub(1, idx // 60)[idx % 60]
        if level == 1:
            return self._sub(2, idx // 60)[idx % 60]
        if level == 2:
            return self._day(idx // 24)[1][idx % 24]
        hit = self._caches.day_candles.get((self._sid, idx))
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        return self._day(idx)[0]

    def children(self, level: int, idx: int) -> list[Candle]:
        """The child candles of block (level, idx), level >= 1."""
        if level == 3:
            return self._day(idx)[1]
        return self._sub(level, idx)

    # -- aggregation -----------------------------------------------------------------------

    @staticmethod
    def blocks(start: int, end: int) -> Iterator[tuple[int, int]]:
        """Decompose seconds [start, end) into aligned (level, idx) blocks, in time order."""
        t = start
        while t < end:
            if t % 86400 == 0 and t + 86400 <= end:
                yield 3, t // 86400
                t += 86400
            elif t % 3600 == 0 and t + 3600 <= end:
                yield 2, t // 3600
                t += 3600
            elif t % 60 == 0 and t + 60 <= end:
                yield 1, t // 60
                t += 60
            else:
                yield 0, t
                t += 1

    def range_candle(self, start: int, end: int) -> Candle | None:
        """The aggregate candle of seconds [start, end), or None when empty."""
        result: Candle | None = None
        for level, idx in self.blocks(start, end):
            b = self.block(level, idx)
            if result is None:
                result = b
            else:
                o, h, low, _, v, q, n, tb, tq = result
                result = (
                    o,
                    h if h >= b[1] else b[1],
                    low if low <= b[2] else b[2],
                    b[3],
                    v + b[4],
                    q + b[5],
                    n + b[6],
                    tb + b[7],
                    tq + b[8],
                )
        return result

    def price_at(self, t_s: int) -> int:
        """The last trade price (ticks) at the start of second ``t_s`` (its open)."""
        return self.block(0, t_s)[0]

    def candle(self, interval: str, open_s: int, now_s: int) -> Candle:
        """The ``interval`` candle opening at ``open_s`` as seen at second ``now_s``.

        Closed candles are immutable (and cached); the open one covers the completed seconds.
        """
        _, close_s = interval_bounds(interval, open_s)
        if close_s <= now_s:
            size = close_s - open_s
            if size in _SIZES and open_s % size == 0:
                return self.block(_SIZES.index(size), open_s // size)
            key = (self._sid, _SECONDS[interval], open_s)
            hit = self._caches.klines.get(key)
            if hit is None:
                hit = self.range_candle(open_s, close_s)
                self._caches.klines.put(key, hit)
            return hit  # type: ignore[no-any-return]
        done = self.range_candle(open_s, now_s)
        if done is None:
            p = self.price_at(now_s)
            return (p, p, p, p, 0, 0, 0, 0, 0)
        return done

    def first_cross(self, start: int, end: int, price: int, buy: bool) -> int | None:
        """The first second in [start, end) whose range reaches ``price`` (low <= price for a
        resting buy, high >= price for a sell), or None."""
        for level, idx in self.blocks(start, end):
            found = self._cross_in(level, idx, price, buy)
            if found is not None:
                return found
        return None

    def _cross_in(self, level: int, idx: int, price: int, buy: bool) -> int | None:
        b = self.block(level, idx)
        if not (b[2] <= price if buy else b[1] >= price):
            return None
        if level == 0:
            return idx
        fan = 24 if level == 3 else 60
        for i, child in enumerate(self.children(level, idx)):
            if child[2] <= price if buy else child[1] >= price:
                found = self._cross_in(level - 1, idx * fan + i, price, buy)
                if found is not None:
                    return found
        return None

    # -- trades and book -------------------------------------------------------------------

    def _day_counts(self, last_day: int) -> list[int]:
        """Cumulative trade counts of whole days from the listing day: ``[0, n(d0), n(d0) +
        n(d1), ...]`` up to ``last_day`` included (shared by series of the same seed and spec,
        extended lazily; only the day's first draws are made, not its hours)."""
        key = (self._key, repr(self.spec))
        cums = _DAY_CUMS.get(key)
        if cums is None:
            cums = _DAY_CUMS[key] = [0]
        first = self.onboard_s // 86400
        if len(cums) <= last_day - first + 1:
            day = first + len(cums) - 1
            o = self.anchor_ticks(day)
            total = cums[-1]
            while len(cums) <= last_day - first + 1:
                c = self.anchor_ticks(day + 1)
                hit = self._caches.day_candles.get((self._sid, day))
                n = hit[6] if hit is not None else self._day_head(self._rng(3, day), o, c)[5]
                total += n
                cums.append(total)
                day += 1
                o = c
        return cums

    def _count_before(self, s: int) -> int:
        """Trades of the listing day's start up to second ``s`` (excluded)."""
        day = s // 86400
        cums = self._day_counts(day)
        total = cums[day - self.onboard_s // 86400]
        total += sum(x[6] for x in self._day(day)[1][: s % 86400 // 3600])
        total += sum(x[6] for x in self._sub(2, s // 3600)[: s % 3600 // 60])
        return total + sum(x[6] for x in self._sub(1, s // 60)[: s % 60])

    def first_id(self, s: int) -> int:
        """The id of the first trade at or after second ``s`` (the count of trades before it)."""
        if s <= self.onboard_s:
            return 0
        return self._count_before(s) - self._count_before(self.onboard_s)

    def second_of_id(self, trade_id: int) -> tuple[int, int]:
        """``(second, id of its first trade)`` of the second holding trade ``trade_id``, found
        by bisecting the day counts, then walking 24 hours, 60 minutes and 60 seconds."""
        target = max(trade_id, 0) + self._count_before(self.onboard_s)
        first = self.onboard_s // 86400
        cums = self._day_counts(first)
        while cums[-1] <= target:
            cums = self._day_counts(first + 2 * len(cums))
        i = bisect.bisect_right(cums, target) - 1
        rem = target - cums[i]
        s = (first + i) * 86400
        for level, fan, size in ((3, 24, 3600), (2, 60, 60), (1, 60, 1)):
            kids = self.children(level, s // (size * fan))
            for k in range(fan):
                n = kids[k][6]
                if rem < n:
                    break
                rem -= n
                s += size
        return s, max(trade_id, 0) - rem

    def second_trades(self, s: int, first_id: int | None = None) -> list[Trade]:
        """The trades of second ``s`` (its 1s candle's count, first at its open, last at its
        close, volumes summing to its volume), ids from ``first_id`` (computed if None)."""
        if s < self.onboard_s:
            return []
        key = (self._sid, s)
        hit = self._caches.trades.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        if first_id is None:
            first_id = self.first_id(s)
        trades = self._trades(s, self.block(0, s), first_id)
        self._caches.trades.put(key, trades)
        return trades

    def trades_by_second(self, start: int, end: int) -> Iterator[list[Trade]]:
        """The trades of each second in [start, end) from the listing on, uncached (archives
        read whole days once)."""
        first = max(start, self.onboard_s)
        fid = self.first_id(first)
        for minute in range(first // 60, -(-end // 60)):
            seconds = self.children(1, minute)
            base = minute * 60
            for k in range(max(first - base, 0), min(end - base, 60)):
                yield self._trades(base + k, seconds[k], fid)
                fid += seconds[k][6]

    # Over 50 lines: one pass over the second's fills (prices, takers, sizes, times) sharing
    # its random stream; split, the parts would pass the same five lists around.
    def _trades(self, s: int, candle: Candle, first_id: int) -> list[Trade]:
        """The second's fills as takers sweeping the book: the price path is cut into runs
        moving one way; each run is one taker (a buy when it climbs, a sell when it falls,
        either for a lone fill), all its fills in one millisecond."""
        o, h, low, c, v, _, n, tb, _ = candle
        if n <= 0:
            return []
        rng = self._rng(4, s)
        rand = rng.random
        if n == 1:
            prices = [c]
        else:
            span = h - low
            prices = [o] + [low + int(rand() * (span + 1)) for _ in range(n - 2)] + [c]
            if n >= 4:  # the high and the low at two distinct inner fills
                i = 1 + int(rand() * (n - 2))
                k = 1 + int(rand() * (n - 3))
                prices[i] = h
                prices[k + 1 if k >= i else k] = low
            elif n == 3:  # reach the extreme the open and close do not
                prices[1] = low if min(o, c) > low else h if max(o, c) < h else prices[1]
        buy_p = tb / v if v else 0.5
        buys = [False] * n
        starts: list[int] = []
        j = 0
        while j < n:
            starts.append(j)
            k = j
            if j + 1 < n and prices[j + 1] != prices[j]:
                up = prices[j + 1] > prices[j]
                k = j + 1
                while (
                    k + 1 < n and (prices[k + 1] > prices[k]) is up and prices[k + 1] != prices[k]
                ):
                    k += 1
            elif n == 1 and c != o:  # a lone fill away from the last price moved it its way
                up = c > o
            else:
                up = rand() < buy_p
            for i in range(j, k + 1):
                buys[i] = up
            j = k + 1
        weights = [int((0.05 + rand()) ** 2 * 1e6) for _ in range(n)]
        nb = sum(buys)
        both = (nb > 0 or tb == 0) and (nb < n or tb == v)
        if both and nb <= tb and n - nb <= v - tb:  # taker buy volume = buy takers' fills
            pairs = list(zip(weights, buys, strict=True))
            bq = iter(_split(tb - nb, [w for w, b in pairs if b]))
            sq = iter(_split(v - tb - n + nb, [w for w, b in pairs if not b]))
            qtys = [1 + (next(bq) if b else next(sq)) for b in buys]
        elif v >= n:
            qtys = [1 + x for x in _split(v - n, weights)]
        else:
            qtys = _split(v, weights)
        takers = len(starts)
        if takers <= 1000:
            offsets = sorted(rng.sample(range(1000), takers))
        else:
            offsets = [k * 1000 // takers for k in range(takers)]
        ms = s * 1000
        times = [0] * n
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < takers else n
            times[start:end] = [ms + offsets[k]] * (end - start)
        return [(first_id + j, times[j], prices[j], qtys[j], not buys[j]) for j in range(n)]

    def recent_trades(self, now_s: int, limit: int) -> list[Trade]:
        """The newest ``limit`` trades before second ``now_s``, oldest first."""
        out: list[list[Trade]] = []
        got = 0
        s = now_s - 1
        fid = self.first_id(now_s) if limit else 0
        while got < limit and s >= self.onboard_s:
            fid -= self.block(0, s)[6]
            t = self.second_trades(s, fid)
            out.append(t)
            got += len(t)
            s -= 1
        flat = [t for chunk in reversed(out) for t in chunk]
        return flat[-limit:] if limit else []

    def trades_from_id(self, from_id: int, now_s: int, limit: int) -> list[Trade]:
        """Up to ``limit`` trades with id >= ``from_id`` that happened before ``now_s``."""
        if from_id >= self.first_id(now_s):
            return []
        s, fid = self.second_of_id(from_id)
        out: list[Trade] = []
        while len(out) < limit and s < now_s:
            trades = self.second_trades(s, fid)
            out.extend(t for t in trades if t[0] >= from_id)
            fid += len(trades)
            s += 1
        return out[:limit]

    def trades_between(
        self, start_ms: int, end_ms: int, now_s: int, limit: int, newest: bool
    ) -> list[Trade]:
        """Trades with start_ms <= time <= end_ms (oldest ``limit`` or, if newest, newest)."""
        first = max(start_ms // 1000, self.onboard_s)
        last = min(end_ms // 1000, now_s - 1)
        out: list[Trade] = []
        if last < first:
            return out
        if newest:
            s = last
            fid = self.first_id(last + 1)
            chunks: list[list[Trade]] = []
            got = 0
            while got < limit and s >= first:
                fid -= self.block(0, s)[6]
                chunk = [t for t in self.second_trades(s, fid) if start_ms <= t[1] <= end_ms]
                chunks.append(chunk)
                got += len(chunk)
                s -= 1
            out = [t for chunk in reversed(chunks) for t in chunk]
            return out[-limit:]
        s = first
        fid = self.first_id(first)
        while len(out) < limit and s <= last:
            trades = self.second_trades(s, fid)
            out.extend(t for t in trades if start_ms <= t[1] <= end_ms)
            fid += len(trades)
            s += 1
        return out[:limit]

    def book(self, now_ms: int, limit: int) -> tuple[Levels, Levels]:
        """The order book at the start of second ``now_ms // 1000``: (bids, asks) of (ticks,
        qty units), best first: the first ``limit`` levels of the true book (``depth.py``).

        It is the book the second's first taker sweeps: a buy taker's fills are its first ask
        levels (the last one left partly filled), a sell taker's its first bid levels, so the
        last trade price stays inside the spread and no trade prints inside it.
        """
        s = now_ms // 1000
        key = (self._sid, s, limit)
        hit = self._caches.books.get(key)
        if hit is None:
            f = self.book_frame(s)
            model = self.book_model
            hit = (model.side(f, s, True, limit), model.side(f, s, False, limit))
            self._caches.books.put(key, hit)
        return hit  # type: ignore[no-any-return]

    def book_frame(self, s: int) -> Frame:
        """Second ``s``'s best prices and overrides near the spread (cached)."""
        key = (self._sid, s)
        hit = self._caches.frames.get(key)
        if hit is None:
            hit = self.book_model.frame(s)
            self._caches.frames.put(key, hit)
        return hit  # type: ignore[no-any-return]

    def update_id(self, s: int) -> int:
        """``lastUpdateId`` of the book shown during second ``s``: the trades before it plus
        one per second since the listing, so it grows by at least 1 a second."""
        s = max(s, self.onboard_s)
        return self.first_id(s) + (s - self.onboard_s) + 1

    def book_diff(self, s: int) -> tuple[Levels, Levels]:
        """The change of the true book from second ``s - 1`` to ``s`` (quantity 0: gone); its
        update ids are ``update_id(s - 1) + 1 .. update_id(s)``."""
        return self.book_model.diff(s, self.book_frame(s - 1), self.book_frame(s))

    def _first_taker(self, s: int) -> list[Trade]:
        """The fills of second ``s``'s first taker (one millisecond, one side), or none."""
        if s < self.onboard_s or self.block(0, s)[6] == 0:
            return []
        trades = self.second_trades(s)
        first_ms = trades[0][1]
        return [t for t in trades if t[1] == first_ms]

    def funding_rate(self, k: int) -> int:
        """Funding rate of 8-hour period ``k`` in 1e-8 units (around 0.01 %)."""
        u = (_mix(self._sym_key ^ 0xF00D ^ k) >> 11) / 9007199254740992.0
        return 10000 + int((u - 0.45) * 12000)

    def open_interest(self, now_s: int) -> int:
        """Open interest (qty units) drifting smoothly by the minute."""
        m = now_s // 60
        u = (_mix(self._sym_key ^ 0x0123 ^ (m // 60)) >> 11) / 9007199254740992.0
        w = (_mix(self._sym_key ^ 0x0456 ^ m) >> 11) / 9007199254740992.0
        return int(self._vol_units * (0.3 + 0.1 * u + 0.01 * w))


def fixed_format(decimals: int, shown: int) -> str:
    """The %-format of a count of ``10**-decimals`` units shown with ``shown`` decimals, fed
    ``(units // 10**decimals, units % 10**decimals)`` (the second is dropped when 0 decimals)."""
    if shown < decimals:
        raise ValueError(f"cannot show {decimals} decimals with {shown}")
    zeros = "0" * (shown - decimals)
    if decimals:
        return f"%d.%0{decimals}d{zeros}"
    return "%d%.0s" + (f".{zeros}" if shown else "")


class KlineText:
    """Kline rows of one instrument as text, fast: JSON for the REST API, CSV for archives.

    The fields are exactly ``MarketData.kline_row``'s, printed by one %-format per row
    (about 2 µs) instead of a Python call per field and ``json.dumps``.

    Attributes:
        json: the template of a REST row (a JSON array).
        csv: the template of an archive line (the same fields, no quotes).
    """

    __slots__ = ("_price_unit", "_qty_unit", "_quote_div", "csv", "json")

    def __init__(self, spec: SymbolSpec) -> None:
        price = fixed_format(spec.price_decimals, spec.display_price_decimals)
        qty = fixed_format(spec.qty_decimals, spec.display_qty_decimals)
        usdm = spec.market == "usdm"
        quote = "%d.%05d" if usdm else "%d.%08d"  # USDⓈ-M prints 5 decimals of quote volume
        fields = (
            ("%d", price, price, price, price, qty, "%d", quote, "%d", qty, quote, "0"),
            (False, True, True, True, True, True, False, True, False, True, True, True),
        )
        self.json = "[" + ",".join(f'"{f}"' if q else f for f, q in zip(*fields, strict=True))
        self.json += "]"
        self.csv = ",".join(fields[0])
        self._price_unit = 10**spec.price_decimals
        self._qty_unit = 10**spec.qty_decimals
        self._quote_div = 1000 if usdm else 1

    def rows(
        self,
        template: str,
        candles: Sequence[Candle],
        opens: Sequence[int],
        closes: Sequence[int],
    ) -> list[str]:
        """One text row per candle; ``opens``/``closes`` are the printed times (e.g. ms and
        ms - 1 for REST)."""
        pu, vu, qd, q8 = self._price_unit, self._qty_unit, self._quote_div, 100_000_000
        return [
            template
            % (
                om,
                o // pu,
                o % pu,
                h // pu,
                h % pu,
                lo // pu,
                lo % pu,
                c // pu,
                c % pu,
                v // vu,
                v % vu,
                cm,
                q // q8,
                q % q8 // qd,
                n,
                tb // vu,
                tb % vu,
                tq // q8,
                tq % q8 // qd,
            )
            for om, cm, (o, h, lo, c, v, q, n, tb, tq) in zip(opens, closes, candles, strict=True)
        ]


#: Candle size (s) -> its block level, for the intervals that are aligned blocks.
_LEVEL_OF_SIZE = {1: 0, 60: 1, 3600: 2}


class MarketData:
    """All series of the simulator, sharing bounded caches."""

    def __init__(self, seed: int, specs: list[SymbolSpec]) -> None:
        self._caches = _Caches()
        self.series: dict[tuple[str, str], Series] = {
            (s.market, s.symbol): Series(seed, s, self._caches, i) for i, s in enumerate(specs)
        }
        self._texts: dict[int, KlineText] = {}

    def get(self, market: str, symbol: str) -> Series | None:
        return self.series.get((market, symbol))

    def text(self, series: Series) -> KlineText:
        """The row printer of ``series``."""
        found = self._texts.get(id(series))
        if found is None:
            found = self._texts[id(series)] = KlineText(series.spec)
        return found

    # Over 60 lines: one loop over runs of candles, whose three cases (closed parent cached,
    # closed parent as CSV, open parent) share its indices; split, they would pass six values.
    def kline_texts(
        self,
        series: Series,
        interval: str,
        opens: Sequence[int],
        now_s: int,
        *,
        csv: bool = False,
        unit: int = 1000,
    ) -> list[str]:
        """Text rows of the consecutive candles opening at ``opens`` (seconds, ascending, one
        interval apart) as seen at ``now_s``: JSON (REST) or CSV (archives) with times printed
        as ``open * unit`` and ``close * unit - 1``.

        Runs of minute (second, hour) candles come straight from their hour's (minute's, day's)
        generated children; the JSON rows of a closed parent's children are cached, so a page
        of closed 1m candles is mostly string joining the second time.
        """
        if not opens:
            return []
        text = self.text(series)
        template = text.csv if csv else text.json
        size = _SECONDS[interval]
        level = _LEVEL_OF_SIZE.get(size)
        if level is None:
            candles = [series.candle(interval, o, now_s) for o in opens]
            if size:
                closes = [(o + size) * unit - 1 for o in opens]
            else:
                closes = [interval_bounds(interval, o)[1] * unit - 1 for o in opens]
            return text.rows(template, candles, [o * unit for o in opens], closes)
        fan = 24 if level == 2 else 60
        span = size * fan
        cacheable = not csv and unit == 1000
        out: list[str] = []
        i, count = 0, len(opens)
        while i < count:
            parent, k = divmod(opens[i] // size, fan)
            j = min(count, i + fan - k)
            parent_s = parent * span
            if parent_s + span <= now_s:  # the parent is closed: so are its children
                if cacheable:
                    out += self._fragments(series, text, level, parent)[k : k + j - i]
                else:
                    kids = series.children(level + 1, parent)[k : k + j - i]
                    times = range(opens[i], opens[i] + (j - i) * size, size)
                    out += text.rows(
                        template,
                        kids,
                        [o * unit for o in times],
                        [(o + size) * unit - 1 for o in times],
                    )
            else:
                part = opens[i:j]
                candles = [series.candle(interval, o, now_s) for o in part]
                out += text.rows(
                    template,
                    candles,
                    [o * unit for o in part],
                    [(o + size) * unit - 1 for o in part],
                )
            i = j
        return out

    def _fragments(self, series: Series, text: KlineText, level: int, parent: int) -> list[str]:
        """The JSON rows of all children of a closed parent block (cached)."""
        key = (series._sid, level, parent)
        hit = self._caches.fragments.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        kids = series.children(level + 1, parent)
        size = _SIZES[level]
        first = parent * size * len(kids)
        times = range(first, first + size * len(kids), size)
        rows = text.rows(
            text.json, kids, [o * 1000 for o in times], [(o + size) * 1000 - 1 for o in times]
        )
        self._caches.fragments.put(key, rows)
        return rows

    def kline_page(self, series: Series, interval: str, opens: Sequence[int], now_s: int) -> str:
        """The REST klines response body (JSON text) for ``opens``; see ``kline_texts``."""
        return "[" + ",".join(self.kline_texts(series, interval, opens, now_s)) + "]"

    def kline_row(self, series: Series, interval: str, open_s: int, now_s: int) -> list[Any]:
        """One kline row in the market's shape (12 fields)."""
        spec = series.spec
        o, h, low, c, v, q, n, tb, tq = series.candle(interval, open_s, now_s)
        _, close_s = interval_bounds(interval, open_s)
        ps, qs = spec.price_str, spec.qty_str
        if spec.market == "usdm":
            qv, tqv = fixed(q // 1000, 5), fixed(tq // 1000, 5)
        else:
            qv, tqv = fixed(q, 8), fixed(tq, 8)
        return [
            open_s * 1000,
            ps(o),
            ps(h),
            ps(low),
            ps(c),
            qs(v),
            close_s * 1000 - 1,
            qv,
            n,
            qs(tb),
            tqv,
            "0",
        ]
