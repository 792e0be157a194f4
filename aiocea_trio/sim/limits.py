"""Request-weight and order-count accounting, with Binance's 429 and escalating 418 bans.

Windows are fixed and aligned to multiples of their length since the epoch, like Binance's
minute: with ``window=60`` the weight resets at every whole minute of the simulator's clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from .errors import ApiError

__all__ = ["OrderCounter", "WeightLimiter", "interval_label"]

_UNITS = ((86400, "D", "DAY"), (3600, "H", "HOUR"), (60, "M", "MINUTE"), (1, "S", "SECOND"))


def interval_label(seconds: int) -> tuple[str, str, int]:
    """``(header suffix, interval name, intervalNum)`` of a window, e.g. 60 -> ("1M", "MINUTE", 1).

    Binance's headers name the window: ``X-MBX-USED-WEIGHT-1M``; a 10 s window gives ``-10S``.
    """
    for size, letter, name in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{letter}", name, seconds // size
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.define(eq=False)
class _IpState:
    window: int = -1
    used: int = 0
    warned_window: int = -1  # window in which a 429 was answered
    after_429: int = 0  # requests received since that 429, in that window
    banned_until_ms: int = 0
    bans: int = 0


@attrs.define(eq=False)
class WeightLimiter:
    """Per-IP, per-market REQUEST_WEIGHT accounting.

    Args:
        window: window length in whole seconds (Binance: 60).
        limits: weight limit per market per window.
        ban_base: first ban length in seconds (Binance: 2 minutes); each further ban doubles.
        ban_max: longest ban in seconds (Binance: 3 days).
        ban_grace: requests tolerated after a 429 within the same window before the IP is
            banned (requests already in flight when the 429 was sent).
    """

    window: int
    limits: Mapping[str, int]
    ban_base: float = 120.0
    ban_max: float = 3 * 86400.0
    ban_grace: int = 5
    _ips: dict[tuple[str, str], _IpState] = attrs.field(factory=dict, init=False)
    header: str = attrs.field(init=False)
    #: How many 429 and 418 answers were given (for tests and benchmarks).
    answered_429: int = attrs.field(default=0, init=False)
    answered_418: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.window < 1 or int(self.window) != self.window:
            raise ValueError("weight_window must be a whole number of seconds >= 1")
        self.window = int(self.window)
        self.header = "X-MBX-USED-WEIGHT-" + interval_label(int(self.window))[0]

    def used(self, market: str, ip: str, now_ms: int) -> int:
        """Weight used by ``ip`` in the current window."""
        state = self._ips.get((market, ip))
        if state is None or state.window != now_ms // (self.window * 1000):
            return 0
        return state.used

    def charge(self, market: str, ip: str, weight: int, now_ms: int) -> int:
        """Charge a request; returns the weight used so far in this window.

        Raises:
            ApiError: 418 while banned or when sending on after a 429; 429 over the limit.
        """
        state = self._ips.setdefault((market, ip), _IpState())
        if now_ms < state.banned_until_ms:
            raise self._banned(state, now_ms)
        win_ms = self.window * 1000
        window = now_ms // win_ms
        if state.window != window:
            state.window, state.used = window, 0
        if state.warned_window == window:
            state.after_429 += 1
            if state.after_429 > self.ban_grace:
                state.bans += 1
                length = min(self.ban_base * 2 ** (state.bans - 1), self.ban_max)
                state.banned_until_ms = now_ms + int(length * 1000)
                state.warned_window = -1
                raise self._banned(state, now_ms)
        state.used += weight
        limit = self.limits[market]
        if state.used > limit:
            if state.warned_window != window:
                state.warned_window, state.after_429 = window, 0
            self.answered_429 += 1
            retry = math.ceil(((window + 1) * win_ms - now_ms) / 1000)
            _, name, num = interval_label(int(self.window))
            raise ApiError(
                -1003,
                f"Too much request weight used; current limit is {limit} request weight per "
                f"{num} {name}. Please use WebSocket Streams for live updates to avoid polling "
                "the API.",
                status=429,
                headers={"Retry-After": str(retry), self.header: str(state.used)},
            )
        return state.used

    def refund(self, market: str, ip: str, weight: int, now_ms: int) -> int:
        """Give back weight (spot orders that succeeded are free); returns the new total."""
        state = self._ips.get((market, ip))
        if state is None or state.window != now_ms // (self.window * 1000):
            return 0
        state.used = max(0, state.used - weight)
        return state.used

    def _banned(self, state: _IpState, now_ms: int) -> ApiError:
        self.answered_418 += 1
        retry = max(1, math.ceil((state.banned_until_ms - now_ms) / 1000))
        return ApiError(
            -1003,
            f"Way too much request weight used; IP banned until {state.banned_until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            status=418,
            headers={"Retry-After": str(retry)},
        )


@attrs.define(eq=False)
class OrderCounter:
    """Per-account ORDERS counters (e.g. 10 s and 1 day windows), fixed aligned windows."""

    limits: Mapping[str, Sequence[tuple[int, int]]]
    _counts: dict[tuple[str, str, int], tuple[int, int]] = attrs.field(factory=dict, init=False)

    def count(self, account: str, market: str, now_ms: int) -> dict[str, str]:
        """Count one new order; returns the ``X-MBX-ORDER-COUNT-*`` headers.

        Raises:
            ApiError: 429 / -1015 when a window is full (the order is not counted).
        """
        updates = []
        for seconds, limit in self.limits[market]:
            window = now_ms // (seconds * 1000)
            key = (account, market, seconds)
            win, n = self._counts.get(key, (window, 0))
            if win != window:
                n = 0
            if n + 1 > limit:
                _, name, num = interval_label(seconds)
                retry = math.ceil(((window + 1) * seconds * 1000 - now_ms) / 1000)
                raise ApiError(
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {num} {name}.",
                    status=429,
                    headers={"Retry-After": str(retry)},
                )
            updates.append((key, window, n + 1))
        headers = {}
        for key, window, n in updates:
            self._counts[key] = (window, n)
            headers["X-MBX-ORDER-COUNT-" + interval_label(key[2])[0]] = str(n)
        return headers
