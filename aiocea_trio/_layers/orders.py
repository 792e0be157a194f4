"""The exactly-once layer: an order is placed, or cancelled, once, whatever the network does.

The registry says which endpoints these are (``Endpoint.order``). A placement carries the
same ``newClientOrderId`` on every try; after an ambiguous failure the order is looked up
by it, and sent again only if the exchange does not have it. A cancel is checked the same
way before it is sent again. Every other request passes straight through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import attrs
import httpx
import trio

from ..endpoints import QUERY_ORDER, OrderAction
from ..errors import (
    BinanceAPIError,
    BinanceError,
    BinanceRateLimitError,
    BinanceResponseError,
    BinanceServerError,
    BinanceTransportError,
    OrderStatusUnknownError,
)
from ..retries import OrderSafety
from .call import Call, Counters, Send

__all__ = ["ExactlyOnce", "order_answer"]

logger = logging.getLogger("aiocea_trio.client")

# Binance's "the request may or may not have been executed" codes.
_STATUS_UNKNOWN_CODES: Final = frozenset({-1006, -1007})
_NO_SUCH_ORDER: Final = -2013
_CANCELLED_STATES: Final = frozenset({"CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"})
_RESEND: Final = object()  # an order request's lookup says: send it again

_Decide = Callable[[Any, BinanceError], Any]


class ExactlyOnce:
    """Orders through the exactly-once protocol; everything else straight to ``inner``.

    Args:
        inner: the retries layer (an order's POST or DELETE goes through it once; the
            look-ups, GETs, are retried).
        prepare: what a request needs before it is sent (limits, clock); awaited before
            each try, outside the ambiguity handling: a failure there means not sent.
        safety: how many tries, and how long to wait before a look-up.
        new_id: makes a ``newClientOrderId`` when the caller gave none.
        counters: resends count as retries; look-ups as ``order_lookups``.
    """

    def __init__(
        self,
        inner: Send,
        *,
        prepare: Callable[[Call], Awaitable[None]],
        safety: OrderSafety,
        new_id: Callable[[], str],
        counters: Counters,
    ) -> None:
        self._inner = inner
        self._prepare = prepare
        self.safety = safety
        self._new_id = new_id
        self._counters = counters

    async def __call__(self, call: Call) -> Any:
        action = call.endpoint.order
        if action is OrderAction.PLACE:
            return await self._place(call)
        if action is OrderAction.CANCEL:
            return await self._cancel(call)
        return await self._inner(call)

    async def _place(self, call: Call) -> Any:
        """The same ``newClientOrderId`` on every try, and a lookup before any resend."""
        cid = str(call.params.get("newClientOrderId") or self._new_id())
        call = attrs.evolve(call, params={**call.params, "newClientOrderId": cid})

        def decide(found: Any, cause: BinanceError) -> Any:
            # Not on the exchange: sending again (same id) is safe.
            return _RESEND if found is None else found

        return await self._order_request(call, {"origClientOrderId": cid}, decide)

    async def _cancel(self, call: Call) -> Any:
        """After an ambiguous failure, ask the exchange before cancelling again."""
        ident = {k: call.params[k] for k in ("orderId", "origClientOrderId") if k in call.params}

        def decide(found: Any, cause: BinanceError) -> Any:
            if found is None:
                raise cause
            if str(found.get("status")) in _CANCELLED_STATES:
                return found
            return _RESEND  # still open: the cancel did not land

        return await self._order_request(call, ident, decide)

    async def _order_request(self, call: Call, ident: Mapping[str, object], decide: _Decide) -> Any:
        """Send an order request; after an ambiguous failure, look the order up by
        ``ident`` and let ``decide`` return the answer or ``_RESEND``.

        Ambiguous is anything but a well-formed answer from the exchange: a lost
        or cut connection, a timeout, a 5xx, Binance's "status unknown" codes, or
        a body that is not an order (HTML, truncated JSON, a proxy's 408 page).
        A connection that never opened is resent without a lookup; Binance's own
        rejections (its JSON error payload, 429s included) are raised at once.
        """
        last: BinanceError | None = None
        for _ in range(self.safety.attempts):
            # A failure here (a clock sync that cannot reach the exchange) is raised as
            # it is: the order has not been sent, so there is nothing to look up.
            await self._prepare(call)
            try:
                return order_answer(await self._inner(call), call)
            except BinanceTransportError as exc:
                last = exc
                if _never_sent(exc):
                    self._counters.retries += 1
                    continue
            except BinanceAPIError as exc:
                if not _outcome_unknown(exc):
                    raise
                last = exc
            except BinanceResponseError as exc:
                last = exc
            logger.warning("%s: outcome unknown (%s); looking the order up", call.describe, last)
            found = await self._find_order(call, ident, last) if ident else None
            answer = decide(found, last)
            if answer is not _RESEND:
                return answer
            self._counters.retries += 1
        assert last is not None
        raise last

    async def _find_order(
        self, call: Call, ident: Mapping[str, object], cause: BinanceError
    ) -> Any:
        """The order as the exchange knows it, or None if it has no such order."""
        self._counters.order_lookups += 1
        await trio.sleep(self.safety.lookup_delay)  # let an in-flight order land first
        params = {"symbol": call.params.get("symbol"), **ident}
        lookup = Call(QUERY_ORDER[call.market], call.base, params, signed=True)
        try:
            return order_answer(await self._inner(lookup), lookup)
        except BinanceAPIError as exc:
            if exc.code == _NO_SUCH_ORDER:
                return None
            raise OrderStatusUnknownError(cause, ident, market=call.market.value) from exc
        except BinanceError as exc:
            raise OrderStatusUnknownError(cause, ident, market=call.market.value) from exc


def order_answer(data: Any, call: Call) -> Any:
    """``data`` if it is the order ``call`` is about, as Binance describes one; else
    a response error (so an order request treats it as "outcome unknown").

    A new order's answer and a look-up's must name the client order id that was
    sent or asked for: an answer about another order settles nothing.
    """
    if isinstance(data, dict) and "orderId" in data:
        asked = {
            "POST": call.params.get("newClientOrderId"),
            "GET": call.params.get("origClientOrderId"),
        }.get(call.method)
        if asked is None or str(data.get("clientOrderId")) == str(asked):
            return data
    raise call.wrong_shape("the order that was sent, with its orderId", data)


def _outcome_unknown(exc: BinanceAPIError) -> bool:
    """A 5xx, or Binance's "execution status unknown" codes, at any status."""
    if isinstance(exc, BinanceRateLimitError):
        return False  # refused before execution
    return isinstance(exc, BinanceServerError) or exc.code in _STATUS_UNKNOWN_CODES


def _never_sent(exc: BinanceTransportError) -> bool:
    """A connection that never opened cannot have placed anything."""
    return isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)
