"""The simulator's order book: one "true book" per second that diff streams can follow.

Why it is built this way. A REST snapshot and a diff stream must describe the same book, the
book must not depend on the depth a client asks for, and any second's book must be computable
without replaying history (a request may ask about any time). So the book is a pure function
of (series, second), made of two parts:

- **Deep levels: a hashed grid.** Every price grid point ``p`` (ticks) holds a level or not,
  and its size, as a hash of ``(p, bucket)`` where ``bucket = (s + phase(p)) // PERIOD`` and
  ``phase(p) = 7 p mod PERIOD``. A level keeps its state for ``PERIOD`` seconds; the points
  redrawn at second ``s`` form one residue class (``p ≡ -13 s mod 30``), so the change of a
  second is enumerable by arithmetic instead of by comparing two whole books. A point below
  or at the best bid is a bid, at or above the best ask an ask, in between nothing.
- **Per-second overrides near the spread** (``Frame``): the book a second's first taker then
  sweeps (its fills are the first levels of its side, best first, emptied but the last one;
  grid points between its fills are empty), and the best level of the other side is always
  present. Outside ``[Frame.lo, Frame.hi]`` the grid decides.

The true book of second ``s``: every level of the grid or the overrides within ``band`` grid
points of the best price of its side (bids in ``(best_bid - band, best_bid]``, asks in
``[best_ask, best_ask + band)``), where ``band`` is the market's largest REST depth limit
(spot 5000, futures 1000). A side therefore never holds more levels than the largest snapshot,
so ``/depth`` at the largest limit *is* the true book, and a snapshot of limit ``L`` is its
first ``L`` levels.

Update ids: the state shown during second ``s`` has ``u(s) = first_id(s) + (s - listing) + 1``
(the trades before it plus one per second: strictly increasing, computable at any time). The
change from ``s - 1`` to ``s`` is one event with ``U = u(s - 1) + 1`` and ``u = u(s)``; futures
events carry ``pu = u(s - 1)``. ``diff(s)`` lists exactly the levels whose (side, quantity)
differ between the two true books, quantity 0 for a level gone, so ``book(s - 1)`` plus
``diff(s)`` is ``book(s)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .market import Series

__all__ = ["PERIOD", "BookModel", "Frame", "Levels", "mix64"]

_M64 = (1 << 64) - 1
#: Seconds a deep level keeps its presence and size.
PERIOD = 30
_PHASE_MUL = 7  # phase(p) = 7 p mod 30
_PHASE_INV = 13  # 7 * 13 = 91 = 1 (mod 30)

#: (price ticks, qty units), best first.
Levels = list[tuple[int, int]]


def mix64(x: int) -> int:
    """splitmix64 finalizer: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


@attrs.frozen
class Frame:
    """The per-second part of a book: the best prices and the overrides near the spread.

    ``overrides`` maps price -> quantity for prices in ``[lo, hi]`` (any other price there has
    no level); the grid decides elsewhere (and no level sits strictly inside the spread).
    """

    best_bid: int
    best_ask: int
    lo: int
    hi: int
    overrides: dict[int, int]


class BookModel:
    """The true book of one series; see the module docstring. Cheap to create."""

    def __init__(self, series: Series, key: int, base_qty: float, scale: float, band: int):
        self.series = series
        self._key = key
        self._base_qty = base_qty
        # The old book spaced levels 1 + r^2 * scale ticks apart (scale/3 on average): grid
        # points every ``step`` ticks, three in four holding a level, keep about that.
        self.step = max(1, int(scale / 4.0))
        self._density = 49152
        self.band = band
        self.span = band * self.step
        """Ticks per side of the true book (``band`` grid points)."""

    # -- the grid ------------------------------------------------------------------------

    def _hash(self, p: int, s: int) -> int:
        k = p // self.step
        bucket = (s + k * _PHASE_MUL % PERIOD) // PERIOD
        return mix64(self._key ^ mix64(((k & 0xFFFFFFFFFF) << 24) ^ bucket))

    def _qty(self, h: int) -> int:
        r = ((h >> 16) & 0xFFFFFF) / 16777216.0
        return max(1, int(self._base_qty * (0.02 + r * r * r * 4.0)))

    def grid_qty(self, p: int, s: int) -> int:
        """The grid's quantity at ``p`` during second ``s`` (0: no level, or not a grid
        point)."""
        if p % self.step:
            return 0
        h = self._hash(p, s)
        return self._qty(h) if (h & 0xFFFF) < self._density else 0

    @staticmethod
    def changing_residue(s: int) -> int:
        """Grid points ``k * step`` redrawn at second ``s`` have ``k % PERIOD`` equal to this."""
        return (-s * _PHASE_INV) % PERIOD

    # -- the overrides -------------------------------------------------------------------

    def frame(self, s: int) -> Frame:
        """Second ``s``'s best prices and overrides, from its first taker's fills."""
        series = self.series
        last = series.price_at(s)
        rand = series._rng(5, s).random
        taker = series._first_taker(s)
        buy = not taker[0][4] if taker else rand() < 0.5
        swept = [(t[2], t[3]) for t in taker]
        if swept:  # the level the taker stops on keeps some
            p, q = swept[-1]
            r = rand()
            swept[-1] = (p, q + max(1, int(self._base_qty * (0.02 + r * r * r * 4.0))))
        # The first fill is at the last price, or beyond it on the taker's side (a lone fill
        # that moved the price): the spread then widens to keep the last price inside it.
        first = swept[0][0] if swept else last
        best_bid = first if not buy else min(last, first - 1)
        best_ask = first if buy else max(last, first + 1)
        overrides = dict(swept)  # (every other price in [lo, hi] is empty)
        if buy:
            end = swept[-1][0] if swept else best_ask
            overrides[best_bid] = self._qty(self._hash(best_bid, s))
            if not swept:
                overrides[best_ask] = self._qty(self._hash(best_ask, s))
            lo, hi = best_bid, end
        else:
            end = swept[-1][0] if swept else best_bid
            overrides[best_ask] = self._qty(self._hash(best_ask, s))
            if not swept:
                overrides[best_bid] = self._qty(self._hash(best_bid, s))
            lo, hi = end, best_ask
        return Frame(best_bid, best_ask, lo, hi, overrides)

    # -- levels --------------------------------------------------------------------------

    def level(self, f: Frame, s: int, p: int) -> tuple[int, int]:
        """``(side, qty)`` of grid point ``p`` in the true book of ``s`` (side 1 bid, -1 ask,
        0 none; qty 0 when there is no level)."""
        if p <= f.best_bid:
            if p <= f.best_bid - self.span or p < 1:
                return 0, 0
            side = 1
        elif p >= f.best_ask:
            if p >= f.best_ask + self.span:
                return 0, 0
            side = -1
        else:
            return 0, 0
        if f.lo <= p <= f.hi:
            return side, f.overrides.get(p, 0)
        return side, self.grid_qty(p, s)

    def side(self, f: Frame, s: int, bids: bool, limit: int) -> Levels:
        """The first ``limit`` levels of one side, best first."""
        out: Levels = []
        lo, hi, overrides, step = f.lo, f.hi, f.overrides, self.step
        if bids:  # the overridden prices, then the grid points below them
            near = [(p, q) for p, q in overrides.items() if p <= f.best_bid]
            near.sort(reverse=True)
            top = min(f.best_bid, lo - 1)
            grid = range(top - top % step, max(f.best_bid - self.span, 0), -step)
        else:
            near = [(p, q) for p, q in overrides.items() if p >= f.best_ask]
            near.sort()
            bottom = max(f.best_ask, hi + 1)
            grid = range(bottom + (-bottom) % step, f.best_ask + self.span, step)
        out = [(p, q) for p, q in near if q][:limit]
        key, density, qty_of = self._key, self._density, self._qty
        for p in grid:
            if len(out) >= limit:
                break
            k = p // step
            h = mix64(key ^ mix64(((k & 0xFFFFFFFFFF) << 24) ^ ((s + k * 7 % 30) // 30)))
            if (h & 0xFFFF) < density:
                out.append((p, qty_of(h)))
        return out

    def diff(self, s: int, before: Frame, after: Frame) -> tuple[Levels, Levels]:
        """The levels that change from second ``s - 1`` (``before``) to ``s`` (``after``):
        (bids, asks) of (price, new quantity or 0), bids descending, asks ascending."""
        band, step = self.span, self.step
        b0, b1, a0, a1 = before.best_bid, after.best_bid, before.best_ask, after.best_ask
        candidates: set[int] = set()
        # the overrides, the spreads and whatever moved between them
        near = range(min(before.lo, after.lo, b0, b1), max(before.hi, after.hi, a0, a1) + 1)
        candidates.update(near)
        # the band edges
        candidates.update(range(min(b0, b1) - band, max(b0, b1) - band + 1))
        candidates.update(range(min(a0, a1) + band - 1, max(a0, a1) + band + 1))
        # the grid points redrawn this second, over both bands
        r = self.changing_residue(s)
        for lo, hi in (
            (max(min(b0, b1) - band + 1, 1), max(b0, b1)),
            (min(a0, a1), max(a0, a1) + band - 1),
        ):
            k = -(-lo // step)
            k += (r - k) % PERIOD
            candidates.update(range(k * step, hi + 1, PERIOD * step))
        bids: Levels = []
        asks: Levels = []
        for p in candidates:
            if p < 1:
                continue
            side0, q0 = self.level(before, s - 1, p)
            side1, q1 = self.level(after, s, p)
            if side0 == side1:
                if q0 != q1 and side1:
                    (bids if side1 == 1 else asks).append((p, q1))
                continue
            if side0 and q0:
                (bids if side0 == 1 else asks).append((p, 0))
            if side1 and q1:
                (bids if side1 == 1 else asks).append((p, q1))
        bids.sort(reverse=True)
        asks.sort()
        return bids, asks
