"""Answer, under respx, the requests the client makes on its own.

Before its first request to a market, a `BinanceClient` reads that market's exchangeInfo
once, for the rate limits (``aiocea_trio.limits``), and before a signed request it asks the
market's ``/time`` (``TimeSync``). A respx test that mocks only ``/api/v3/ticker/price``
therefore fails first on ``GET /api/v3/exchangeInfo not mocked``. `mock_exchange_info` adds
one route answering both, on every market and host, with Binance's published limits and a
server time that follows trio's clock (so ``autojump_clock`` tests stay consistent).

One route rather than six, so that respx's ``assert_all_called`` (on by default) does not
fail a test that never signs or touches only one market: any request the client sends goes
through the limits of its market, so the route is called at least once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import httpx
import trio

from ..endpoints import DEFAULT_ORDER_LIMITS, DEFAULT_WEIGHT_LIMITS
from ..markets import Market

if TYPE_CHECKING:
    import respx

__all__ = ["mock_exchange_info"]

SESSION_PATHS: Final = r"^/(api/v3|fapi/v1|dapi/v1)/(exchangeInfo|time)$"
_MARKETS: Final = {"api/v3": Market.SPOT, "fapi/v1": Market.USDM, "dapi/v1": Market.COINM}
_INTERVALS: Final = ((86400, "DAY"), (3600, "HOUR"), (60, "MINUTE"), (1, "SECOND"))


def _interval(seconds: int) -> dict[str, object]:
    for unit, name in _INTERVALS:
        if seconds % unit == 0:
            return {"interval": name, "intervalNum": seconds // unit}
    raise ValueError(seconds)  # pragma: no cover  (whole seconds only)


def rate_limits(market: Market) -> list[dict[str, object]]:
    """Binance's published ``rateLimits`` of ``market``, as its exchangeInfo lists them."""
    weight = {"rateLimitType": "REQUEST_WEIGHT", **_interval(60)}
    rows = [{**weight, "limit": DEFAULT_WEIGHT_LIMITS[market]}]
    for seconds, limit in DEFAULT_ORDER_LIMITS[market]:
        rows.append({"rateLimitType": "ORDERS", **_interval(seconds), "limit": limit})
    return rows


def mock_exchange_info(router: respx.Router | None = None) -> respx.Route:
    """Answer the client's own exchangeInfo and server-time requests on ``router``.

    Args:
        router: the respx router of the test: the ``respx_mock`` fixture, the router of
            ``with respx.mock(...) as router``, or None for respx's global one (the
            ``@respx.mock`` decorator and ``respx.get(...)``).

    Returns:
        The route (one for all three markets and both paths), for ``route.calls``.

    The exchangeInfo answer has Binance's published ``rateLimits`` and no symbols; a test
    that needs its own exchangeInfo (or ``/time``) mocks it before calling this, since respx
    answers with the first route that matches.
    """
    if router is None:
        import respx

        router = respx.mock
    anchor: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if not anchor:  # the wall clock at trio time 0, like the client's own clock
            anchor.append(time.time() * 1000.0 - trio.current_time() * 1000.0)
        now_ms = int(anchor[0] + trio.current_time() * 1000.0)
        prefix, _, what = request.url.path.strip("/").rpartition("/")
        if what == "time":
            return httpx.Response(200, json={"serverTime": now_ms})
        body = {
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": rate_limits(_MARKETS[prefix]),
            "exchangeFilters": [],
            "symbols": [],
        }
        return httpx.Response(200, json=body)

    return router.route(method="GET", path__regex=SESSION_PATHS).mock(side_effect=answer)
