"""The bounded buffer between the readers and the consumer, with a policy per stream."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

__all__ = ["Buffer", "Policy", "StreamClosedError", "StreamError", "StreamOverflowError"]


class StreamError(Exception):
    """Base of the stream errors."""


class StreamOverflowError(StreamError):
    """A lossless stream had more events waiting than its bound: the consumer is too slow.

    Raised to the consumer after the events received before the overflow, and the stream
    ends: dropping events silently is what this layer never does. Raise the bound
    (``buffer=``), read faster, or choose ``Policy.LATEST`` for that stream.
    """


class StreamClosedError(StreamError, trio.ClosedResourceError):
    """The stream's block was left; it cannot be read or changed any more."""


class Policy(enum.Enum):
    """What happens when the consumer is slower than a stream."""

    #: Every event is kept, up to the buffer bound; past it, ``StreamOverflowError``.
    LOSSLESS = "lossless"
    #: Only the newest unread event is kept: an older unread one is replaced.
    LATEST = "latest"


class _Slot:
    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data


class Buffer:
    """One queue in arrival order. A LATEST stream has at most one entry, whose value is
    replaced in place; a LOSSLESS stream may have ``bound`` entries. Gaps always go in.

    ``put`` never blocks, so a reader never waits for the consumer.
    """

    def __init__(self, bound: int, convert: Callable[[str, Any], Any]) -> None:
        self.bound = bound
        self._convert = convert
        self._queue: deque[tuple[str, Any]] = deque()
        self._latest: dict[str, _Slot] = {}
        self._pending: dict[str, int] = {}
        self._lot = trio.lowlevel.ParkingLot()
        self._error: BaseException | None = None
        self._closed = False
        self.peak = 0

    def put(self, stream: str, data: Any, policy: Policy) -> bool:
        """Queue one payload; False if the buffer failed (overflow) and takes nothing more."""
        if self._error is not None or self._closed:
            return False
        if policy is Policy.LATEST:
            slot = self._latest.get(stream)
            if slot is not None:
                slot.data = data
                return True
            slot = self._latest[stream] = _Slot(data)
            self._queue.append((stream, slot))
        else:
            n = self._pending.get(stream, 0) + 1
            if n > self.bound:
                self.fail(
                    StreamOverflowError(
                        f"{stream}: more than {self.bound} events waiting to be read "
                        "(lossless policy); read faster, raise buffer=, or use Policy.LATEST"
                    )
                )
                return False
            self._pending[stream] = n
            self._queue.append((stream, data))
        self.peak = max(self.peak, len(self._queue))
        self._lot.unpark()
        return True

    def put_event(self, stream: str, event: Any) -> None:
        """Queue an already-built event (a ``StreamGap``): never coalesced, never bounded."""
        if self._error is None and not self._closed:
            self._queue.append(("", event))
            self._lot.unpark()

    def fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
            self._lot.unpark_all()

    def close(self) -> None:
        self._closed = True
        self._lot.unpark_all()

    def __len__(self) -> int:
        return len(self._queue)

    async def get(self) -> Any:
        """The next event (a checkpoint); after a failure, the error once the queue is read."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._queue:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise trio.EndOfChannel
            await self._lot.park()
        stream, item = self._queue.popleft()
        if not stream:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        if isinstance(item, _Slot):
            del self._latest[stream]
            item = item.data
        else:
            n = self._pending[stream] - 1
            if n:
                self._pending[stream] = n
            else:
                del self._pending[stream]
        await trio.lowlevel.cancel_shielded_checkpoint()
        return self._convert(stream, item)
