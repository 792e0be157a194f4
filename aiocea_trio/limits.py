"""A trio rate limiter that keeps a client under Binance's request-weight limits.

Binance counts request weight per IP, per market, in fixed windows (one minute
in production, aligned to the clock). The limiter reserves each request's weight
before it is sent, waits for the next window when the budget is spent, and
reconciles with the ``X-MBX-USED-WEIGHT-*`` header of every response, so weight
used by other programs on the same IP is seen too. A 429 pauses the market for
``Retry-After``; a 418 ban stops the market until the ban ends.

Share one limiter between clients that share an IP: pass the same object as
``BinanceClient(limiter=...)``. Processes (or machines) that share an IP share a
budget through Redis: ``RateLimiter(shared="redis://...", key="my-ip")``, opened with
``async with`` (see "The shared limiter" below). Order counts, per account, are then
shared too (``OrderBudget``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING

import attrs
import trio

from .clock import ExchangeClock
from .endpoints import DEFAULT_ORDER_LIMITS, DEFAULT_WEIGHT_LIMITS, UNIT_SECONDS
from .errors import BinanceBanError
from .markets import Market

if TYPE_CHECKING:
    from .shared_limits import RedisWindows

__all__ = [
    "MAX_BAN_SECONDS",
    "MAX_RATE_LIMIT_PAUSE",
    "LimiterStatistics",
    "MarketLimits",
    "MarketStatistics",
    "OrderBudget",
    "RateLimiter",
]

logger = logging.getLogger("aiocea_trio.limits")

#: The longest pause a 429's ``Retry-After`` can impose (s). Binance's windows are
#: a minute or less for request weight; a longer (or infinite) value is cut to this.
MAX_RATE_LIMIT_PAUSE: float = 300.0
#: The longest ban a 418 can impose (s): Binance's bans scale from 2 minutes to 3 days.
MAX_BAN_SECONDS: float = 3 * 86_400.0
#: The share of each window's budget a shared limiter spends on its own while Redis is
#: down (per process: with N processes on one IP, give ``fallback_share`` <= 1/N).
DEFAULT_FALLBACK_SHARE: float = 0.25
#: While Redis is down, how often a shared limiter asks it again (s).
SHARED_RETRY_INTERVAL: float = 1.0
#: Once Redis answers again, how long a shared limiter keeps to its fallback share (and
#: reserves in Redis too) before it shares fully: to the first window that starts at least
#: this long after it found Redis back (s). Longer than one retry interval plus a timeout,
#: so that every process that was down has found Redis back by then and counts there.
SHARED_RESUME_MARGIN: float = 2.0

_INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_WEIGHT_HEADER = "x-mbx-used-weight-"
_ORDER_HEADER = "x-mbx-order-count-"


@attrs.frozen
class MarketLimits:
    """A market's request-weight budget: ``weight`` per ``window`` seconds.

    ``orders`` are the per-account ORDERS limits as ``(window seconds, count)`` pairs.
    """

    weight: int
    window: float = 60.0
    orders: tuple[tuple[float, int], ...] = ()

    @classmethod
    def from_exchange_info(cls, rate_limits: Iterable[Mapping[str, object]]) -> MarketLimits:
        """Read exchangeInfo's ``rateLimits`` (REQUEST_WEIGHT and ORDERS entries)."""
        weight: MarketLimits | None = None
        orders: list[tuple[float, int]] = []
        for item in rate_limits:
            seconds = _INTERVAL_SECONDS.get(str(item.get("interval")), 0) * int(
                str(item.get("intervalNum", 1))
            )
            limit = int(str(item.get("limit", 0)))
            if not seconds or limit <= 0:
                continue
            kind = item.get("rateLimitType")
            if kind == "REQUEST_WEIGHT" and (weight is None or seconds < weight.window):
                weight = cls(limit, float(seconds))
            elif kind == "ORDERS":
                orders.append((float(seconds), limit))
        if weight is None:
            raise ValueError("exchangeInfo has no REQUEST_WEIGHT limit")
        return cls(weight.weight, weight.window, tuple(sorted(orders)))


@attrs.frozen
class MarketStatistics:
    """What the limiter knows about one market right now."""

    limit: int
    window: float
    learned: bool
    used_weight: int
    in_flight_weight: int
    requests: int
    waits: int
    waited_seconds: float
    rate_limited: int
    banned: int
    paused_until: float | None
    banned_until_ms: int | None


@attrs.frozen
class LimiterStatistics:
    """A snapshot of every market the limiter has seen."""

    markets: Mapping[str, MarketStatistics]


@attrs.define(eq=False)
class _Budget:
    limits: MarketLimits
    learned: bool
    explicit: bool
    window_index: int | None = -1
    committed: int = 0
    server_seen: int = 0
    in_flight: int = 0
    pending: int = 0  # shared: asked of Redis, not answered yet
    carry: int = 0  # settled near the boundary: may be in the exchange's next window
    paused_until: float = -math.inf  # trio time
    banned_until_ms: int | None = None
    requests: int = 0
    waits: int = 0
    waited: float = 0.0
    rate_limited: int = 0
    banned: int = 0
    learn_lock: trio.Lock = attrs.Factory(trio.Lock)

    @property
    def used(self) -> int:
        return max(self.committed, self.server_seen)


def window_guard_ms(window_ms: float) -> float:
    """How long after the exchange's window boundary the client treats the window as rolled.

    Clocks agree to a few ms at best: 1 % of the window, at least 10 ms, at most 1 s.
    """
    return min(max(window_ms * 0.01, 10.0), 1000.0)


class RateLimiter:
    """Reserve request weight per market before sending; see the module docstring.

    Args:
        weight_limits: weight per window for some markets (``{"spot": 6000}``); these
            override what exchangeInfo says. Others are learned or defaulted.
        window: window length in seconds for explicit limits (Binance: 60).
        learn_limits: read each market's limits from exchangeInfo on first use
            (clients do this through ``learn``), falling back to Binance's
            published numbers. Off, the published numbers are used.
        headroom: fraction of each window's budget the limiter may spend; a little
            below 1 leaves room for requests the limiter does not see.
        shared: share the budget with other processes through Redis: a URL
            (``"redis://127.0.0.1:6379/0"``; the limiter opens and closes the
            connection) or a ``RedisWindows`` you opened (``open_redis_windows``; you
            close it). The limiter must then be used as ``async with limiter:``, which
            runs its one background task. None (the default): this process only.
        key: the name of what is shared (the IP's, say): limiters with the same
            ``shared`` store and ``key`` share one budget. Only with a URL.
        fallback_share: while Redis is down, the share of each window's budget this
            process spends on its own (default 1/4; give at most 1/N for N processes).
    """

    def __init__(
        self,
        weight_limits: Mapping[str, int] | None = None,
        *,
        window: float = 60.0,
        learn_limits: bool = True,
        headroom: float = 1.0,
        shared: str | RedisWindows | None = None,
        key: str = "default",
        fallback_share: float = DEFAULT_FALLBACK_SHARE,
    ) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        if not 0 < headroom <= 1:
            raise ValueError(f"headroom must be in (0, 1], got {headroom}")
        if not 0 < fallback_share <= 1:
            raise ValueError(f"fallback_share must be in (0, 1], got {fallback_share}")
        self._shared_source = shared
        self._shared_key = key
        self.fallback_share = fallback_share
        self._shared: _SharedState | None = None
        self._explicit = {Market(k): int(v) for k, v in (weight_limits or {}).items()}
        self._window = float(window)
        self.learn_limits = learn_limits
        self.headroom = headroom
        self._budgets: dict[Market, _Budget] = {}
        #: The exchange's clock, read by every client sharing this limiter: windows are
        #: the exchange's, so a client that never measured the offset itself must still
        #: count in the same windows as the one that did.
        self.clock = ExchangeClock()
        self.clock.on_change(self.clock_changed)

    def __repr__(self) -> str:
        shown = {m.value: b.limits.weight for m, b in self._budgets.items()}
        return f"RateLimiter(limits={shown}, learn_limits={self.learn_limits})"

    def _budget(self, market: Market) -> _Budget:
        budget = self._budgets.get(market)
        if budget is None:
            if market in self._explicit:
                limits = MarketLimits(self._explicit[market], self._window)
                budget = _Budget(limits, learned=False, explicit=True)
            else:
                limits = MarketLimits(DEFAULT_WEIGHT_LIMITS[market], 60.0)
                budget = _Budget(limits, learned=not self.learn_limits, explicit=False)
            self._budgets[market] = budget
        return budget

    # -- learning -------------------------------------------------------------------

    def needs_limits(self, market: Market) -> bool:
        """True until the market's limits were learned (or learning is off or overridden)."""
        budget = self._budget(market)
        return not (budget.learned or budget.explicit)

    def learn_lock(self, market: Market) -> trio.Lock:
        """Held while one client fetches exchangeInfo, so that the others do not."""
        return self._budget(market).learn_lock

    def set_limits(self, market: Market, limits: MarketLimits | None) -> None:
        """Record learned limits; None means learning failed and the defaults stay."""
        budget = self._budget(market)
        if limits is not None and not budget.explicit:
            if limits.window != budget.limits.window:
                budget.window_index = None  # re-index on the next roll, keeping the counts
            budget.limits = limits
        budget.learned = True

    def clock_changed(self) -> None:
        """A client's idea of the exchange's time moved (its offset was measured).

        Window indexes computed on the old clock mean nothing on the new one: each
        budget keeps what it has counted and is re-indexed on its next roll.
        """
        for budget in self._budgets.values():
            budget.window_index = None

    def limits(self, market: Market | str) -> MarketLimits:
        """The limits in force for a market."""
        return self._budget(Market(market)).limits

    # -- the request path ---------------------------------------------------------

    def _window_index(self, budget: _Budget, now_ms: int) -> int:
        window_ms = budget.limits.window * 1000.0
        # Roll a little after the exchange does: a few ms of clock offset must
        # never let us count on a fresh window the exchange has not opened yet.
        return int((now_ms - window_guard_ms(window_ms)) // window_ms)

    def _near_next(self, budget: _Budget, now_ms: int) -> bool:
        """Within the guard of the next window's start, on either side of it.

        Clocks differ by up to the guard either way: from then on, what the exchange
        counts may already be in its next window.
        """
        window_ms = budget.limits.window * 1000.0
        assert budget.window_index is not None
        return (now_ms + window_guard_ms(window_ms)) // window_ms > budget.window_index

    def _capacity(self, budget: _Budget) -> int:
        """The most weight one window may hold (the limit less the headroom kept back)."""
        return max(1, int(budget.limits.weight * self.headroom))

    def _unless_banned_roll(
        self, market: Market, budget: _Budget, now_ms: int, describe: tuple[str, str]
    ) -> None:
        """Raise while a ban lasts (forget it once over), then roll to ``now_ms``'s window:
        the first step of every admission, local or shared."""
        if budget.banned_until_ms is not None:
            if now_ms < budget.banned_until_ms:
                raise self._ban_error(market, budget.banned_until_ms, now_ms, describe)
            budget.banned_until_ms = None
        self._roll(budget, now_ms)

    def _roll(self, budget: _Budget, now_ms: int) -> None:
        index = self._window_index(budget, now_ms)
        if budget.window_index is None:
            # The window length or the clock changed (limits learned, offset measured):
            # what was already spent still counts, since the exchange counted it in its
            # current window; and if that is already the exchange's next one, there too.
            budget.window_index = index
            if self._near_next(budget, now_ms):
                budget.carry = budget.committed
        elif index != budget.window_index:
            # What was settled since the exchange's own roll may be in this window already.
            budget.committed = budget.carry if index == budget.window_index + 1 else 0
            budget.window_index = index
            budget.server_seen = 0
            budget.carry = 0

    async def acquire(
        self,
        market: Market,
        weight: int,
        server_now_ms: Callable[[], int],
        *,
        describe: tuple[str, str] = ("GET", "?"),
    ) -> None:
        """Wait until ``weight`` fits in the market's budget, then reserve it.

        A checkpoint. Raises ``BinanceBanError`` without sending while the market
        is banned. Every successful call must be followed by ``release``.
        """
        if self._shared_source is not None:
            await self._acquire_shared(market, weight, server_now_ms, describe)
            return
        budget = self._budget(market)
        capacity = self._capacity(budget)
        weight = min(weight, capacity)  # a request larger than the budget waits for an empty window
        waited_from: float | None = None
        # Checkpoint first: between the admission check below and the reservation
        # there must be no await, or concurrent callers would all fit in one slot.
        await trio.lowlevel.checkpoint()
        while True:
            wake = self._wake(market, budget, weight, capacity, server_now_ms, describe)
            if wake is None:
                break
            if waited_from is None:
                waited_from = trio.current_time()
                budget.waits += 1
            await trio.sleep_until(wake)
        self._admit(budget, weight, waited_from)

    def admit_now(
        self,
        market: Market,
        weight: int,
        server_now_ms: Callable[[], int],
        *,
        describe: tuple[str, str] = ("GET", "?"),
    ) -> bool:
        """Reserve ``weight`` if it fits now, without waiting or yielding; else False (then
        ``acquire`` waits for it). Always False for a shared limiter, whose reservations are
        Redis's to make.

        ``acquire`` is a checkpoint, which costs a pass of trio's scheduler; a request that
        fits and is about to wait on its socket anyway need not pay it. Raises
        ``BinanceBanError`` while the market is banned. A True must be followed by
        ``release``.
        """
        if self._shared_source is not None:
            return False
        budget = self._budget(market)
        capacity = self._capacity(budget)
        weight = min(weight, capacity)
        if self._wake(market, budget, weight, capacity, server_now_ms, describe) is not None:
            return False
        self._admit(budget, weight, None)
        return True

    def _wake(
        self,
        market: Market,
        budget: _Budget,
        weight: int,
        capacity: int,
        server_now_ms: Callable[[], int],
        describe: tuple[str, str],
    ) -> float | None:
        """None when ``weight`` fits the budget now, else the trio time to look again (the
        pause's end, or the next window's start): the admission check of ``acquire`` and
        ``admit_now``. Raises while the market is banned."""
        now_ms = server_now_ms()
        self._unless_banned_roll(market, budget, now_ms, describe)
        paused_until = budget.paused_until  # -inf unless a 429 ever paused the market
        if paused_until > -math.inf and trio.current_time() < paused_until:
            return paused_until
        if budget.used + budget.in_flight + weight <= capacity:
            return None
        window_ms = budget.limits.window * 1000.0
        assert budget.window_index is not None
        wait_ms = (budget.window_index + 1) * window_ms + window_guard_ms(window_ms) - now_ms
        return trio.current_time() + max(wait_ms, 1.0) / 1000.0

    @staticmethod
    def _admit(budget: _Budget, weight: int, waited_from: float | None) -> None:
        """Reserve an admitted request's weight; count the time it waited, if it did: the
        last step of every admission, local or shared."""
        if waited_from is not None:
            budget.waited += trio.current_time() - waited_from
        budget.in_flight += weight
        budget.requests += 1

    def release(
        self,
        market: Market,
        reserved: int,
        *,
        charged: int | None,
        headers: Mapping[str, str] | None,
        server_now_ms: Callable[[], int],
    ) -> None:
        """Settle a reservation once the answer (or the failure) is known.

        Args:
            reserved: what ``acquire`` reserved.
            charged: the weight the exchange counted, when known (None: assume
                ``reserved``; a failed connection may still have been counted).
            headers: the response headers, to reconcile with the exchange's own count.
        """
        budget = self._budget(market)
        capacity = self._capacity(budget)
        reserved = min(reserved, capacity)
        budget.in_flight = max(0, budget.in_flight - reserved)
        now_ms = server_now_ms()
        self._roll(budget, now_ms)
        spent = reserved if charged is None else charged
        budget.committed += spent
        if self._near_next(budget, now_ms):  # (the roll above set the window index)
            # Near the boundary the exchange may have counted this in its next window,
            # so it counts in our next one as well.
            budget.carry += spent
        if headers is not None:
            used = _used_weight(headers, budget.limits.window)
            if used is not None:
                budget.server_seen = max(budget.server_seen, used)
                if self._shared is not None:
                    self._shared.settle_later(market, budget, used)

    def note_rate_limited(self, market: Market, retry_after: float | None) -> None:
        """A 429: pause every request to the market for ``Retry-After`` seconds.

        The pause is at most ``MAX_RATE_LIMIT_PAUSE``, whatever the server said.
        """
        budget = self._budget(market)
        budget.rate_limited += 1
        pause = budget.limits.window
        if retry_after is not None and not math.isnan(retry_after):
            pause = max(0.0, retry_after)
        if pause > MAX_RATE_LIMIT_PAUSE:
            logger.warning(
                "%s: 429 asks for a %s s pause; pausing %s s (MAX_RATE_LIMIT_PAUSE)",
                market.value,
                retry_after,
                MAX_RATE_LIMIT_PAUSE,
            )
            pause = MAX_RATE_LIMIT_PAUSE
        else:
            logger.warning("%s: 429 (rate limit), pausing requests for %.1f s", market.value, pause)
        budget.paused_until = max(budget.paused_until, trio.current_time() + pause)
        budget.server_seen = budget.limits.weight
        if self._shared is not None:
            now_ms = self._shared.now_ms()
            self._shared.pause_later(market, now_ms + math.ceil(pause * 1000), banned=False)

    def note_banned(self, market: Market, banned_until_ms: int, now_ms: int | None = None) -> None:
        """A 418: nothing is sent to the market until the ban ends.

        Given the exchange's ``now_ms``, a ban is cut to ``MAX_BAN_SECONDS`` from now.
        """
        budget = self._budget(market)
        budget.banned += 1
        if now_ms is not None:
            longest = now_ms + int(MAX_BAN_SECONDS * 1000)
            if banned_until_ms > longest:
                logger.warning(
                    "%s: 418 bans until %d ms, over %d s away; cut to MAX_BAN_SECONDS",
                    market.value,
                    banned_until_ms,
                    int(MAX_BAN_SECONDS),
                )
                banned_until_ms = longest
        logger.warning("%s: 418 (IP banned) until %d ms", market.value, banned_until_ms)
        budget.banned_until_ms = max(budget.banned_until_ms or 0, banned_until_ms)
        if self._shared is not None:
            self._shared.pause_later(market, banned_until_ms, banned=True)

    def _ban_error(
        self, market: Market, until_ms: int, now_ms: int, describe: tuple[str, str]
    ) -> BinanceBanError:
        when = dt.datetime.fromtimestamp(until_ms / 1000, dt.UTC).isoformat(timespec="seconds")
        return BinanceBanError(
            418,
            -1003,
            f"IP banned until {until_ms} ({when}); nothing is sent to this market before then",
            retry_after=(until_ms - now_ms) / 1000.0,
            banned_until=until_ms,
            market=market.value,
            method=describe[0],
            path=describe[1],
        )

    # -- the shared limiter (Redis) ---------------------------------------------------
    #
    # Issue 18. Opt-in: without ``shared=`` nothing below runs and the
    # request path above is the in-process one, unchanged.
    #
    # The windows stay the ones above (the exchange's clock, rolled a guard late), and
    # each process keeps its own _Budget for statistics, pauses and the fallback; what
    # changes is who admits a request. Instead of comparing the local count with the
    # capacity, acquire asks Redis (``RedisWindows.reserve``, one Lua script, one round
    # trip) to add the weight to the window ``window_index * window_ms`` shared by
    # every process under ``key``. Refused, it waits for the next window, or for the
    # end of the shared 429 pause it was told of; a shared 418 raises BinanceBanError.
    #
    # release, note_rate_limited and note_banned are synchronous (the client's RateGate
    # calls them in ``finally``), so what they tell Redis (the used-weight header, through
    # ``settle``; pauses and bans, through ``pause``) is left in a mailbox that keeps
    # the highest figure per window and the latest end per halt, and one background task,
    # run by ``async with limiter:``, sends it. The mailbox holds one entry per market and
    # window (and per halt), so nothing waits on Redis in release, and nothing is dropped
    # but the settlements due while Redis is down (stale by the time it answers).
    #
    # Redis down (SharedLimitsError: refused, or no answer within the connect/read
    # timeouts of ``open_redis_windows``, 0.5 s): the limiter logs one WARNING, then
    # admits requests on its own while the window's weight as this process knows it (its
    # own, or the exchange's used-weight header if higher: the header counts every
    # process on the IP) plus its in-flight weight stays within ``fallback_share`` of the
    # capacity. So N processes spend about one share together, N shares at worst. No
    # request waits on Redis while it is down: the background task asks it again every
    # SHARED_RETRY_INTERVAL seconds, and when it answers the limiter logs one WARNING,
    # sends the pauses noted meanwhile, and shares again: until the first window that
    # starts SHARED_RESUME_MARGIN after that, a request needs both the fallback's rule
    # and a reservation in Redis, whose floor seeds the (restarted, empty) Redis with
    # what this process knows the window holds (``_SharedState.sharing``/``seeding``).

    async def __aenter__(self) -> RateLimiter:
        if self._shared_source is None:
            return self  # nothing to open: ``async with`` is harmless on a local limiter
        if self._shared is not None:
            raise RuntimeError("this RateLimiter is already open; enter it once")
        self.clock.start()  # pauses noted before any request still need the exchange's time
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            source = self._shared_source
            if isinstance(source, str):
                from .shared_limits import open_redis_windows

                windows = await stack.enter_async_context(
                    open_redis_windows(source, key=self._shared_key)
                )
            else:
                windows = source
            # The background task's nursery has a stack of its own: it is closed first, and
            # without the body's exception (a nursery would wrap that in a group).
            tasks = AsyncExitStack()
            stack.push_async_exit(tasks)
            nursery = await tasks.enter_async_context(trio.open_nursery())
            state = _SharedState(windows, stack, tasks, nursery.cancel_scope, self.clock.now_ms)
            await nursery.start(state.run)
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._shared = state
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        state, self._shared = self._shared, None
        if state is None:
            return None
        state.cancel_scope.cancel()
        try:
            await state.tasks.aclose()
        except BaseException as failed:  # the background task failed: a bug, reported
            await state.stack.__aexit__(type(failed), failed, failed.__traceback__)
            raise
        return await state.stack.__aexit__(exc_type, exc, tb)

    @property
    def shared_down(self) -> bool | None:
        """None for a local limiter; else whether Redis is down (the fallback in force)."""
        if self._shared_source is None:
            return None
        return self._shared is None or self._shared.down_since is not None

    async def _acquire_shared(
        self,
        market: Market,
        weight: int,
        server_now_ms: Callable[[], int],
        describe: tuple[str, str],
    ) -> None:
        """``acquire`` through Redis, or against ``fallback_share`` while it is down."""
        from .shared_limits import SharedLimitsError

        state = self._shared
        if state is None:
            raise RuntimeError(
                "a shared RateLimiter must be open: "
                "`async with RateLimiter(shared=...) as limiter:`"
            )
        state.now_ms = server_now_ms
        budget = self._budget(market)
        capacity = self._capacity(budget)
        weight = min(weight, capacity)
        share = max(1, int(capacity * self.fallback_share))
        waited_from: float | None = None
        await trio.lowlevel.checkpoint()
        while True:
            now_ms = server_now_ms()
            self._unless_banned_roll(market, budget, now_ms, describe)
            assert budget.window_index is not None
            index = budget.window_index
            window_ms = budget.limits.window * 1000.0
            start_ms = int(index * window_ms)
            reopens = (index + 1) * window_ms + window_guard_ms(window_ms)
            now = trio.current_time()
            # The fallback's rule: the window's weight as this process knows it (its own,
            # or the exchange's header for the whole IP, the higher) plus what it has in
            # flight stays within its share. While Redis is down that rule alone admits;
            # in the windows after Redis came back (see _SharedState.sharing), both it
            # and a reservation in Redis must.
            held = budget.used + budget.in_flight + budget.pending
            fits_share = held + min(weight, share) <= share
            if now < budget.paused_until:
                wake = budget.paused_until
            elif state.down_since is not None:
                if fits_share:
                    break
                wake = now + max(reopens - now_ms, 1.0) / 1000
            elif not fits_share and not state.sharing(start_ms):
                wake = now + max(reopens - now_ms, 1.0) / 1000
            else:
                # What this process knows the window holds raises Redis's count (never
                # lowers it): the exchange's header always (as ``settle`` does, a round
                # trip sooner); after Redis came back (empty, after a restart), also the
                # weight this process spent and has in flight, spent while it was down.
                floor = budget.server_seen
                if state.seeding(start_ms, int(window_ms)):
                    floor = max(floor, budget.committed + budget.in_flight)
                budget.pending += weight  # held across the await: the share's rule sees it
                try:
                    found = await state.windows.reserve(
                        market.value,
                        start_ms,
                        weight,
                        limit=capacity,
                        window_ms=int(window_ms),
                        now_ms=now_ms,
                        floor=floor,
                    )
                except SharedLimitsError as exc:
                    state.went_down(exc)
                    continue
                finally:
                    budget.pending -= weight
                if found.granted:
                    break
                now_ms, now = server_now_ms(), trio.current_time()
                if found.banned_until_ms is not None and found.banned_until_ms > now_ms:
                    budget.banned_until_ms = max(budget.banned_until_ms or 0, found.banned_until_ms)
                    continue  # raised at the top
                if found.paused_until_ms is not None and found.paused_until_ms > now_ms:
                    pause_end = now + (found.paused_until_ms - now_ms) / 1000
                    budget.paused_until = max(budget.paused_until, pause_end)
                    wake = budget.paused_until
                else:
                    wake = now + max(reopens - now_ms, 1.0) / 1000
            if waited_from is None:
                waited_from = now
                budget.waits += 1
            await trio.sleep_until(wake)
        self._admit(budget, weight, waited_from)

    # -- observing ------------------------------------------------------------------

    def statistics(self) -> LimiterStatistics:
        """A frozen snapshot: used weight, waits, 429s and 418s per market."""
        markets = {}
        for market, b in self._budgets.items():
            markets[market.value] = MarketStatistics(
                limit=b.limits.weight,
                window=b.limits.window,
                learned=b.learned and not b.explicit,
                used_weight=b.used,
                in_flight_weight=b.in_flight,
                requests=b.requests,
                waits=b.waits,
                waited_seconds=b.waited,
                rate_limited=b.rate_limited,
                banned=b.banned,
                paused_until=b.paused_until if b.paused_until > -math.inf else None,
                banned_until_ms=b.banned_until_ms,
            )
        return LimiterStatistics(markets)


class _SharedState:
    """An open shared limiter: the Redis windows, the mailbox, and the task that sends it."""

    def __init__(
        self,
        windows: RedisWindows,
        stack: AsyncExitStack,
        tasks: AsyncExitStack,
        cancel_scope: trio.CancelScope,
        now_ms: Callable[[], int],
    ) -> None:
        self.windows = windows
        self.stack = stack  # the Redis connection (when the limiter opened it), then ``tasks``
        self.tasks = tasks  # the background task's nursery
        self.cancel_scope = cancel_scope
        #: The exchange's time, as the clients last gave it (for pauses noted without it).
        self.now_ms = now_ms
        #: trio time Redis was found down (None: it answers).
        self.down_since: float | None = None
        #: Windows starting before this (exchange ms) are admitted by the fallback's rule
        #: as well as by Redis: set when Redis answers again (see ``sharing``).
        self.shared_from_ms: int = 0
        # (market, window start ms, window ms) -> the highest used-weight header seen.
        self._settles: dict[tuple[str, int, int], int] = {}
        # (account, market, interval ms, window start ms) -> the highest order count seen.
        self._order_settles: dict[tuple[str, str, int, int], int] = {}
        # (market, banned) -> the latest end (exchange ms).
        self._pauses: dict[tuple[str, bool], int] = {}
        self._wake = trio.Event()

    def sharing(self, window_start_ms: int) -> bool:
        """Whether Redis alone admits in the window starting at ``window_start_ms``.

        Not in the windows that began before Redis answered again plus
        ``SHARED_RESUME_MARGIN``: other processes may still be on their fallback share
        there, spending weight Redis does not see, so this one keeps to its share too (and
        reserves in Redis, so that what it spends is counted there).
        """
        return window_start_ms >= self.shared_from_ms

    def seeding(self, window_start_ms: int, window_ms: int) -> bool:
        """Whether a reservation in this window also seeds Redis with this process's own
        spending: from Redis's return to the end of the first window it shares fully."""
        return self.shared_from_ms > 0 and window_start_ms < self.shared_from_ms + window_ms

    def settle_later(self, market: Market, budget: _Budget, used: int) -> None:
        if self.down_since is not None or budget.window_index is None:
            return  # the exchange's figure is only worth sending to an answering Redis
        window_ms = int(budget.limits.window * 1000)
        slot = (market.value, budget.window_index * window_ms, window_ms)
        self._settles[slot] = max(self._settles.get(slot, 0), used)
        self._wake.set()

    def settle_orders_later(
        self, account: str, market: Market, interval_ms: int, index: int, count: int
    ) -> None:
        if self.down_since is not None:
            return
        slot = (account, market.value, interval_ms, index * interval_ms)
        self._order_settles[slot] = max(self._order_settles.get(slot, 0), count)
        self._wake.set()

    def pause_later(self, market: Market, until_ms: int, *, banned: bool) -> None:
        slot = (market.value, banned)
        self._pauses[slot] = max(self._pauses.get(slot, 0), until_ms)
        self._wake.set()

    def went_down(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = trio.current_time()
            self._settles.clear()
            self._order_settles.clear()
            self._wake.set()  # the task may be waiting for mail: it asks Redis again from now
            logger.warning(
                "shared rate limits: Redis is down (%s); this process now admits requests on "
                "its own, within its fallback share of each window, until it reaches Redis again",
                str(exc),  # not the exception: a record must not keep its frames alive
            )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send the mailbox as it fills; while Redis is down, ask it again now and then."""
        from .shared_limits import SharedLimitsError

        task_status.started()
        while True:
            if self.down_since is None:
                await self._wake.wait()
            else:
                await trio.sleep(SHARED_RETRY_INTERVAL)
            self._wake = trio.Event()
            try:
                if self.down_since is not None:
                    await self.windows.paused_until("spot")  # a probe: one HMGET
                    # Every process that was down finds Redis back within about one retry
                    # interval: full sharing waits for the first window after the margin.
                    back_ms = self.now_ms() + int(SHARED_RESUME_MARGIN * 1000)
                    self.shared_from_ms = max(self.shared_from_ms, back_ms)
                    down_for = trio.current_time() - self.down_since
                    self.down_since = None
                    logger.warning(
                        "shared rate limits: Redis is back after %.1f s; sharing again (within "
                        "the fallback share until the first window from %d ms)",
                        down_for,
                        self.shared_from_ms,
                    )
                await self._send()
            except SharedLimitsError as exc:
                self.went_down(exc)

    async def _send(self) -> None:
        while self._settles or self._pauses or self._order_settles:
            if self._pauses:
                (market, banned), until_ms = self._pauses.popitem()
                try:
                    await self.windows.pause(market, until_ms, now_ms=self.now_ms(), banned=banned)
                except BaseException:
                    slot = (market, banned)  # not sent: keep it for later
                    self._pauses[slot] = max(self._pauses.get(slot, 0), until_ms)
                    raise
            elif self._settles:
                (market, start, window_ms), used = self._settles.popitem()
                await self.windows.settle(
                    market, start, used, window_ms=window_ms, now_ms=self.now_ms()
                )
            else:
                (account, market, interval_ms, start), count = self._order_settles.popitem()
                await self.windows.settle_orders(
                    account, market, interval_ms, start, count, now_ms=self.now_ms()
                )


def header_counts(headers: Mapping[str, str], prefix: str) -> list[tuple[int, int]]:
    """``(window seconds, count)`` of each ``X-MBX-USED-WEIGHT-*`` or ``X-MBX-ORDER-COUNT-*``
    header (``prefix`` in lower case); unreadable ones are skipped.

    The interval's letter is Binance's upper case: ``1M`` is a minute (months never occur).
    """
    size = len(prefix)
    found: list[tuple[str, str | bytes]] = []
    raw = getattr(headers, "raw", None)  # httpx's (and the client's): bytes as received
    if raw is not None:
        encoded = prefix.encode()
        for name, value in raw:
            if len(name) > size and name[:size].lower() == encoded:
                found.append((name[size:].decode("ascii", "replace").lower(), value))
    else:
        for name, value in headers.items():
            if len(name) > size and name[:size].lower() == prefix:
                found.append((name[size:].lower(), value))
    counts = []
    for interval, value in found:
        try:
            seconds = int(interval[:-1]) * UNIT_SECONDS[interval[-1]]
            counts.append((seconds, int(value)))
        except (ValueError, KeyError, IndexError):
            continue
    return counts


def _used_weight(headers: Mapping[str, str], window: float) -> int | None:
    """The used-weight header for our window (``X-MBX-USED-WEIGHT-1M``), else any of them."""
    best: int | None = None
    for seconds, count in header_counts(headers, _WEIGHT_HEADER):
        if seconds == window:
            return count
        best = count if best is None else max(best, count)
    return best


class OrderBudget:
    """One account's ORDERS windows (10 s, 1 min): orders wait while one is at its limit.

    Orders are counted here before they are sent, and reconciled with the exchange's
    ``X-MBX-ORDER-COUNT-*`` headers afterwards: an order whose response was lost still
    counts. Order limits are per account, so each client (one API key) owns one; the
    limits themselves come from the (per IP) limiter, which learned them.

    With a shared limiter (``RateLimiter(shared=...)``) the counts are the account's in
    Redis: every process trading on the account reserves each order there
    (``RedisWindows.reserve_orders``, one round trip), and the headers raise them
    (``settle_orders``, sent by the limiter's background task). While Redis is down, the
    same fallback as for weight: each window at most ``fallback_share`` of its limit (at
    least one order), counting this process's orders and the exchange's header.

    Args:
        now_ms: the exchange's time in ms (the client's ``server_time_ms``).
        limiter: the client's limiter; when it is shared, so are the order counts.
        api_key: names the account in Redis, as a hash (``key-`` and 16 hex digits of its
            SHA-256): the key itself is never stored, sent to Redis, or logged.
        account: a name for the account in Redis instead of the key's hash.
    """

    def __init__(
        self,
        now_ms: Callable[[], int],
        *,
        limiter: RateLimiter | None = None,
        api_key: str | None = None,
        account: str | None = None,
    ) -> None:
        self._now_ms = now_ms
        self._limiter = limiter
        if account is None and api_key:
            account = "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.account = account
        # (market, window seconds) -> {the exchange's window index: orders counted in it}
        self._counts: dict[tuple[Market, int], dict[int, int]] = {}

    def __repr__(self) -> str:
        return f"OrderBudget(account={self.account!r}, counts={self.current()})"

    def _state(self) -> _SharedState | None:
        """The limiter's open shared state, when the order counts are shared."""
        limiter = self._limiter
        if limiter is None or limiter._shared_source is None or self.account is None:
            return None
        if limiter._shared is None:
            raise RuntimeError(
                "a shared RateLimiter must be open: "
                "`async with RateLimiter(shared=...) as limiter:`"
            )
        return limiter._shared

    def reconcile(self, market: Market, headers: Mapping[str, str]) -> None:
        """Take the exchange's ``X-MBX-ORDER-COUNT-*`` where it counts more than we did."""
        limiter = self._limiter
        state = limiter._shared if limiter is not None and self.account is not None else None
        for seconds, count in header_counts(headers, _ORDER_HEADER):
            counts = self._counts.setdefault((market, seconds), {})
            index = self._now_ms() // (seconds * 1000)
            counts[index] = max(counts.get(index, 0), count)
            if state is not None and self.account is not None and seconds <= 60:
                state.settle_orders_later(self.account, market, seconds * 1000, index, count)

    async def reserve(self, market: Market, limits: MarketLimits) -> None:
        """Hold an order while a short window is at its limit, then count it.

        ``limits.orders`` (Binance's defaults when it has none): the day's limit is the
        exchange's job, the short ones are ours.
        """
        orders = limits.orders or tuple((float(w), n) for w, n in DEFAULT_ORDER_LIMITS[market])
        short = [(int(w), n) for w, n in orders if w <= 60]
        state = self._state()
        if state is not None:
            await self._reserve_shared(state, market, short)
            return
        while True:
            blocked_until = self._blocked_until(market, short, 1.0)
            if not blocked_until:
                break
            await trio.sleep((blocked_until - self._now_ms()) / 1000.0)
        self._count(market, short)  # no await since the checks: the counts are ours

    def _blocked_until(self, market: Market, short: list[tuple[int, int]], share: float) -> float:
        """When the last full window reopens (exchange ms), 0 if none is full; a window
        holds ``share`` of its limit here (at least one order)."""
        blocked_until = 0.0
        for window, limit in short:
            counts = self._counts.get((market, window), {})
            size = window * 1000
            cap = max(1, int(limit * share))
            full = [i for i in self._windows(window) if counts.get(i, 0) >= cap]
            if full:
                reopens = (max(full) + 1) * size + window_guard_ms(size)
                blocked_until = max(blocked_until, reopens)
        return blocked_until

    def _count(self, market: Market, short: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Count one order in each window it may fall in; returns ``(window s, index)`` of each."""
        taken = []
        for window, _ in short:
            counts = self._counts.setdefault((market, window), {})
            windows = self._windows(window)
            for index in windows:
                counts[index] = counts.get(index, 0) + 1
                taken.append((window, index))
            for index in [i for i in counts if i < windows.start - 1]:
                del counts[index]
        return taken

    def _uncount(self, market: Market, taken: list[tuple[int, int]]) -> None:
        for window, index in taken:
            counts = self._counts.get((market, window), {})
            if counts.get(index, 0) > 0:
                counts[index] -= 1

    async def _reserve_shared(
        self, state: _SharedState, market: Market, short: list[tuple[int, int]]
    ) -> None:
        """``reserve`` through Redis (as the weight: ``RateLimiter._acquire_shared``)."""
        from .shared_limits import SharedLimitsError

        assert self._limiter is not None
        assert self.account is not None
        share = self._limiter.fallback_share
        windows = [(w * 1000, n) for w, n in short]
        await trio.lowlevel.checkpoint()
        while True:
            now_ms = self._now_ms()
            blocked_local = self._blocked_until(market, short, share)
            spans = [(w * 1000, i) for w, _ in short for i in self._windows(w)]
            if state.down_since is not None:
                if not blocked_local:
                    self._count(market, short)
                    return
                await trio.sleep(max(blocked_local - now_ms, 1.0) / 1000.0)
                continue
            if blocked_local and not all(state.sharing(w * i) for w, i in spans):
                await trio.sleep(max(blocked_local - now_ms, 1.0) / 1000.0)
                continue
            floors: dict[tuple[int, int], int] = {}
            if any(state.seeding(w * i, w) for w, i in spans):
                # Redis came back (empty, after a restart): what this process counted,
                # its own orders and the exchange's header, seeds it.
                for w, i in spans:
                    floors[(w, i)] = self._counts.get((market, w // 1000), {}).get(i, 0)
            taken = self._count(market, short)  # held across the await, for the share's rule
            try:
                grant = await state.windows.reserve_orders(
                    self.account, market.value, windows, now_ms=now_ms, floors=floors
                )
            except SharedLimitsError as exc:
                self._uncount(market, taken)
                state.went_down(exc)
                continue
            except BaseException:
                self._uncount(market, taken)
                raise
            if grant.granted:
                return
            self._uncount(market, taken)
            retry_at = grant.retry_at_ms if grant.retry_at_ms is not None else now_ms + 1000
            await trio.sleep(max(retry_at - self._now_ms(), 1.0) / 1000.0)

    def _windows(self, window: int) -> range:
        """The exchange's windows an order sent now may fall in: two near a boundary.

        Clocks agree only to a few ms, so an order sent just before or after a
        boundary counts in both windows; otherwise the exchange could see one
        more order in a window than we did.
        """
        size = window * 1000
        now, guard = self._now_ms(), window_guard_ms(size)
        return range(int((now - guard) // size), int((now + guard) // size) + 1)

    def current(self) -> dict[str, int]:
        """Orders counted in each window now, as ``{"spot:10s": 3, ...}``."""
        return {
            f"{m.value}:{s}s": counts.get(self._now_ms() // (s * 1000), 0)
            for (m, s), counts in self._counts.items()
        }
