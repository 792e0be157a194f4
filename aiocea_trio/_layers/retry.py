"""The retries layer: GETs are retried under the client's `RetryPolicy`; other methods
go through once (an order's resends are the exactly-once layer's decision)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import (
    BinanceBanError,
    BinanceRateLimitError,
    BinanceResponseError,
    BinanceServerError,
    BinanceTransportError,
)
from ..retries import RetryPolicy
from .call import Call, Counters, Send

__all__ = ["Retrying", "retried", "retryable"]

_T = TypeVar("_T")


def retryable(exc: BaseException) -> bool:
    """What may succeed next time: transport errors, timeouts, 5xx and 429s, not a ban."""
    if isinstance(exc, BinanceBanError):
        return False
    if isinstance(exc, BinanceTransportError | BinanceServerError | BinanceRateLimitError):
        return True
    return isinstance(exc, BinanceResponseError) and exc.status >= 500


async def retried(
    policy: RetryPolicy,
    counters: Counters,
    once: Callable[[], Awaitable[_T]],
    what: object,
    failed: Exception | None = None,
) -> _T:
    """Await ``once()`` under ``policy``, counting each retry in ``counters.retries``
    (``failed``: the caller's own first try failed so, see `RetryPolicy.run`)."""
    return await policy.run(
        once, retryable=retryable, what=what, on_retry=counters.count_retry, failed=failed
    )


class _Described:
    """A call that prints as its description (made only when a retry is logged)."""

    __slots__ = ("_call",)

    def __init__(self, call: Call) -> None:
        self._call = call

    def __str__(self) -> str:
        return self._call.describe


class Retrying:
    """Bounded retries with backoff and jitter, each one counted in ``counters.retries``."""

    def __init__(self, inner: Send, *, policy: RetryPolicy, counters: Counters) -> None:
        self.inner = inner
        self.policy = policy
        self._counters = counters

    async def __call__(self, call: Call) -> Any:
        if call.method != "GET":
            return await self.inner(call)
        try:  # the first try here: most succeed, and need none of the retry machinery
            return await self.inner(call)
        except Exception as exc:
            failed = exc
        # The call itself names it in a retry's log line: its description is built only then.
        once = functools.partial(self.inner, call)
        return await retried(self.policy, self._counters, once, _Described(call), failed)
