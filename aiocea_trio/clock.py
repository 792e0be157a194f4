"""The exchange's clock, and when a client measures it.

Binance checks a signed request's ``timestamp`` against its own clock, and counts request
weight and orders in windows of its own clock. An `ExchangeClock` holds the one estimate of
that clock: this machine's wall time at trio's time 0 (the local anchor), plus the offset
last measured. Timestamps follow trio's clock from that anchor, so they never jump with the
system clock and they follow ``MockClock`` in tests.

A `RateLimiter` owns one clock, and every client sharing the limiter reads it: the windows
are the exchange's, so a client that never measured the offset itself still counts in the
same windows as the one that did. `TimeSync` says when a client measures it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import attrs
import trio

from ._values import seconds_positive

__all__ = ["ExchangeClock", "TimeSync"]


@attrs.frozen
class TimeSync:
    """When a client measures the server-time offset: a value object, shared freely.

    Attributes:
        auto: measure it before the first signed request, and again every ``interval``.
        interval: seconds between automatic re-syncs; None for never (after the first).
    """

    auto: bool = True
    interval: float | None = attrs.field(default=3600.0, validator=seconds_positive)


class ExchangeClock:
    """The exchange's time on trio's clock: a local anchor and a measured offset.

    One per `RateLimiter`, read by every client that shares it. Callbacks registered with
    `on_change` run when a measurement moves the offset (the limiter re-indexes its windows).
    """

    def __init__(self) -> None:
        self._local_anchor_ms = 0.0  # this machine's epoch ms at trio time 0
        self._offset_ms = 0
        self._known = False
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        state = f"offset_ms={self._offset_ms}" if self._known else "not measured"
        return f"ExchangeClock({state})"

    def start(self) -> None:
        """Anchor trio's clock to the wall clock (once per ``trio.run``, when a client opens).

        The offset (server minus wall time) is kept: it does not depend on trio's clock.
        """
        self._local_anchor_ms = time.time() * 1000.0 - trio.current_time() * 1000.0

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever a measurement moves the offset."""
        self._listeners.append(callback)

    @property
    def known(self) -> bool:
        """The offset was measured, not assumed 0."""
        return self._known

    @property
    def offset_ms(self) -> int:
        """Server time minus local time, as last measured."""
        return self._offset_ms

    def local_ms(self) -> int:
        """This machine's idea of the epoch time in ms, following trio's clock."""
        return int(self._local_anchor_ms + trio.current_time() * 1000.0)

    def now_ms(self) -> int:
        """The estimated server time: local time plus the measured offset."""
        return int(self._local_anchor_ms + trio.current_time() * 1000.0) + self._offset_ms

    def measured(self, server_ms: int, sent_ms: int, received_ms: int) -> None:
        """The server said ``server_ms`` between local ``sent_ms`` and ``received_ms``.

        The offset is the server time minus the midpoint of the two.
        """
        offset = server_ms - (sent_ms + received_ms) // 2
        changed = offset != self._offset_ms
        self._offset_ms = offset
        self._known = True
        if changed:
            for callback in self._listeners:
                callback()


class ClockSync:
    """One client's side of the clock: its `TimeSync` policy and when it last synced."""

    def __init__(self, clock: ExchangeClock, policy: TimeSync) -> None:
        self.clock = clock
        self.policy = policy
        self.last_sync: float | None = None  # trio time of the last ``time`` measurement
        self._lock = trio.Lock()

    def reset(self) -> None:
        """A client (re)opens: the clock is anchored again, and synced before signing."""
        self.clock.start()
        self.last_sync = None
        self._lock = trio.Lock()

    def due(self) -> bool:
        if self.last_sync is None:
            return True
        interval = self.policy.interval
        return interval is not None and trio.current_time() - self.last_sync >= interval

    def synced(self, server_ms: int, sent_ms: int, received_ms: int) -> None:
        """A ``time`` request answered: measure, and start the interval again."""
        self.clock.measured(server_ms, sent_ms, received_ms)
        self.last_sync = trio.current_time()

    async def ensure(self, sync: Callable[[], Awaitable[object]]) -> None:
        """Run ``sync()`` if the policy says a sync is due; concurrent callers sync once."""
        if not self.policy.auto or not self.due():
            return
        async with self._lock:
            if self.due():  # another task may have synced while we waited
                await sync()
