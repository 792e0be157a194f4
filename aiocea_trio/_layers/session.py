"""The session layer: what a request needs before it is sent, and the one re-sync.

Before a market's first request its limits are learned (exchangeInfo, once per limiter),
and before a signed request the clock is synced when the client's `TimeSync` says so. A
signed request refused with ``-1021`` (timestamp outside recvWindow) re-syncs the clock
and is sent once more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..clock import ClockSync
from ..endpoints import EXCHANGE_INFO, SERVER_TIME, Endpoint
from ..errors import BinanceAPIError, BinanceError
from ..limits import MarketLimits, RateLimiter
from ..markets import Market
from ..retries import RetryPolicy
from .call import Call, Counters, Send
from .retry import retried

__all__ = ["Session", "server_time"]

logger = logging.getLogger("aiocea_trio.client")

_INVALID_TIMESTAMP: Final = -1021
_MOCKED_HINT: Final = (
    "aiocea_trio: {what} is the client's own request: it reads each market's exchangeInfo "
    "once for the rate limits, and the server time before signed requests. Under respx, "
    "call aiocea_trio.testing.mock_exchange_info(respx_mock) to answer both, or pass "
    "limiter=RateLimiter(learn_limits=False) and auto_sync_time=False to the client "
    "(docs/testing.md)."
)


def server_time(data: Any, call: Call) -> int:
    """The ``serverTime`` of a time or exchangeInfo answer, or a response error."""
    value = data.get("serverTime") if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise call.wrong_shape("an object with an integer serverTime", data)


class Session:
    """Prepare each request (limits, clock), then send it through ``inner`` (the rate gate).

    Args:
        inner: the rate gate.
        bases: each market's host, for the exchangeInfo and time requests.
        limiter: learns each market's limits once, from whichever client asks first.
        sync: the client's clock policy and state.
        local_ms: this machine's time (the midpoint of a measurement).
        policy, counters: the retries of the exchangeInfo and time requests.
    """

    def __init__(
        self,
        inner: Send,
        *,
        bases: Mapping[Market, str],
        limiter: RateLimiter,
        sync: ClockSync,
        local_ms: Callable[[], int],
        policy: RetryPolicy,
        counters: Counters,
    ) -> None:
        self._inner = inner
        self._bases = bases
        self._limiter = limiter
        self._sync = sync
        self._local_ms = local_ms
        self._policy = policy
        self._counters = counters

    async def __call__(self, call: Call) -> Any:
        """One logical try: limits known, clock synced, one re-sync on -1021."""
        if call.signed or self._limiter.needs_limits(call.market):
            await self.prepare(call)
        try:
            return await self._inner(call)
        except BinanceAPIError as exc:
            if not (call.signed and exc.code == _INVALID_TIMESTAMP):
                raise
            logger.info("%s: -1021, re-syncing the clock once", call.describe)
            await self.sync_time(call.market)
            return await self._inner(call)

    async def prepare(self, call: Call) -> None:
        """What a request needs before it is sent: the limits, and a synced clock."""
        await self._ensure_limits(call.market)
        if call.signed:
            await self._sync.ensure(lambda: self.sync_time(call.market))

    async def sync_time(self, market: Market) -> int:
        """Measure the server-time offset on ``market``'s time endpoint; return it."""
        call = self._fetch_call(SERVER_TIME[market])
        before, data, after = await self._timed(call)
        self._sync.synced(server_time(data, call), before, after)
        offset = self._sync.clock.offset_ms
        logger.debug("server time offset %+d ms (%s)", offset, market.value)
        return offset

    async def _ensure_limits(self, market: Market) -> None:
        limiter = self._limiter
        if not limiter.needs_limits(market):
            return
        async with limiter.learn_lock(market):
            if not limiter.needs_limits(market):
                return
            limits: MarketLimits | None = None
            call = self._fetch_call(EXCHANGE_INFO[market])
            try:
                before, info, after = await self._timed(call)
                if not isinstance(info, dict) or not isinstance(info.get("rateLimits"), list):
                    raise call.wrong_shape("exchangeInfo with rateLimits", info)
                limits = MarketLimits.from_exchange_info(info["rateLimits"])
                if self._sync.last_sync is None and "serverTime" in info:
                    # The limiter's windows follow the exchange's clock: align with it
                    # now, for free, rather than at the first signed request.
                    self._sync.clock.measured(server_time(info, call), before, after)
            except (BinanceError, ValueError, AttributeError, TypeError) as exc:
                logger.warning(
                    "could not learn %s rate limits (%s); using Binance's published ones",
                    market.value,
                    exc,
                )
            limiter.set_limits(market, limits)

    def _fetch_call(self, endpoint: Endpoint) -> Call:
        return Call(endpoint, self._bases[endpoint.market])

    async def _timed(self, call: Call) -> tuple[int, Any, int]:
        """A GET retried like any other (but not prepared, which would learn limits
        again), with the local times around the successful try."""

        async def once() -> tuple[int, Any, int]:
            before = self._local_ms()
            data = await self._inner(call)
            return before, data, self._local_ms()

        try:
            return await retried(self._policy, self._counters, once, "request")
        except AssertionError as exc:  # a mocked transport (respx) refusing the request
            exc.add_note(_MOCKED_HINT.format(what=call.describe))
            raise
