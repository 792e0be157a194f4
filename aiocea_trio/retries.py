"""Bounded retries with exponential backoff and jitter, logged under our own names.

The loop is tenacity's, configured per call: its ``before_sleep`` callback logs
each scheduled retry to the ``aiocea_trio.retries`` logger at INFO, so a script
that configures no logging prints nothing and a user who wants to see retries
sets that logger's level (the CLI does with ``-v``). stamina, which wraps
tenacity, logs to its global hooks (a bare ``stamina.retry_scheduled`` line on
stderr when logging is not configured) and cannot be scoped to one library.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import tenacity
import trio

from ._values import count_at_least_1, seconds

__all__ = ["OrderSafety", "RetryPolicy"]

_T = TypeVar("_T")

logger = logging.getLogger("aiocea_trio.retries")


@attrs.frozen
class RetryPolicy:
    """How idempotent requests are retried: a value object, shared freely.

    Attributes:
        attempts: tries in all, the first included (1: never retry).
        wait_initial: the first backoff (s); each later one doubles.
        wait_max: the longest backoff (s), jitter excluded.
        wait_jitter: up to this many seconds added at random to each backoff, so
            that many clients failing together do not retry together.
    """

    attempts: int = attrs.field(default=4, validator=count_at_least_1)
    wait_initial: float = attrs.field(default=0.2, validator=seconds)
    wait_max: float = attrs.field(default=5.0, validator=seconds)
    wait_jitter: float = attrs.field(default=0.2, validator=seconds)

    async def run(
        self,
        once: Callable[[], Awaitable[_T]],
        *,
        retryable: Callable[[BaseException], bool],
        what: object = "request",
        on_retry: Callable[[], None] | None = None,
        failed: Exception | None = None,
    ) -> _T:
        """Await ``once()`` until it returns, a failure is not ``retryable``, or the
        attempts run out (then the last error is raised as it was).

        ``failed``: the first try was made by the caller and failed with this error; it is
        raised as it is unless ``retryable``, else the retries follow it (the attempts
        count it).
        """
        # The first try runs outside tenacity: most requests succeed at once, and the
        # retry machinery (its state objects, its strategies) would cost each of them.
        if failed is None:
            try:
                return await once()
            except Exception as exc:
                failed = exc
        if self.attempts == 1 or not retryable(failed):
            raise failed
        first: list[Exception] = [failed]

        async def again() -> _T:
            if first:  # tenacity's attempt 1 is the failure already seen
                raise first.pop()
            return await once()

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None:
                on_retry()
            error = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.info(
                "%s failed (%s); retry %d of %d in %.2f s",
                what,
                error,
                state.attempt_number,
                self.attempts - 1,
                wait,
            )

        def should_retry(error: BaseException) -> bool:
            # trio.Cancelled and KeyboardInterrupt are BaseExceptions: never retried.
            return isinstance(error, Exception) and retryable(error)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(multiplier=self.wait_initial, max=self.wait_max)
            + tenacity.wait_random(0, self.wait_jitter),
            retry=tenacity.retry_if_exception(should_retry),
            reraise=True,
            before_sleep=before_sleep,
            sleep=trio.sleep,
        )
        async for attempt in retrying:
            with attempt:
                return await again()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


@attrs.frozen
class OrderSafety:
    """How order placements and cancels are tried again: a value object, shared freely.

    An order is never retried blindly: after an ambiguous failure it is looked up, and
    sent again only when the exchange does not have it (a cancel: when it is still open).

    Attributes:
        attempts: tries in all, the first included; each resend only after a look-up said
            the order is not there (or after a connection that never opened).
        lookup_delay: seconds to wait after an ambiguous failure before looking the order
            up, so that an order still in flight lands first.
    """

    attempts: int = attrs.field(default=3, validator=count_at_least_1)
    lookup_delay: float = attrs.field(default=1.0, validator=seconds)
