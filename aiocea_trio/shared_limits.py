"""Rate-limit windows shared through Redis, for processes and machines on one IP.

Binance counts request weight per IP, so programs that share an IP must share one count.
``RedisWindows`` keeps that count in Redis: each operation is **one Lua script run with
EVALSHA, one round trip**, and Redis runs a script alone (no other command runs between
its first and last line), so a check and the change it allows can never interleave with
another process's. This module is the store only; the ``RateLimiter`` still decides
what to reserve and when to wait.

Key layout (``P`` is ``aiocea:{key}``, ``key`` the name of what is shared, such as the
IP's; the braces are a Redis Cluster hash tag, so every key of one IP is in one slot and
a script may touch several of them):

- ``P:w:{market}:{window_start_ms}``: the weight counted in that window (an integer),
  by reservations and by the exchange's ``X-MBX-USED-WEIGHT-*`` header. It expires one
  window after its window ends (the margin covers clocks a little behind and late
  settlements), so old windows cost nothing.
- ``P:halt:{market}``: a hash, ``pause`` (a 429's end) and ``ban`` (a 418's end), in the
  exchange's ms. It expires a second after the later of the two.
- ``P:o:{account}:{market}:{interval_ms}:{window_start_ms}``: orders counted for one
  account in one ORDERS window, expiring like the weight windows.

The scripts, and why each must be one script:

- ``reserve``: reads the halt and the window's count, raises the count to the caller's
  floor (what it knows the window holds: after a Redis restart, the count is seeded so),
  and adds the weight only if the market is not halted and the count stays within the
  limit. Read and add apart, two processes could both read 90 of 100 and both add 10.
- ``settle``: raises the window's count to the exchange's figure if it is higher, never
  lowers it (Binance's header is the truth, but an older answer arriving late must not
  undo newer reservations). Apart, a reservation between the read and the write is lost.
- ``pause``: moves a halt's end later, never earlier, and extends the expiry.
- ``reserve_orders``: checks every ORDERS window an order may fall in (two near a
  boundary, as ``OrderBudget`` does) and counts it in all of them, or in none; each
  count is first raised to the caller's floor, as in ``reserve``.

The Redis client (coredis, which runs on AnyIO and so under trio) is the ``redis`` extra,
imported only by ``open_redis_windows``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ._groups import _holds_cancelled, _reraise, collapse_groups
from .errors import BinanceError
from .limits import window_guard_ms

if TYPE_CHECKING:
    import coredis
    from coredis.commands.script import Script

__all__ = [
    "Halt",
    "OrderGrant",
    "RedisWindows",
    "Reservation",
    "SharedLimitsError",
    "open_redis_windows",
]

#: How long a halt key outlives the later of its ends (ms).
HALT_MARGIN_MS = 1000

_RESERVE = """
local halt = redis.call('HMGET', KEYS[2], 'pause', 'ban')
local pause = tonumber(halt[1] or '0')
local ban = tonumber(halt[2] or '0')
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[5] or '0')
local raised = floor > used
if raised then
  used = floor
end
local now = tonumber(ARGV[4])
if pause > now or ban > now or used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  if raised then
    redis.call('SET', KEYS[1], used, 'PX', ARGV[3])
  end
  return {0, used, pause, ban}
end
used = used + tonumber(ARGV[1])
redis.call('SET', KEYS[1], used, 'PX', ARGV[3])
return {1, used, pause, ban}
"""

_SETTLE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local seen = tonumber(ARGV[1])
if seen > used then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return seen
end
return used
"""

_PAUSE = """
local until_ms = tonumber(ARGV[2])
local now = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if until_ms > now then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  now = until_ms
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return now
"""

# KEYS: one counter per (interval, window); ARGV: ttl_ms, then each key's limit, then each
# key's floor (what the caller knows was counted there: raised to it first, never lowered).
_RESERVE_ORDERS = """
local n = #KEYS
local counts = {}
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  local floor = tonumber(ARGV[n + i + 1] or '0')
  if floor > count then
    count = floor
    redis.call('SET', key, count, 'PX', ARGV[1])
  end
  counts[i] = count
end
for i, key in ipairs(KEYS) do
  if counts[i] >= tonumber(ARGV[i + 1]) then
    return {0, i}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, counts[i] + 1, 'PX', ARGV[1])
end
return {1, 0}
"""


class SharedLimitsError(BinanceError, ConnectionError):
    """Redis did not answer (refused, timed out, or dropped the connection).

    Nothing was reserved as far as this process knows; the caller decides what to fall
    back on.
    """


@attrs.frozen
class Reservation:
    """What ``reserve`` found: ``granted``, and the window's count after it (or as found).

    ``paused_until_ms``/``banned_until_ms`` are the market's halts, when any is set.
    """

    granted: bool
    used: int
    paused_until_ms: int | None = None
    banned_until_ms: int | None = None


@attrs.frozen
class Halt:
    """A market's shared halts, in the exchange's ms (None: none set)."""

    paused_until_ms: int | None = None
    banned_until_ms: int | None = None


@attrs.frozen
class OrderGrant:
    """What ``reserve_orders`` found: ``granted``, or the full window that refused it.

    ``retry_at_ms`` (refused only) is when that window ends, plus the clock guard.
    """

    granted: bool
    full_interval_ms: int | None = None
    retry_at_ms: int | None = None


def _expiry_ms(window_start_ms: int, window_ms: int, now_ms: int) -> int:
    """A window's counter lives until one window after the window's end."""
    return max(window_start_ms + 2 * window_ms - now_ms, window_ms)


def _optional(value: Any) -> int | None:
    number = int(value)
    return number or None


@attrs.define(eq=False)
class RedisWindows:
    """Shared weight windows, halts and order counts for everything named ``key``.

    Build it with ``open_redis_windows``. Every method is a checkpoint and one round trip,
    and raises ``SharedLimitsError`` when Redis does not answer in time.

    Args:
        client: an open ``coredis.Redis`` with ``decode_responses=True``.
        key: the name of what is shared (an IP's name, say); every key starts with
            ``aiocea:{key}``.
    """

    client: coredis.Redis[str]
    key: str = "default"
    _scripts: dict[str, Script[str]] = attrs.field(init=False, factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        for name, source in [
            ("reserve", _RESERVE),
            ("settle", _SETTLE),
            ("pause", _PAUSE),
            ("reserve_orders", _RESERVE_ORDERS),
        ]:
            self._scripts[name] = self.client.register_script(source)

    @property
    def prefix(self) -> str:
        return f"aiocea:{{{self.key}}}"

    def window_key(self, market: str, window_start_ms: int) -> str:
        return f"{self.prefix}:w:{market}:{window_start_ms}"

    def halt_key(self, market: str) -> str:
        return f"{self.prefix}:halt:{market}"

    def orders_key(self, account: str, market: str, interval_ms: int, window_start_ms: int) -> str:
        return f"{self.prefix}:o:{account}:{market}:{interval_ms}:{window_start_ms}"

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        from coredis.exceptions import ConnectionError as RedisConnectionError

        try:
            return await self._scripts[name](keys=list(keys), args=list(args))
        except (RedisConnectionError, TimeoutError, OSError) as exc:
            raise SharedLimitsError(f"Redis did not answer ({name}): {exc}") from exc

    async def reserve(
        self,
        market: str,
        window_start_ms: int,
        weight: int,
        *,
        limit: int,
        window_ms: int,
        now_ms: int,
        floor: int = 0,
    ) -> Reservation:
        """Add ``weight`` to the market's window if it stays within ``limit`` and the
        market is not halted at ``now_ms`` (the exchange's time).

        A weight above the limit is cut to it: it is granted on an empty window only.
        ``floor`` is what the caller knows the window already holds (the exchange's
        used-weight header, its own spending): the count is first raised to it, never
        lowered, granted or not. So a Redis that restarted empty is seeded by the first
        reservation of each process, in the same round trip.
        """
        weight = max(0, min(int(weight), int(limit)))
        ttl = _expiry_ms(window_start_ms, window_ms, now_ms)
        granted, used, pause, ban = await self._run(
            "reserve",
            [self.window_key(market, window_start_ms), self.halt_key(market)],
            [weight, int(limit), ttl, int(now_ms), max(0, int(floor))],
        )
        return Reservation(bool(granted), int(used), _optional(pause), _optional(ban))

    async def settle(
        self, market: str, window_start_ms: int, used: int, *, window_ms: int, now_ms: int
    ) -> int:
        """Raise the window's count to ``used`` (the exchange's header) if that is higher.

        Returns the count now stored.
        """
        ttl = _expiry_ms(window_start_ms, window_ms, now_ms)
        key = self.window_key(market, window_start_ms)
        return int(await self._run("settle", [key], [int(used), ttl]))

    async def settle_orders(
        self,
        account: str,
        market: str,
        interval_ms: int,
        window_start_ms: int,
        count: int,
        *,
        now_ms: int,
    ) -> int:
        """Raise an account's ORDERS window to ``count`` (``X-MBX-ORDER-COUNT-*``) if higher."""
        ttl = _expiry_ms(window_start_ms, interval_ms, now_ms)
        key = self.orders_key(account, market, interval_ms, window_start_ms)
        return int(await self._run("settle", [key], [int(count), ttl]))

    async def pause(self, market: str, until_ms: int, *, now_ms: int, banned: bool = False) -> int:
        """Halt the market for every process until ``until_ms`` (a 429; a 418 if ``banned``).

        A halt only ever moves later. Returns the halt's end now stored.
        """
        ttl = max(int(until_ms) - int(now_ms), 0) + HALT_MARGIN_MS
        field = "ban" if banned else "pause"
        return int(await self._run("pause", [self.halt_key(market)], [field, int(until_ms), ttl]))

    async def paused_until(self, market: str) -> Halt:
        """The market's halts as stored (one HMGET)."""
        from coredis.exceptions import ConnectionError as RedisConnectionError

        try:
            pause, ban = await self.client.hmget(self.halt_key(market), ["pause", "ban"])
        except (RedisConnectionError, TimeoutError, OSError) as exc:
            raise SharedLimitsError(f"Redis did not answer (paused_until): {exc}") from exc
        return Halt(_optional(pause or 0), _optional(ban or 0))

    async def reserve_orders(
        self,
        account: str,
        market: str,
        windows: Sequence[tuple[int, int]],
        *,
        now_ms: int,
        floors: Mapping[tuple[int, int], int] | None = None,
    ) -> OrderGrant:
        """Count one order in every ``(interval_ms, limit)`` window it may fall in, or none.

        Near a boundary (within ``window_guard_ms``) an order counts in both windows,
        since the exchange's clock may be on either side of it. ``floors`` maps
        ``(interval_ms, window index)`` to what the caller knows that window holds: each
        count is raised to it first (never lowered), as ``reserve``'s ``floor``.
        """
        keys: list[str] = []
        limits: list[int] = []
        known: list[int] = []
        spans: list[tuple[int, int]] = []  # (interval, window index) of each key
        ttl = 0
        for interval_ms, limit in windows:
            guard = window_guard_ms(interval_ms)
            first = math.floor((now_ms - guard) / interval_ms)
            last = math.floor((now_ms + guard) / interval_ms)
            for index in range(first, last + 1):
                start = index * interval_ms
                keys.append(self.orders_key(account, market, interval_ms, start))
                limits.append(int(limit))
                known.append(max(0, int((floors or {}).get((interval_ms, index), 0))))
                spans.append((interval_ms, index))
                ttl = max(ttl, _expiry_ms(start, interval_ms, now_ms))
        if not keys:
            return OrderGrant(True)
        granted, which = await self._run("reserve_orders", keys, [ttl, *limits, *known])
        if granted:
            return OrderGrant(True)
        interval_ms, index = spans[int(which) - 1]
        reopens = (index + 1) * interval_ms + window_guard_ms(interval_ms)
        return OrderGrant(False, interval_ms, math.ceil(reopens))


@asynccontextmanager
async def open_redis_windows(
    url: str,
    *,
    key: str = "default",
    connect_timeout: float = 0.5,
    read_timeout: float = 0.5,
) -> AsyncIterator[RedisWindows]:
    """Open a Redis connection pool for ``RedisWindows`` and close it on exit.

    Args:
        url: ``redis://host:port/db``.
        key: the name of what is shared (see ``RedisWindows``).
        connect_timeout: seconds to establish a connection before ``SharedLimitsError``.
        read_timeout: seconds to wait for an answer before ``SharedLimitsError``.

    Nothing is sent on entry: a Redis that is down is reported by the first operation,
    and every operation after it tries again (no retries inside one operation, so a
    failure is reported within one timeout).
    """
    try:
        import coredis
        from coredis.retry import NoRetryPolicy
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the shared rate limiter needs the Redis client: pip install 'aiocea-trio[redis]'"
        ) from exc
    client = coredis.Redis.from_url(
        url,
        decode_responses=True,
        connect_timeout=connect_timeout,
        stream_timeout=read_timeout,
        retry_policy=NoRetryPolicy(),
    )
    # coredis's pool runs in an AnyIO task group (a trio nursery): the caller's own
    # exception is kept whole, not wrapped in a group, as ``_groups.open_nursery`` does.
    body: BaseException | None = None
    with collapse_groups():
        async with client:
            try:
                yield RedisWindows(client, key)
            except BaseException as exc:
                if _holds_cancelled(exc):
                    raise  # a scope in here, or the caller's, catches it
                body = exc
    if body is not None:
        _reraise(body)
