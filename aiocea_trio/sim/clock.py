"""The simulator's clock: trio's clock anchored to wall-clock epoch milliseconds.

``now_ms = anchor_epoch_ms + (trio.current_time() - anchor_trio) * 1000``, anchored when the
simulator is created inside a trio run, else the first time it is read in one. Under
``trio.testing.MockClock(autojump_threshold=0)`` time jumps, so rate-limit windows and resting
orders move without real waiting. The client anchors its own timestamps the same way, so both
agree under a mock clock.
"""

from __future__ import annotations

import time

import attrs
import trio

__all__ = ["SimClock"]


@attrs.define(eq=False)
class SimClock:
    """Epoch-millisecond clock following ``trio.current_time()``.

    Args:
        start_time_ms: the epoch ms the clock shows when first read; wall-clock time if None.
    """

    start_time_ms: int | None = None
    _anchor_ms: float | None = attrs.field(default=None, init=False)
    _anchor_trio: float = attrs.field(default=0.0, init=False)
    _run: object = attrs.field(default=None, init=False)
    _last_ms: int = attrs.field(default=0, init=False)

    def _anchor(self) -> None:
        self._anchor_trio = trio.current_time()
        self._run = trio.lowlevel.current_root_task()
        self._anchor_ms = (
            float(self.start_time_ms) if self.start_time_ms is not None else time.time() * 1000.0
        )

    def now_ms(self) -> int:
        """Current simulated epoch time in milliseconds (must be called inside trio)."""
        if self._anchor_ms is None or self._run is not trio.lowlevel.current_root_task():
            # First use, or a new trio run (trio clocks are per run): re-anchor. A sim reused in
            # a later run never shows time going backwards.
            self._anchor()
            self._anchor_ms = max(self._anchor_ms or 0.0, float(self._last_ms))
        now = int(self._anchor_ms + (trio.current_time() - self._anchor_trio) * 1000.0)
        self._last_ms = now
        return now

    def anchor_if_in_trio(self) -> None:
        """Anchor now if called inside a trio run (so a client opened right after agrees to the
        microsecond under a mock clock); outside trio, the first read anchors."""
        try:
            trio.lowlevel.current_root_task()
        except RuntimeError:
            return
        self.now_ms()

    def initial_ms(self) -> int:
        """The anchor time if known, else the configured start or the wall clock (no trio)."""
        if self._anchor_ms is not None:
            return int(self._anchor_ms)
        if self.start_time_ms is not None:
            return self.start_time_ms
        return int(time.time() * 1000)
