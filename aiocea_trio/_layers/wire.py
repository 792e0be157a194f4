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
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, cast

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

__all__ = ["Attempt", "Lane", "decode", "retry_after"]

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

    async def __call__(
        self, call: Call, seen: Callable[[httpx.Response], None] | None = None
    ) -> Any:
        http = self._http()
        query = encode_params(call.params)
        if call.extra:
            query = f"{call.extra}&{query}" if query else call.extra
        signature = ""
        if call.signed:
            query, signature = self.sign(query)
        url = self._lane(http).url(call.base, call.path, query)
        if logger.isEnabledFor(logging.DEBUG):
            shown = query.replace(signature, "<redacted>") if signature else query
            logger.debug("%s%s", call.describe, f"?{shown}" if shown else "")
        self._counters.requests += 1
        response = await self._exchange(http, call, url, signature)
        logger.debug("%s -> HTTP %d", call.describe, response.status_code)
        if seen is not None:
            seen(response)
        return decode(response, call, signature)

    def sign(self, query: str) -> tuple[str, str]:
        """Return (signed query, signature) for a query string."""
        assert self._signer is not None
        stamp = f"recvWindow={self._recv_window}&timestamp={self._now_ms()}"
        payload = f"{query}&{stamp}" if query else stamp
        signature = self._signer.sign(payload)
        return f"{payload}&signature={signature}", signature

    def _lane(self, http: httpx.AsyncClient) -> Lane:
        lane = self._lanes
        if lane is None or lane.http is not http:
            lane = self._lanes = Lane(http, self._timeout)
        return lane

    async def _exchange(
        self, http: httpx.AsyncClient, call: Call, url: httpx.URL | str, signature: str
    ) -> httpx.Response:
        """Send and read the whole answer within ``timeout`` seconds in all.

        httpx's timeouts bound each read, so a server that drips a byte at a time
        would hold the request forever; ``fail_after`` bounds the whole attempt, on
        any transport (the in-process one has no timeouts of its own). A failure's
        ``__cause__`` is a copy of httpx's exception without the request, whose URL
        and headers carry the signature and the API key.
        """
        failure: BinanceTransportError
        try:
            with trio.fail_after(self._timeout):
                return await self._lane(http).send(call.method, url, call.base)
        except trio.TooSlowError:
            failure = BinanceTimeoutError(
                f"no complete answer within {self._timeout} s", **call.where
            )
            cause: BaseException | None = None
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


class Lane:
    """The way one request goes out: straight to the ``httpx.AsyncClient``'s transport.

    A Binance request needs nothing of what ``AsyncClient.send`` adds per request (cookie
    jars, auth flows, redirects, event hooks) but pays for all of it: about half the
    client's CPU per request with a fast transport (docs/benchmarks.md). So the request
    is built here, with the client's default headers and timeouts, and handed to the
    transport the client would choose for its URL (``_transport_for_url``: mounted proxies,
    and respx's ``using="httpx"`` mocker, keep working). The URL is made from the base
    parsed once and the path and query, which the client has percent-encoded itself,
    without parsing them again.

    When this httpx has no such seams (another version), or when event hooks were added to
    the client's ``http_client``, requests go through ``AsyncClient.request``: slower, the
    same behaviour, the hooks called.
    """

    __slots__ = ("_bases", "_extensions", "_headers", "_pick", "http")

    def __init__(self, http: httpx.AsyncClient, timeout: float) -> None:
        self.http = http
        # No per-operation timeouts: the attempt's own deadline (``fail_after``) bounds
        # connecting, sending and the whole answer, on every transport.
        self._extensions = {"timeout": httpx.Timeout(None).as_dict()}
        self._bases: dict[str, tuple[httpx.URL, httpx.Headers] | None] = {}
        self._headers = http.headers
        pick = getattr(http, "_transport_for_url", None)
        self._pick: Callable[[httpx.URL], httpx.AsyncBaseTransport] | None = (
            pick if callable(pick) and _URLS_COMPOSE else None
        )

    def url(self, base: str, path: str, query: str) -> httpx.URL | str:
        """``base + path + ?query``: an ``httpx.URL`` made without parsing when possible."""
        known = self._base(base)
        if known is None or self._pick is None:
            return f"{base}{path}?{query}" if query else f"{base}{path}"
        return _compose(known[0], path, query)

    def _base(self, base: str) -> tuple[httpx.URL, httpx.Headers] | None:
        """``base`` parsed, with the client's headers and its ``Host`` (built once)."""
        known = self._bases.get(base, _UNSEEN)
        if known is _UNSEEN:
            url = _parsed_base(base)
            known = None
            if url is not None:
                headers = httpx.Headers({"Host": url.netloc.decode("ascii")})
                headers.update(self._headers)
                known = (url, headers)
            self._bases[base] = known
        return cast("tuple[httpx.URL, httpx.Headers] | None", known)

    async def send(self, method: str, url: httpx.URL | str, base: str = "") -> httpx.Response:
        """The whole answer (its body read) to ``method url`` (``url`` made by ``url()``)."""
        pick = self._pick
        known = self._base(base) if base else None
        hooks = self.http.event_hooks
        if pick is None or isinstance(url, str) or known is None or any(hooks.values()):
            # event hooks someone put on the client's http_client see every request
            return await self.http.request(method, url)
        request = httpx.Request(method, url, headers=known[1], extensions=self._extensions)
        response = await pick(url).handle_async_request(request)
        response.request = request
        stream = response.stream
        try:
            if not isinstance(stream, httpx.ByteStream):  # else whole already: no iteration
                assert isinstance(stream, httpx.AsyncByteStream)  # an async transport's
                response.stream = httpx.ByteStream(await _drained(stream))
            response.read()  # decodes (gzip...) as httpx does
        finally:
            if isinstance(stream, httpx.AsyncByteStream):
                await stream.aclose()
        return response


async def _drained(stream: httpx.AsyncByteStream) -> bytes:
    """The whole body, its iterator closed here whatever happens: an async generator left
    suspended (a Ctrl-C mid-body) would otherwise be finalized after ``trio.run`` ended,
    and Python would print that failure on stderr."""
    chunks: list[bytes] = []
    iterator: AsyncIterator[bytes] = stream.__aiter__()
    try:
        async for chunk in iterator:
            chunks.append(chunk)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None and not isinstance(iterator, httpx.AsyncByteStream):  # a generator
            await aclose()
    return b"".join(chunks)


_UNSEEN: Final = object()


def _parsed_base(base: str) -> httpx.URL | None:
    """``base`` parsed once; None when it has a query or fragment (then every URL is parsed)."""
    url = httpx.URL(base)
    if url.query or url.fragment or not url.host:
        return None
    return url


def _compose(base: httpx.URL, path: str, query: str) -> httpx.URL:
    """``base`` with ``path`` appended and ``query``, from parts already percent-encoded."""
    url = httpx.URL.__new__(httpx.URL)
    reference = base._uri_reference  # checked by _URLS_COMPOSE
    url._uri_reference = reference._replace(
        path=reference.path.rstrip("/") + path, query=query or None
    )
    return url


def _urls_compose() -> bool:
    """Whether this httpx's URLs can be composed from parts (its private layout is the one
    ``_compose`` knows): checked once against httpx's own parser."""
    try:
        base = httpx.URL("https://api.example.com:8443")
        made = _compose(base, "/api/v3/klines", "symbol=BTCUSDT&limit=1000&x=%2Fa%3D")
        parsed = httpx.URL("https://api.example.com:8443/api/v3/klines?symbol=BTCUSDT&limit=1000&x=%2Fa%3D")
        return (
            made == parsed
            and made.raw_path == parsed.raw_path
            and made.host == parsed.host
            and made.port == parsed.port
            and str(made) == str(parsed)
        )
    except Exception:  # another httpx: parse every URL instead
        return False


_URLS_COMPOSE: Final = _urls_compose()


def _without_request(exc: httpx.RequestError, signature: str) -> httpx.RequestError:
    """The same kind of httpx error, its text scrubbed, with no request attached."""
    try:
        return type(exc)(scrub(str(exc), signature))
    except Exception:  # an httpx error class with another constructor
        return httpx.TransportError(f"{type(exc).__name__}: {scrub(str(exc), signature)}")


# -- decoding -----------------------------------------------------------------------------


def decode(response: httpx.Response, call: Call, signature: str = "") -> Any:
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


def _api_error(response: httpx.Response, code: int, msg: str, call: Call) -> BinanceAPIError:
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


def retry_after(response: httpx.Response, cap: float) -> float | None:
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
