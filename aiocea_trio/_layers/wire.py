"""The innermost layer: one attempt on the wire (sign, send within the deadline, decode).

Nothing here waits for a budget or retries: a failure is raised, typed, for the layers
above to judge. Binance's error payloads become typed exceptions; a failure's cause never
carries httpx's request, whose URL and headers hold the signature and the API key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any, Final

import httpx
import trio

from .._params import encode_params
from .._redact import scrub
from ..errors import (
    _EXCERPT_CHARS,
    BinanceAPIError,
    BinanceBanError,
    BinanceRateLimitError,
    BinanceResponseError,
    BinanceServerError,
    BinanceTimeoutError,
    BinanceTransportError,
)
from ..limits import MAX_BAN_SECONDS, MAX_RATE_LIMIT_PAUSE
from ..signing import Signer
from .call import Call, Counters
from .lane import Answer, Answered, Lane

__all__ = ["Attempt", "decode", "retry_after"]

logger = logging.getLogger("aiocea_trio.client")

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
_NOT_JSON: Final = object()


class Attempt:
    """Sign, send and decode one request; ``seen(response)`` runs before decoding.

    Args:
        http: the open ``httpx.AsyncClient`` (raises when the client is closed).
        signer: signs a query; None when the client has no secret.
        recv_window: milliseconds a signed request stays valid.
        timeout: seconds the whole attempt may take (connect, send, the whole answer).
        now_ms: the exchange's time, for ``timestamp``.
        counters: ``requests`` counts every attempt sent.
    """

    def __init__(
        self,
        *,
        http: Callable[[], httpx.AsyncClient],
        signer: Signer | None,
        recv_window: int,
        timeout: float,
        now_ms: Callable[[], int],
        counters: Counters,
    ) -> None:
        self._http = http
        self._signer = signer
        self._recv_window = recv_window
        self._timeout = timeout
        self._now_ms = now_ms
        self._counters = counters
        self._lanes: Lane | None = None

    async def __call__(self, call: Call, seen: Callable[[Answered], None] | None = None) -> Any:
        lane = self._lane()
        query = encode_params(call.params)
        if call.extra:
            query = f"{call.extra}&{query}" if query else call.extra
        signature = ""
        if call.signed:
            query, signature = self.sign(query)
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            shown = query.replace(signature, "<redacted>") if signature else query
            logger.debug("%s%s", call.describe, f"?{shown}" if shown else "")
        self._counters.requests += 1
        answer = await self._exchange(lane, call, query, signature)
        if debug:
            logger.debug("%s -> HTTP %d", call.describe, answer.status_code)
        if seen is not None:
            seen(answer)
        return decode(answer, call, signature)

    def sign(self, query: str) -> tuple[str, str]:
        """Return (signed query, signature) for a query string."""
        assert self._signer is not None
        stamp = f"recvWindow={self._recv_window}&timestamp={self._now_ms()}"
        payload = f"{query}&{stamp}" if query else stamp
        signature = self._signer.sign(payload)
        return f"{payload}&signature={signature}", signature

    def _lane(self) -> Lane:
        """The open client's lane (raises when the client is closed)."""
        http = self._http()
        lane = self._lanes
        if lane is None or lane.http is not http:
            lane = self._lanes = Lane(http)
        return lane

    async def _exchange(self, lane: Lane, call: Call, query: str, signature: str) -> Answer:
        """Send and read the whole answer within ``timeout`` seconds in all.

        httpx's timeouts bound each read, so a server that drips a byte at a time
        would hold the request forever; a cancel scope bounds the whole attempt, on
        any transport (the in-process one has no timeouts of its own). A failure's
        ``__cause__`` is a copy of httpx's exception without the request, whose URL
        and headers carry the signature and the API key.
        """
        failure: BinanceTransportError
        cause: BaseException | None = None
        try:
            # a bare scope (what fail_after makes, without its two context-manager layers)
            with trio.CancelScope(deadline=trio.current_time() + self._timeout):
                return await lane.send(call.method, call.base, call.path, query)
            # here only when the deadline cancelled the send
            failure = BinanceTimeoutError(
                f"no complete answer within {self._timeout} s", **call.where
            )
        except httpx.TimeoutException as exc:
            failure = BinanceTimeoutError(
                f"no answer within {self._timeout} s ({type(exc).__name__})", **call.where
            )
            cause = _without_request(exc, signature)
        except httpx.RequestError as exc:  # transport errors, undecodable bodies
            failure = BinanceTransportError(
                f"request failed: {type(exc).__name__}: {scrub(str(exc), signature)}",
                **call.where,
            )
            cause = _without_request(exc, signature)
        # Raised here, outside the except blocks, so that httpx's exception (and its
        # request) is not kept as the implicit __context__ either.
        raise failure from cause


def _without_request(exc: httpx.RequestError, signature: str) -> httpx.RequestError:
    """The same kind of httpx error, its text scrubbed, with no request attached."""
    try:
        return type(exc)(scrub(str(exc), signature))
    except Exception:  # an httpx error class with another constructor
        return httpx.TransportError(f"{type(exc).__name__}: {scrub(str(exc), signature)}")


# -- decoding -----------------------------------------------------------------------------


def decode(response: Answered, call: Call, signature: str = "") -> Any:
    """Binance's JSON from a 2xx answer; otherwise the typed error it describes.

    A 2xx carrying Binance's error payload is an error; positive codes are successes some
    endpoints report this way (``{"code": 200, "msg": "success"}``). A body that is not
    JSON is a `BinanceResponseError` with a scrubbed excerpt. ``signature`` is scrubbed
    from every message.
    """
    status = response.status_code
    body = response.content
    data: Any
    try:
        data = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        data = _NOT_JSON
    code = _api_error_code(data)
    is_error_payload = code is not None and code < 0 and "msg" in data
    if 200 <= status < 300 and data is not _NOT_JSON and not is_error_payload:
        return data
    if code is not None:
        msg = scrub(str(data.get("msg", "")), signature)
    elif status in (418, 429):
        code, msg = -1003, "rate limit exceeded"
    else:
        # Scrub the whole text before cutting it, so no part of a secret survives the cut.
        text = scrub(body[: 64 * 1024].decode("utf-8", "replace"), signature)
        raise BinanceResponseError(status, " ".join(text.split())[:_EXCERPT_CHARS], **call.where)
    raise _api_error(response, code, msg, call)


def _api_error(response: Answered, code: int, msg: str, call: Call) -> BinanceAPIError:
    """The `BinanceAPIError` (or subclass, by status) for Binance's error payload."""
    status = response.status_code
    if status == 418:
        match = _BANNED_UNTIL.search(msg)
        return BinanceBanError(
            status,
            code,
            msg,
            retry_after=retry_after(response, MAX_BAN_SECONDS),
            banned_until=int(match.group(1)) if match else None,
            **call.where,
        )
    if status == 429:
        wait = retry_after(response, MAX_RATE_LIMIT_PAUSE)
        return BinanceRateLimitError(status, code, msg, retry_after=wait, **call.where)
    if status >= 500:
        return BinanceServerError(status, code, msg, **call.where)
    return BinanceAPIError(status, code, msg, **call.where)


def _api_error_code(data: Any) -> int | None:
    """Binance's error code when ``data`` is its error payload ``{"code": <int>, "msg": ...}``."""
    if isinstance(data, dict):
        code = data.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def retry_after(response: Answered, cap: float) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), within ``[0, cap]``.

    The server controls this value: ``inf``, ``1e9`` or a date years away must
    not pause a market forever, so longer waits are cut to ``cap`` (and the
    limiter logs it). None when absent or unreadable.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_date(value, response.headers.get("Date"))
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def _seconds_until_date(value: str, server_date: str | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now = dt.datetime.now(dt.UTC)
    if server_date:  # measured against the server's own clock when it says it
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            now = email.utils.parsedate_to_datetime(server_date)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return (when - now).total_seconds()
