"""The rate gate: a request waits for its weight (and an order for the account's order
budget) before the attempt, and settles what it spent after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import trio

from ..errors import BinanceBanError, BinanceRateLimitError
from ..limits import OrderBudget, RateLimiter
from .call import Call
from .lane import Answered

__all__ = ["RateGate"]


class _Attempt(Protocol):
    async def __call__(
        self, call: Call, seen: Callable[[Answered], None] | None = None
    ) -> Any: ...


class RateGate:
    """Reserve, attempt, release: the limiter's reservation brackets every attempt.

    Args:
        inner: the attempt (``wire.Attempt``), told of the response before decoding.
        limiter: the per-IP request-weight limiter.
        orders: the account's order budget (ORDERS windows).
        now_ms: the exchange's time.
    """

    def __init__(
        self,
        inner: _Attempt,
        *,
        limiter: RateLimiter,
        orders: OrderBudget,
        now_ms: Callable[[], int],
    ) -> None:
        self._inner = inner
        self._limiter = limiter
        self._orders = orders
        self._now_ms = now_ms

    async def __call__(self, call: Call) -> Any:
        market, endpoint = call.market, call.endpoint
        weight = call.weight
        if endpoint.counts_as_order:
            await self._orders.reserve(market, self._limiter.limits(market))
        limiter, describe = self._limiter, (call.method, call.path)
        # A request that fits now skips the scheduler pass of acquire's checkpoint: the
        # attempt waits on its socket right after sending anyway. A cancelled caller still
        # sends nothing (the cancellation is looked at before anything is reserved).
        await trio.lowlevel.checkpoint_if_cancelled()
        if not limiter.admit_now(market, weight, self._now_ms, describe=describe):
            await limiter.acquire(market, weight, self._now_ms, describe=describe)
        answered: Answered | None = None

        def seen(response: Answered) -> None:
            nonlocal answered
            answered = response
            self._orders.reconcile(market, response.headers)

        try:
            return await self._inner(call, seen)
        except BinanceBanError as exc:
            now = self._now_ms()
            until = exc.banned_until or now + int(1000 * (exc.retry_after or 120))
            self._limiter.note_banned(market, until, now)
            raise
        except BinanceRateLimitError as exc:
            self._limiter.note_rate_limited(market, exc.retry_after)
            raise
        finally:
            charged: int | None = None
            if answered is not None and answered.is_success and endpoint.free_on_success:
                charged = 0
            self._limiter.release(
                market,
                weight,
                charged=charged,
                headers=answered.headers if answered is not None else None,
                server_now_ms=self._now_ms,
            )
