"""BinanceClient: one pooled HTTP connection to Binance's three REST markets.

The path of a request picks its market (and so its host); signed requests get
``timestamp``, ``recvWindow`` and ``signature`` exactly as Binance documents;
Binance's error payloads become typed exceptions. Timestamps follow trio's
clock, anchored to the wall clock when the client opens, so they never jump
with the system clock and they follow ``MockClock`` in tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import functools
import ipaddress
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from ._params import encode_params, param_str
from ._redact import install_log_redaction, register_secret, scrub
from .endpoints import DEFAULT_ORDER_LIMITS, find
from .errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceError,
    BinanceRateLimitError,
    BinanceResponseError,
    BinanceServerError,
    BinanceTimeoutError,
    BinanceTransportError,
    ClientNotOpenError,
    InsecureTransportError,
    OrderStatusUnknownError,
)
from .limits import (
    MAX_BAN_SECONDS,
    MAX_RATE_LIMIT_PAUSE,
    LimiterStatistics,
    MarketLimits,
    RateLimiter,
    window_guard_ms,
)
from .markets import Market, market_for_path
from .retries import RetryPolicy
from .signing import HmacSigner, Signer

_T = TypeVar("_T")

__all__ = ["BinanceClient", "ClientStatistics", "new_client_order_id"]

logger = logging.getLogger("aiocea_trio.client")
install_log_redaction()  # httpx logs signed request lines at INFO

_MAX_RECV_WINDOW: Final = 60_000
_INVALID_TIMESTAMP: Final = -1021
# Binance's "the request may or may not have been executed" codes.
_STATUS_UNKNOWN_CODES: Final = frozenset({-1006, -1007})
_NO_SUCH_ORDER: Final = -2013
_CANCELLED_STATES: Final = frozenset({"CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"})
_UNIT_SECONDS: Final = {"S": 1, "M": 60, "H": 3600, "D": 86400}
_ORDER_PATHS: Final = {
    Market.SPOT: "/api/v3/order",
    Market.USDM: "/fapi/v1/order",
    Market.COINM: "/dapi/v1/order",
}
_INFO_PATHS: Final = {
    Market.SPOT: "/api/v3/exchangeInfo",
    Market.USDM: "/fapi/v1/exchangeInfo",
    Market.COINM: "/dapi/v1/exchangeInfo",
}
_EXCERPT_CHARS: Final = 200
_TIME_PATHS: Final = {
    Market.SPOT: "/api/v3/time",
    Market.USDM: "/fapi/v1/time",
    Market.COINM: "/dapi/v1/time",
}
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
_NOT_JSON: Final = object()
_RESEND: Final = object()  # an order request's lookup says: send it again


def _is_loopback(host: str) -> bool:
    # Only this machine's own names: ``evil.localhost`` may resolve anywhere.
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _in_process(transport: httpx.AsyncBaseTransport | None) -> bool:
    """A transport that never touches a network (the simulator's, ASGI, a mock)."""
    return isinstance(transport, httpx.ASGITransport | httpx.MockTransport) or bool(
        getattr(transport, "in_process", False)
    )


class BinanceClient:
    """An async context manager owning one ``httpx.AsyncClient`` for all three markets.

    Args:
        api_key: sent as ``X-MBX-APIKEY`` on every request when given.
        api_secret: shorthand for ``signer=HmacSigner(api_secret)``.
        signer: an ``HmacSigner``, ``Ed25519Signer`` or ``RsaSigner`` (or any object
            with ``sign(payload) -> str``).
        base_url: one host for every market (the simulator, a proxy); overrides
            the production and testnet hosts.
        testnet: use Binance's testnet hosts.
        recv_window: milliseconds a signed request stays valid (Binance's maximum is 60000).
        timeout: seconds each attempt of a request may take in all (connect, send,
            the whole answer), so a server that drips its answer cannot hold a
            request (an order included) for longer.
        transport: passed to ``httpx.AsyncClient``: tests give respx's or
            ``httpx.ASGITransport``.
        allow_insecure_http: permit sending the API key over plain ``http://`` to a
            host that is not this machine. Off by default, since anyone on the
            path could read the key. This machine is ``localhost`` and literal
            loopback addresses only (not ``*.localhost`` names, which a resolver
            may send anywhere); in-process transports reach no network at all.
        auto_sync_time: measure the server-time offset before the first signed
            request, and again every ``time_sync_interval`` seconds.
        time_sync_interval: seconds between automatic re-syncs; None for never.
        limiter: the ``RateLimiter`` every request passes; share one between
            clients on the same IP. By default each client has its own, which
            learns the limits from exchangeInfo.
        retries: how many times a GET is retried after a transport error,
            timeout, 5xx or 429 (with exponential backoff and jitter).
        retry_wait_initial, retry_wait_max: the backoff's first and longest wait (s).
        order_attempts: how many times an order placement or cancel is tried,
            each resend only after the exchange said it does not have the order.
        order_lookup_delay: seconds to wait after an ambiguous order failure
            before looking the order up, so that an order still in flight lands.

    Using the client outside ``async with`` raises ``ClientNotOpenError``.
    """

    SPOT_BASE_URL: Final = "https://api.binance.com"
    USDM_BASE_URL: Final = "https://fapi.binance.com"
    COINM_BASE_URL: Final = "https://dapi.binance.com"
    #: The seed's name for the COIN-M host.
    CoinM_BASE_URL: Final = COINM_BASE_URL
    SPOT_TESTNET_BASE_URL: Final = "https://testnet.binance.vision"
    USDM_TESTNET_BASE_URL: Final = "https://testnet.binancefuture.com"
    COINM_TESTNET_BASE_URL: Final = "https://testnet.binancefuture.com"

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | bytes | None = None,
        *,
        signer: Signer | None = None,
        base_url: str | None = None,
        testnet: bool = False,
        recv_window: int = 5000,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_insecure_http: bool = False,
        auto_sync_time: bool = True,
        time_sync_interval: float | None = 3600.0,
        limiter: RateLimiter | None = None,
        retries: int = 3,
        retry_wait_initial: float = 0.2,
        retry_wait_max: float = 5.0,
        order_attempts: int = 3,
        order_lookup_delay: float = 1.0,
    ) -> None:
        if api_secret is not None and signer is not None:
            raise ValueError("give api_secret or signer, not both")
        _check_int("recv_window", recv_window)
        if not 0 < recv_window <= _MAX_RECV_WINDOW:
            raise ValueError(f"recv_window must be in 1..{_MAX_RECV_WINDOW} ms, got {recv_window}")
        _check_seconds("timeout", timeout, positive=True)
        if time_sync_interval is not None:
            _check_seconds("time_sync_interval", time_sync_interval, positive=True)
        _check_int("retries", retries)
        _check_int("order_attempts", order_attempts)
        _check_seconds("retry_wait_initial", retry_wait_initial)
        _check_seconds("retry_wait_max", retry_wait_max)
        _check_seconds("order_lookup_delay", order_lookup_delay)
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError(f"api_key must be a str, got {type(api_key).__name__}")
        register_secret(api_key)
        if isinstance(api_secret, str | bytes):
            register_secret(api_secret)
        self.api_key = api_key
        self._signer: Signer | None = HmacSigner(api_secret) if api_secret is not None else signer
        self.testnet = testnet
        self.recv_window = recv_window
        self.timeout = timeout
        self._transport = transport
        self._allow_insecure_http = allow_insecure_http
        self.auto_sync_time = auto_sync_time
        self.time_sync_interval = time_sync_interval
        self.base_url = base_url.rstrip("/") if base_url else None
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
            self._check_secure(self.base_url)
        self._bases: dict[Market, str] = self._base_urls()
        self._http: httpx.AsyncClient | None = None
        self._epoch_anchor_ms = 0.0
        self._time_offset_ms = 0
        self._clock_known = False  # the offset was measured (or adopted), not assumed 0
        self._last_sync: float | None = None
        self._sync_lock: trio.Lock | None = None
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if order_attempts < 1:
            raise ValueError(f"order_attempts must be >= 1, got {order_attempts}")
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.retries = retries
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self.retry_policy = RetryPolicy(
            attempts=retries + 1,
            wait_initial=retry_wait_initial,
            wait_max=retry_wait_max,
            wait_jitter=retry_wait_initial,
        )
        self.order_attempts = order_attempts
        self.order_lookup_delay = order_lookup_delay
        self._requests = 0
        self._retries = 0
        self._order_lookups = 0
        # (market, window seconds) -> {the exchange's window index: orders counted in it}
        self._order_counts: dict[tuple[Market, int], dict[int, int]] = {}

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> BinanceClient:
        if self._http is not None:
            raise RuntimeError("this BinanceClient is already open; enter it once")
        headers = {"X-MBX-APIKEY": self.api_key} if self.api_key else {}
        self._http = httpx.AsyncClient(
            transport=self._transport, timeout=self.timeout, headers=headers, verify=True
        )
        # Anchor trio's monotonic clock to the wall clock once: timestamps then
        # advance with trio (MockClock in tests) and never jump with NTP steps.
        self._epoch_anchor_ms = time.time() * 1000.0 - trio.current_time() * 1000.0
        self._sync_lock = trio.Lock()
        self._last_sync = None
        self._clock_known = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the client may be entered again afterwards."""
        http, self._http = self._http, None
        if http is not None:
            with trio.CancelScope(shield=True):
                await http.aclose()

    def __repr__(self) -> str:
        key = "None" if not self.api_key else f"'{self.api_key[:4]}…'"
        state = "open" if self._http is not None else "closed"
        return (
            f"BinanceClient(api_key={key}, signer={self._signer!r}, "
            f"base_url={self.base_url!r}, testnet={self.testnet}, {state})"
        )

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The pooled ``httpx.AsyncClient`` (for public files such as Binance's archives).

        It carries the API key as a default header: strip it for other hosts.
        """
        return self._require_open()

    @property
    def is_open(self) -> bool:
        return self._http is not None

    def _require_open(self) -> httpx.AsyncClient:
        if self._http is None:
            raise ClientNotOpenError(
                "BinanceClient is not open: use it as `async with BinanceClient(...) as client:` "
                "and make requests inside that block"
            )
        return self._http

    # -- routing ---------------------------------------------------------------

    def _base_urls(self) -> dict[Market, str]:
        if self.base_url is not None:
            return dict.fromkeys(Market, self.base_url)
        if self.testnet:
            return {
                Market.SPOT: self.SPOT_TESTNET_BASE_URL,
                Market.USDM: self.USDM_TESTNET_BASE_URL,
                Market.COINM: self.COINM_TESTNET_BASE_URL,
            }
        return {
            Market.SPOT: self.SPOT_BASE_URL,
            Market.USDM: self.USDM_BASE_URL,
            Market.COINM: self.COINM_BASE_URL,
        }

    def base_url_for(self, market: Market | str) -> str:
        """The host a market's requests go to."""
        return self._bases[Market(market)]

    def _route(self, path: str) -> tuple[str, str, Market, str]:
        """Return (base, path, market, extra query) for a path or a full URL."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            base = f"{parts.scheme}://{parts.netloc}"
            self._check_secure(base)
            return base, parts.path, market_for_path(parts.path), parts.query
        if not path.startswith("/"):
            path = "/" + path
        market = market_for_path(path)
        return self._bases[market], path, market, ""

    def _check_secure(self, url: str) -> None:
        parts = urlsplit(url)
        if (
            self.api_key
            and parts.scheme == "http"
            and not _is_loopback(parts.hostname or "")
            and not _in_process(self._transport)
            and not self._allow_insecure_http
        ):
            raise InsecureTransportError(
                f"refusing to send the API key over plain http to {parts.hostname}: use https, "
                "or pass allow_insecure_http=True if this network is trusted"
            )

    # -- server time -----------------------------------------------------------

    def local_time_ms(self) -> int:
        """This machine's idea of the epoch time in ms, following trio's clock."""
        return int(self._epoch_anchor_ms + trio.current_time() * 1000.0)

    def server_time_ms(self) -> int:
        """The estimated server time: local time plus the last measured offset."""
        return self.local_time_ms() + self._time_offset_ms

    @property
    def time_offset_ms(self) -> int:
        """Server time minus local time, as last measured by ``sync_time``."""
        return self._time_offset_ms

    async def sync_time(self, market: Market | str = Market.SPOT) -> int:
        """Measure the server-time offset (ms) and use it for every later signature.

        One GET of the market's ``time`` endpoint (weight 1, retried like any GET);
        the offset is the server time minus the midpoint of the local send and
        receive times of the try that succeeded.
        """
        self._require_open()
        market = Market(market)
        call = _Call("GET", self._bases[market], _TIME_PATHS[market], market, {}, "", False)
        before, data, after = await self._timed_get_with_retries(call)
        server = _server_time(data, call)
        self._set_offset(server - (before + after) // 2, share=True)
        self._last_sync = trio.current_time()
        logger.debug("server time offset %+d ms (%s)", self._time_offset_ms, market.value)
        return self._time_offset_ms

    async def _ensure_time_synced(self, market: Market) -> None:
        if not self.auto_sync_time:
            return
        assert self._sync_lock is not None
        if not self._sync_due():
            return
        async with self._sync_lock:
            if self._sync_due():  # another task may have synced while we waited
                await self.sync_time(market)

    def _adopt_limiter_clock(self) -> None:
        """Read the exchange's clock as the client that learned the shared limits does.

        Until this client measures the offset itself, its windows would otherwise
        follow the local clock while the shared budget follows the exchange's.
        """
        anchor = self.limiter.server_clock_anchor_ms
        if not self._clock_known and anchor is not None:
            self._set_offset(round(anchor - self._epoch_anchor_ms), share=False)

    def _set_offset(self, offset_ms: int, *, share: bool) -> None:
        """Use a measured server-time offset; the limiter's windows follow it."""
        changed = offset_ms != self._time_offset_ms
        self._time_offset_ms = offset_ms
        self._clock_known = True
        if share:
            self.limiter.server_clock_anchor_ms = self._epoch_anchor_ms + offset_ms
        if changed:
            self.limiter.clock_changed()

    def _sync_due(self) -> bool:
        if self._last_sync is None:
            return True
        interval = self.time_sync_interval
        return interval is not None and trio.current_time() - self._last_sync >= interval

    # -- requests --------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        signed: bool = False,
    ) -> Any:
        """Send one request and return Binance's decoded JSON.

        Args:
            method: GET, POST, PUT or DELETE.
            path: ``/api/...``, ``/sapi/...`` (spot), ``/fapi/...`` (USDⓈ-M),
                ``/dapi/...`` (COIN-M), or a full URL.
            params: query parameters in Binance's names; ``None`` values are left out.
            signed: add ``timestamp``, ``recvWindow`` and ``signature`` (needs a signer).

        Every request passes the rate limiter first. GETs are retried (bounded,
        exponential backoff with jitter) after transport errors, timeouts, 5xx and
        429s. Order placement and cancellation are never retried blindly: after an
        ambiguous failure the order is looked up by its ``newClientOrderId`` (one
        is generated when the caller gives none) and sent again only if the
        exchange does not have it. A ``-1021`` re-syncs the clock and retries once.

        Raises:
            BinanceAPIError: Binance's error payload (and its subclasses for 429,
                418 and 5xx).
            BinanceResponseError: a body that is not Binance's JSON.
            BinanceTransportError: the request did not complete (timeouts included).
            OrderStatusUnknownError: an order request failed ambiguously and the
                order could not be looked up either.
        """
        self._require_open()
        method = method.upper()
        base, path, market, extra = self._route(path)
        if signed and self._signer is None:
            raise ValueError(
                f"{market.value} {method} {path} needs a signature: "
                "give the client api_secret= or signer="
            )
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        call = _Call(method, base, path, market, clean, extra, signed)
        if path == _ORDER_PATHS[market]:
            if method == "POST":
                return await self._place_order(call)
            if method == "DELETE":
                return await self._cancel_order(call)
        if method == "GET":
            return await self._with_retries(call)
        return await self._attempt(call)

    async def _with_retries(self, call: _Call) -> Any:
        """Idempotent requests: retry what may succeed next time, a bounded number of times."""
        return await self._retried(functools.partial(self._attempt, call), call.describe)

    async def _retried(self, once: Callable[[], Awaitable[_T]], what: str = "request") -> _T:
        """Run ``once`` with bounded retries (exponential backoff, jitter), counting them."""

        def count() -> None:
            self._retries += 1

        return await self.retry_policy.run(once, retryable=_retryable, what=what, on_retry=count)

    async def _place_order(self, call: _Call) -> Any:
        """Exactly-once placement: the same ``newClientOrderId`` on every try, and a
        lookup before any resend."""
        cid = str(call.params.get("newClientOrderId") or new_client_order_id())
        call = attrs.evolve(call, params={**call.params, "newClientOrderId": cid})

        def decide(found: Any, cause: BinanceError) -> Any:
            # Not on the exchange: sending again (same id) is safe.
            return _RESEND if found is None else found

        return await self._order_request(call, {"origClientOrderId": cid}, decide)

    async def _cancel_order(self, call: _Call) -> Any:
        """Cancel, and after an ambiguous failure ask the exchange before cancelling again."""
        ident = {
            k: call.params[k] for k in ("orderId", "origClientOrderId") if k in call.params
        }

        def decide(found: Any, cause: BinanceError) -> Any:
            if found is None:
                raise cause
            if str(found.get("status")) in _CANCELLED_STATES:
                return found
            return _RESEND  # still open: the cancel did not land

        return await self._order_request(call, ident, decide)

    async def _order_request(
        self,
        call: _Call,
        ident: Mapping[str, object],
        decide: Callable[[Any, BinanceError], Any],
    ) -> Any:
        """Send an order request; after an ambiguous failure, look the order up by
        ``ident`` and let ``decide`` return the answer or ``_RESEND``.

        Ambiguous is anything but a well-formed answer from the exchange: a lost
        or cut connection, a timeout, a 5xx, Binance's "status unknown" codes, or
        a body that is not an order (HTML, truncated JSON, a proxy's 408 page).
        A connection that never opened is resent without a lookup; Binance's own
        rejections (its JSON error payload, 429s included) are raised at once.
        """
        last: BinanceError | None = None
        for _ in range(self.order_attempts):
            # A failure here (a clock sync that cannot reach the exchange) is raised as
            # it is: the order has not been sent, so there is nothing to look up.
            await self._prepare(call)
            try:
                return _order_answer(await self._attempt(call), call)
            except BinanceTransportError as exc:
                last = exc
                if _never_sent(exc):
                    self._retries += 1
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
            self._retries += 1
        assert last is not None
        raise last

    async def _find_order(
        self, call: _Call, ident: Mapping[str, object], cause: BinanceError
    ) -> Any:
        """The order as the exchange knows it, or None if it has no such order."""
        self._order_lookups += 1
        await trio.sleep(self.order_lookup_delay)  # let an in-flight order land first
        lookup = _Call(
            "GET",
            call.base,
            call.path,
            call.market,
            {"symbol": call.params.get("symbol"), **ident},
            "",
            True,
        )
        try:
            return _order_answer(await self._with_retries(lookup), lookup)
        except BinanceAPIError as exc:
            if exc.code == _NO_SUCH_ORDER:
                return None
            raise OrderStatusUnknownError(cause, ident, market=call.market.value) from exc
        except BinanceError as exc:
            raise OrderStatusUnknownError(cause, ident, market=call.market.value) from exc

    async def _prepare(self, call: _Call) -> None:
        """What a request needs before it is sent: the limits, and a synced clock."""
        await self._ensure_limits(call.market)
        if call.signed:
            await self._ensure_time_synced(call.market)

    async def _attempt(self, call: _Call) -> Any:
        """One logical try: limits known, clock synced, one re-sync on -1021."""
        await self._prepare(call)
        try:
            return await self._send(call)
        except BinanceAPIError as exc:
            if not (call.signed and exc.code == _INVALID_TIMESTAMP):
                raise
            logger.info(
                "%s %s %s: -1021, re-syncing the clock once",
                call.market.value,
                call.method,
                call.path,
            )
            await self.sync_time(call.market)
            return await self._send(call)

    async def _ensure_limits(self, market: Market) -> None:
        limiter = self.limiter
        if not limiter.needs_limits(market):
            self._adopt_limiter_clock()
            return
        async with limiter.learn_lock(market):
            if not limiter.needs_limits(market):
                self._adopt_limiter_clock()
                return
            limits: MarketLimits | None = None
            call = _Call("GET", self._bases[market], _INFO_PATHS[market], market, {}, "", False)
            try:
                before, info, after = await self._timed_get_with_retries(call)
                if not isinstance(info, dict) or not isinstance(info.get("rateLimits"), list):
                    raise call.wrong_shape("exchangeInfo with rateLimits", info)
                limits = MarketLimits.from_exchange_info(info["rateLimits"])
                if self._last_sync is None and "serverTime" in info:
                    # The limiter's windows follow the exchange's clock: align with it
                    # now, for free, rather than at the first signed request.
                    server = _server_time(info, call)
                    self._set_offset(server - (before + after) // 2, share=True)
            except (BinanceError, ValueError, AttributeError, TypeError) as exc:
                logger.warning(
                    "could not learn %s rate limits (%s); using Binance's published ones",
                    market.value,
                    exc,
                )
            limiter.set_limits(market, limits)

    async def _timed_get_with_retries(self, call: _Call) -> tuple[int, Any, int]:
        """A GET retried like any other (but not through ``_attempt``, which would learn
        limits again), with the local times around the successful try."""

        async def once() -> tuple[int, Any, int]:
            before = self.local_time_ms()
            info = await self._send(call)
            return before, info, self.local_time_ms()

        return await self._retried(once)

    def _sign(self, query: str) -> tuple[str, str]:
        """Return (signed query, signature) for a query string."""
        assert self._signer is not None
        stamp = f"recvWindow={self.recv_window}&timestamp={self.server_time_ms()}"
        payload = f"{query}&{stamp}" if query else stamp
        signature = self._signer.sign(payload)
        return f"{payload}&signature={signature}", signature

    async def _send(self, call: _Call) -> Any:
        """One HTTP exchange, inside a rate-limiter reservation."""
        http = self._require_open()
        market, method, path = call.market, call.method, call.path
        endpoint = find(market, method, path)
        weight = endpoint.request_weight(call.str_params)
        if endpoint.counts_as_order:
            await self._wait_for_order_budget(market)
        await self.limiter.acquire(market, weight, self.server_time_ms, describe=(method, path))
        charged: int | None = None
        headers: httpx.Headers | None = None
        try:
            query = encode_params(call.params)
            if call.extra:
                query = f"{call.extra}&{query}" if query else call.extra
            signature = ""
            if call.signed:
                query, signature = self._sign(query)
            url = f"{call.base}{path}?{query}" if query else f"{call.base}{path}"
            if logger.isEnabledFor(logging.DEBUG):
                shown = query.replace(signature, "<redacted>") if signature else query
                logger.debug("%s %s %s%s", market.value, method, path, f"?{shown}" if shown else "")
            self._requests += 1
            response = await self._exchange(http, call, url, signature)
            headers = response.headers
            ok = 200 <= response.status_code < 300
            if ok and endpoint.free_on_success:
                charged = 0
            logger.debug("%s %s %s -> HTTP %d", market.value, method, path, response.status_code)
            self._note_order_counts(market, response.headers)
            try:
                return _decode(response, market.value, method, path, signature)
            except BinanceBanError as exc:
                now = self.server_time_ms()
                until = exc.banned_until or now + int(1000 * (exc.retry_after or 120))
                self.limiter.note_banned(market, until, now)
                raise
            except BinanceRateLimitError as exc:
                self.limiter.note_rate_limited(market, exc.retry_after)
                raise
        finally:
            self.limiter.release(
                market,
                weight,
                charged=charged,
                headers=headers,
                server_now_ms=self.server_time_ms,
            )

    async def _exchange(
        self, http: httpx.AsyncClient, call: _Call, url: str, signature: str
    ) -> httpx.Response:
        """Send and read the whole answer within ``timeout`` seconds in all.

        httpx's timeouts bound each read, so a server that drips a byte at a time
        would hold the request forever; ``fail_after`` bounds the whole attempt, on
        any transport (the in-process one has no timeouts of its own). A failure's
        ``__cause__`` is a copy of httpx's exception without the request, whose URL
        and headers carry the signature and the API key.
        """
        where = {"market": call.market.value, "method": call.method, "path": call.path}
        failure: BinanceTransportError
        try:
            with trio.fail_after(self.timeout):
                return await http.request(call.method, url)
        except trio.TooSlowError:
            failure = BinanceTimeoutError(f"no complete answer within {self.timeout} s", **where)
            cause: BaseException | None = None
        except httpx.TimeoutException as exc:
            failure = BinanceTimeoutError(
                f"no answer within {self.timeout} s ({type(exc).__name__})", **where
            )
            cause = _without_request(exc, signature)
        except httpx.RequestError as exc:  # transport errors, undecodable bodies
            failure = BinanceTransportError(
                f"request failed: {type(exc).__name__}: {scrub(str(exc), signature)}", **where
            )
            cause = _without_request(exc, signature)
        # Raised here, outside the except blocks, so that httpx's exception (and its
        # request) is not kept as the implicit __context__ either.
        raise failure from cause

    # -- order counts (per account) ------------------------------------------------

    def _note_order_counts(self, market: Market, headers: httpx.Headers) -> None:
        """Reconcile the local order counts with the exchange's ``X-MBX-ORDER-COUNT-*``."""
        for name, value in headers.items():
            lower = name.lower()
            if not lower.startswith("x-mbx-order-count-"):
                continue
            interval = lower.rsplit("-", 1)[-1].upper()
            try:
                seconds = int(interval[:-1]) * _UNIT_SECONDS[interval[-1]]
                count = int(value)
            except (ValueError, KeyError, IndexError):
                continue
            counts = self._order_counts.setdefault((market, seconds), {})
            index = self.server_time_ms() // (seconds * 1000)
            counts[index] = max(counts.get(index, 0), count)

    async def _wait_for_order_budget(self, market: Market) -> None:
        """Hold an order while a short ORDERS window (10 s, 1 min) is at its limit, then count it.

        Orders are counted here, before they are sent, and reconciled with the
        exchange's headers afterwards: an order whose response was lost still counts.
        """
        limits = self.limiter.limits(market).orders or tuple(
            (float(w), n) for w, n in DEFAULT_ORDER_LIMITS[market]
        )
        short = [(int(w), n) for w, n in limits if w <= 60]  # a day's limit: the exchange's job
        while True:
            blocked_until = 0.0
            for window, limit in short:
                counts = self._order_counts.get((market, window), {})
                size = window * 1000
                full = [i for i in self._order_windows(window) if counts.get(i, 0) >= limit]
                if full:
                    reopens = (max(full) + 1) * size + window_guard_ms(size)
                    blocked_until = max(blocked_until, reopens)
            if not blocked_until:
                break
            await trio.sleep((blocked_until - self.server_time_ms()) / 1000.0)
        for window, _ in short:  # no await since the checks: the counts are ours
            counts = self._order_counts.setdefault((market, window), {})
            windows = self._order_windows(window)
            for index in windows:
                counts[index] = counts.get(index, 0) + 1
            for index in [i for i in counts if i < windows.start - 1]:
                del counts[index]

    def _order_windows(self, window: int) -> range:
        """The exchange's windows an order sent now may fall in: two near a boundary.

        Clocks agree only to a few ms, so an order sent just before or after a
        boundary counts in both windows; otherwise the exchange could see one
        more order in a window than we did.
        """
        size = window * 1000
        now, guard = self.server_time_ms(), window_guard_ms(size)
        return range(int((now - guard) // size), int((now + guard) // size) + 1)

    # -- observing -----------------------------------------------------------------

    def statistics(self) -> ClientStatistics:
        """Requests, retries, order look-ups, order counts and the limiter's view."""
        return ClientStatistics(
            requests=self._requests,
            retries=self._retries,
            order_lookups=self._order_lookups,
            order_counts={
                f"{m.value}:{s}s": counts.get(self.server_time_ms() // (s * 1000), 0)
                for (m, s), counts in self._order_counts.items()
            },
            limiter=self.limiter.statistics(),
        )

    stats = statistics


@attrs.frozen
class ClientStatistics:
    """A snapshot of what a client did; ``limiter`` holds used weight, waits, 429s, 418s."""

    requests: int
    retries: int
    order_lookups: int
    order_counts: Mapping[str, int]
    limiter: LimiterStatistics

    def used_weight(self, market: Market | str) -> int:
        """The weight used in the current window, as the limiter knows it."""
        stats = self.limiter.markets.get(Market(market).value)
        return stats.used_weight if stats is not None else 0


@attrs.frozen
class _Call:
    """One logical request, kept whole so that retries resend exactly the same thing."""

    method: str
    base: str
    path: str
    market: Market
    params: Mapping[str, object]
    extra: str
    signed: bool

    @property
    def str_params(self) -> dict[str, str]:
        return {k: param_str(v) for k, v in self.params.items()}

    @property
    def describe(self) -> str:
        return f"{self.market.value} {self.method} {self.path}"

    def wrong_shape(self, expected: str, data: object) -> BinanceResponseError:
        """The error for an answer to this call that is JSON, but not ``expected``."""
        return BinanceResponseError.wrong_shape(
            expected, data, market=self.market.value, method=self.method, path=self.path
        )


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")


def _check_seconds(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def new_client_order_id() -> str:
    """A fresh ``newClientOrderId`` valid on every market (``^[.A-Z:/a-z0-9_-]{1,36}$``)."""
    return f"aiocea-{secrets.token_hex(12)}"


def _server_time(data: Any, call: _Call) -> int:
    """The ``serverTime`` of a time or exchangeInfo answer, or a response error."""
    value = data.get("serverTime") if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise call.wrong_shape("an object with an integer serverTime", data)


def _order_answer(data: Any, call: _Call) -> Any:
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


def _without_request(exc: httpx.RequestError, signature: str) -> httpx.RequestError:
    """The same kind of httpx error, its text scrubbed, with no request attached."""
    try:
        return type(exc)(scrub(str(exc), signature))
    except Exception:  # an httpx error class with another constructor
        return httpx.TransportError(f"{type(exc).__name__}: {scrub(str(exc), signature)}")


def _never_sent(exc: BinanceTransportError) -> bool:
    """A connection that never opened cannot have placed anything."""
    return isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, BinanceBanError):
        return False
    if isinstance(exc, BinanceTransportError | BinanceServerError | BinanceRateLimitError):
        return True
    return isinstance(exc, BinanceResponseError) and exc.status >= 500


def _retry_after(response: httpx.Response, cap: float) -> float | None:
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


def _api_error_code(data: Any) -> int | None:
    """Binance's error code when ``data`` is its error payload ``{"code": <int>, "msg": ...}``."""
    if isinstance(data, dict):
        code = data.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def _decode(response: httpx.Response, market: str, method: str, path: str, signature: str) -> Any:
    status = response.status_code
    body = response.content
    data: Any
    try:
        data = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        data = _NOT_JSON
    where = {"market": market, "method": method, "path": path}
    code = _api_error_code(data)
    # A 2xx carrying Binance's error payload is an error; positive codes are
    # successes some endpoints report this way ({"code": 200, "msg": "success"}).
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
        raise BinanceResponseError(status, " ".join(text.split())[:_EXCERPT_CHARS], **where)
    if status == 418:
        match = _BANNED_UNTIL.search(msg)
        until = int(match.group(1)) if match else None
        raise BinanceBanError(
            status,
            code,
            msg,
            retry_after=_retry_after(response, MAX_BAN_SECONDS),
            banned_until=until,
            **where,
        )
    if status == 429:
        raise BinanceRateLimitError(
            status, code, msg, retry_after=_retry_after(response, MAX_RATE_LIMIT_PAUSE), **where
        )
    if status >= 500:
        raise BinanceServerError(status, code, msg, **where)
    raise BinanceAPIError(status, code, msg, **where)
