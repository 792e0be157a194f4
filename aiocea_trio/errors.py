"""The exception hierarchy.

Every message names the market, the method and the path of the request it
belongs to, and nothing else from the request: query strings carry the
signature, so they never reach an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._redact import scrub

_EXCERPT_CHARS: Final = 200

__all__ = [
    "BinanceAPIError",
    "BinanceBanError",
    "BinanceError",
    "BinanceRateLimitError",
    "BinanceResponseError",
    "BinanceServerError",
    "BinanceTimeoutError",
    "BinanceTransportError",
    "ClientNotOpenError",
    "InsecureTransportError",
    "OrderStatusUnknownError",
]


class BinanceError(Exception):
    """Root of every error aiocea_trio raises about talking to Binance."""


class ClientNotOpenError(BinanceError, RuntimeError):
    """The client was used outside ``async with``, where it owns no connection pool."""


class InsecureTransportError(BinanceError, ValueError):
    """An API key would travel over plain http to a host that is not this machine."""


class _RequestError(BinanceError):
    """An error tied to one request: knows where it went."""

    def __init__(self, message: str, *, market: str, method: str, path: str) -> None:
        self.market = market
        self.method = method
        self.path = path
        super().__init__(f"{market} {method} {path}: {message}")


class BinanceAPIError(_RequestError):
    """Binance answered with its JSON error payload ``{"code": ..., "msg": ...}``.

    Attributes:
        status: the HTTP status.
        code: Binance's error code (negative, e.g. -1121); stable across versions.
        msg: Binance's message; informative, may change.
    """

    def __init__(
        self, status: int, code: int, msg: str, *, market: str, method: str, path: str
    ) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        super().__init__(
            f"HTTP {status}, code {code}: {msg}", market=market, method=method, path=path
        )


class BinanceServerError(BinanceAPIError):
    """A 5xx: Binance says the execution status is unknown; the request may have taken effect."""


class BinanceRateLimitError(BinanceAPIError):
    """429: a rate limit was broken. Keep sending and the IP is banned (418).

    Attributes:
        retry_after: seconds Binance asked us to wait, or None when it did not say.
    """

    def __init__(
        self,
        status: int,
        code: int,
        msg: str,
        *,
        retry_after: float | None,
        market: str,
        method: str,
        path: str,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status, code, msg, market=market, method=method, path=path)


class BinanceBanError(BinanceRateLimitError):
    """418: the IP is banned from this market until ``banned_until`` (epoch ms, or None)."""

    def __init__(
        self,
        status: int,
        code: int,
        msg: str,
        *,
        retry_after: float | None,
        banned_until: int | None,
        market: str,
        method: str,
        path: str,
    ) -> None:
        self.banned_until = banned_until
        super().__init__(
            status, code, msg, retry_after=retry_after, market=market, method=method, path=path
        )


class BinanceResponseError(_RequestError):
    """The body was not the JSON Binance promises (an HTML error page, a cut-off body).

    Attributes:
        status: the HTTP status.
        excerpt: the start of the body, with anything secret removed.
    """

    def __init__(
        self,
        status: int,
        excerpt: str,
        *,
        market: str,
        method: str,
        path: str,
        problem: str = "a body that is not Binance's JSON",
    ) -> None:
        self.status = status
        self.excerpt = excerpt
        super().__init__(
            f"HTTP {status} with {problem}: {excerpt!r}",
            market=market,
            method=method,
            path=path,
        )

    @classmethod
    def wrong_shape(
        cls, expected: str, data: object, *, status: int = 200, market: str, method: str, path: str
    ) -> BinanceResponseError:
        """JSON that parsed but is not what the endpoint answers (``{}`` for a list, ``null``)."""
        text = scrub(" ".join(repr(data)[:_EXCERPT_CHARS].split()))
        return cls(
            status,
            text,
            market=market,
            method=method,
            path=path,
            problem=f"JSON of the wrong shape (expected {expected})",
        )


class BinanceTransportError(_RequestError):
    """The request did not complete: connection refused or dropped, TLS failure.

    The original httpx exception is the ``__cause__``. For an order, whether it
    reached the exchange is unknown.
    """


class BinanceTimeoutError(BinanceTransportError, TimeoutError):
    """No answer within the client's timeout; for an order, its fate is unknown."""


class OrderStatusUnknownError(BinanceError):
    """An order request failed ambiguously and the order could not be looked up.

    It may or may not be on the exchange: nothing was resent. Query it yourself
    with ``identifiers`` (its ``origClientOrderId`` or ``orderId``) before acting.

    Attributes:
        cause: the ambiguous failure of the order request itself.
        identifiers: how to find the order.
    """

    def __init__(
        self, cause: BinanceError, identifiers: Mapping[str, object], *, market: str
    ) -> None:
        self.cause = cause
        self.identifiers = dict(identifiers)
        self.market = market
        shown = ", ".join(f"{k}={v}" for k, v in self.identifiers.items())
        super().__init__(
            f"{market} order status unknown ({shown}) after: {cause}; "
            "nothing was resent — query the order before acting"
        )
