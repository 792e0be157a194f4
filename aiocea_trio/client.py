"""BinanceClient: one pooled HTTP connection to Binance's three REST markets.

The client is a facade over layers (see ``aiocea_trio._layers``), outermost first:
exactly-once orders, retries, the session (limits learned, clock synced), the rate gate
(request weight, order budget) and one attempt (sign, send, decode). The path of a request
picks its market (and so its host), or the registry's `Endpoint` says it; signed requests
get ``timestamp``, ``recvWindow`` and ``signature`` exactly as Binance documents; Binance's
error payloads become typed exceptions. Timestamps follow the limiter's `ExchangeClock`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from ._layers.call import Call, Counters
from ._layers.gate import RateGate
from ._layers.orders import ExactlyOnce
from ._layers.retry import Retrying
from ._layers.routing import Router
from ._layers.session import Session
from ._layers.wire import Attempt
from ._redact import install_log_redaction, register_secret
from ._values import check_int, check_seconds
from .clock import ClockSync, TimeSync
from .endpoints import Endpoint
from .errors import ClientNotOpenError
from .limits import LimiterStatistics, OrderBudget, RateLimiter
from .markets import Market
from .retries import OrderSafety, RetryPolicy
from .signing import HmacSigner, Signer
from .transport import default_transport

__all__ = ["BinanceClient", "ClientStatistics", "new_client_order_id"]

install_log_redaction()  # httpx logs signed request lines at INFO

_MAX_RECV_WINDOW: Final = 60_000
_T = TypeVar("_T")


def new_client_order_id() -> str:
    """A fresh ``newClientOrderId`` valid on every market (``^[.A-Z:/a-z0-9_-]{1,36}$``)."""
    return f"aiocea-{secrets.token_hex(12)}"


class _Setting(Generic[_T]):
    """A read-only attribute read from one of the client's value objects."""

    def __init__(self, source: str, read: Callable[[Any], _T]) -> None:
        self._source, self._read = source, read

    def __get__(self, client: object, owner: type | None = None) -> _T:
        return self._read(getattr(client, self._source))


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
            ``httpx.ASGITransport``. By default ``FastTransport`` (httptools, the
            ``fast`` extra) when installed, else httpx's own; either way respx's
            mocks and proxies from the environment work as with httpx.
        allow_insecure_http: permit sending the API key over plain ``http://`` to a
            host that is not this machine. Off by default, since anyone on the
            path could read the key. This machine is ``localhost`` and literal
            loopback addresses only (not ``*.localhost`` names, which a resolver
            may send anywhere); in-process transports reach no network at all.
        auto_sync_time: measure the server-time offset before the first signed
            request, and again every ``time_sync_interval`` seconds.
        time_sync_interval: seconds between automatic re-syncs; None for never.
        limiter: the ``RateLimiter`` every request passes; share one between
            clients on the same IP (they then read one `ExchangeClock`). By default
            each client has its own, which learns the limits from exchangeInfo.
        retries: how many times a GET is retried after a transport error,
            timeout, 5xx or 429 (with exponential backoff and jitter).
        retry_wait_initial: the backoff's first wait (s).
        retry_wait_max: the backoff's longest wait (s).
        order_attempts: how many times an order placement or cancel is tried,
            each resend only after the exchange said it does not have the order.
        order_lookup_delay: seconds to wait after an ambiguous order failure
            before looking the order up, so that an order still in flight lands.
        retry: a `RetryPolicy`; given, it replaces ``retries`` and ``retry_wait_*``.
        time_sync: a `TimeSync`; given, it replaces ``auto_sync_time`` and
            ``time_sync_interval``.
        order_safety: an `OrderSafety`; given, it replaces ``order_attempts`` and
            ``order_lookup_delay``.

    Using the client outside ``async with`` raises ``ClientNotOpenError``.
    """

    SPOT_BASE_URL: Final = "https://api.binance.com"
    USDM_BASE_URL: Final = "https://fapi.binance.com"
    COINM_BASE_URL: Final = "https://dapi.binance.com"
    #: aiocea's name for the COIN-M host.
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
        retry: RetryPolicy | None = None,
        time_sync: TimeSync | None = None,
        order_safety: OrderSafety | None = None,
    ) -> None:
        self._signer = _signer(api_key, api_secret, signer)
        _check_timing(recv_window, timeout)
        self.api_key = api_key
        self.testnet = testnet
        self.recv_window = recv_window
        self.timeout = timeout
        self._transport = transport
        self.base_url = _check_base_url(base_url)
        self._bases: dict[Market, str] = self._base_urls()
        insecure = allow_insecure_http
        self._router = Router(self._bases, api_key, transport, allow_insecure_http=insecure)
        if self.base_url is not None:
            self._router.check_secure(self.base_url)
        self._http: httpx.AsyncClient | None = None
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.retry_policy = retry or _retry_policy(retries, retry_wait_initial, retry_wait_max)
        self.time_sync = time_sync or _time_sync(auto_sync_time, time_sync_interval)
        self.order_safety = order_safety or _order_safety(order_attempts, order_lookup_delay)
        self._counters = Counters()
        self._orders = OrderBudget(self._now_ms, limiter=self.limiter, api_key=api_key)
        self._sync = ClockSync(self.limiter.clock, self.time_sync)
        self._send = self._layers()

    def _layers(self) -> ExactlyOnce:
        """Build the stack, innermost first (see ``aiocea_trio._layers``)."""
        attempt = Attempt(
            http=self._require_open,
            signer=self._signer,
            recv_window=self.recv_window,
            timeout=self.timeout,
            now_ms=self._now_ms,
            counters=self._counters,
        )
        gate = RateGate(attempt, limiter=self.limiter, orders=self._orders, now_ms=self._now_ms)
        self._session = Session(
            gate,
            bases=self._bases,
            limiter=self.limiter,
            sync=self._sync,
            local_ms=self.local_time_ms,
            policy=self.retry_policy,
            counters=self._counters,
        )
        retrying = Retrying(self._session, policy=self.retry_policy, counters=self._counters)
        return ExactlyOnce(
            retrying,
            prepare=self._session.prepare,
            safety=self.order_safety,
            new_id=new_client_order_id,
            counters=self._counters,
        )

    # -- the settings, as the keyword arguments named them -------------------------------

    retries = _Setting[int]("retry_policy", lambda p: p.attempts - 1)
    retry_wait_initial = _Setting[float]("retry_policy", lambda p: p.wait_initial)
    retry_wait_max = _Setting[float]("retry_policy", lambda p: p.wait_max)
    auto_sync_time = _Setting[bool]("time_sync", lambda t: t.auto)
    time_sync_interval = _Setting["float | None"]("time_sync", lambda t: t.interval)
    order_attempts = _Setting[int]("order_safety", lambda o: o.attempts)
    order_lookup_delay = _Setting[float]("order_safety", lambda o: o.lookup_delay)

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> BinanceClient:
        if self._http is not None:
            raise RuntimeError("this BinanceClient is already open; enter it once")
        headers = {"X-MBX-APIKEY": self.api_key} if self.api_key else {}
        # FastTransport when the ``fast`` extra is installed, else httpx's own.
        transport = self._transport if self._transport is not None else default_transport()
        self._http = httpx.AsyncClient(
            transport=transport, timeout=self.timeout, headers=headers, verify=True
        )
        # Anchor trio's monotonic clock to the wall clock once: timestamps then
        # advance with trio (MockClock in tests) and never jump with NTP steps.
        self._sync.reset()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
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
    def transport(self) -> httpx.AsyncBaseTransport | None:
        """The transport given at construction (the simulator's in-process one, a mock), or
        None for the network: what streams use to reach the same exchange."""
        return self._transport

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
        kind = "TESTNET_BASE_URL" if self.testnet else "BASE_URL"
        return {market: getattr(self, f"{market.name}_{kind}") for market in Market}

    def base_url_for(self, market: Market | str) -> str:
        """The host a market's requests go to."""
        return self._bases[Market(market)]

    # -- server time -----------------------------------------------------------

    def local_time_ms(self) -> int:
        """This machine's idea of the epoch time in ms, following trio's clock."""
        return self.limiter.clock.local_ms()

    def server_time_ms(self) -> int:
        """The estimated server time: local time plus the last measured offset."""
        return self.limiter.clock.now_ms()

    def _now_ms(self) -> int:
        # Every layer reads the exchange's time through the facade, so that a subclass
        # (or a test skewing the clock) changes it everywhere at once.
        return self.server_time_ms()

    @property
    def time_offset_ms(self) -> int:
        """Server time minus local time, as last measured by ``sync_time``."""
        return self.limiter.clock.offset_ms

    async def sync_time(self, market: Market | str = Market.SPOT) -> int:
        """Measure the server-time offset (ms) and use it for every later signature.

        One GET of the market's ``time`` endpoint (weight 1, retried like any GET);
        the offset is the server time minus the midpoint of the local send and
        receive times of the try that succeeded. Clients sharing a limiter share it.
        """
        self._require_open()
        return await self._session.sync_time(Market(market))

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
                ``/dapi/...`` (COIN-M), or a full URL. It is looked up in the endpoint
                registry (`aiocea_trio.endpoints.find`) for its weight and whether it
                is an order; an unknown path costs the default weight.
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
        endpoint, base, extra = self._router.route(method.upper(), path)
        return await self._dispatch(Call(endpoint, base, _clean(params), extra, signed))

    async def call(self, endpoint: Endpoint, params: Mapping[str, object] | None = None) -> Any:
        """Send one request to a registry `Endpoint` and return Binance's decoded JSON.

        The endpoint gives the market (so the host), method, path, weight, whether it is
        signed and whether it is an order: ``client.call(endpoints.KLINES["spot"],
        {"symbol": "BTCUSDT", "interval": "1m"})``. Otherwise exactly as `request`.
        """
        self._require_open()
        call = Call(endpoint, self._bases[endpoint.market], _clean(params), "", endpoint.signed)
        return await self._dispatch(call)

    async def _dispatch(self, call: Call) -> Any:
        if call.signed and self._signer is None:
            raise ValueError(
                f"{call.describe} needs a signature: give the client api_secret= or signer="
            )
        return await self._send(call)

    # -- observing -----------------------------------------------------------------

    def statistics(self) -> ClientStatistics:
        """Requests, retries, order look-ups, order counts and the limiter's view."""
        return ClientStatistics(
            requests=self._counters.requests,
            retries=self._counters.retries,
            order_lookups=self._counters.order_lookups,
            order_counts=self._orders.current(),
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


def _signer(
    api_key: object, api_secret: str | bytes | None, signer: Signer | None
) -> Signer | None:
    """The signer the credentials describe; the secrets are registered for redaction."""
    if api_secret is not None and signer is not None:
        raise ValueError("give api_secret or signer, not both")
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str, got {type(api_key).__name__}")
    register_secret(api_key)
    if isinstance(api_secret, str | bytes):
        register_secret(api_secret)
    return HmacSigner(api_secret) if api_secret is not None else signer


def _check_base_url(base_url: str | None) -> str | None:
    """``base_url`` without its trailing slash, if it is an http(s) URL."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


def _check_timing(recv_window: int, timeout: float) -> None:
    check_int("recv_window", recv_window)
    if not 0 < recv_window <= _MAX_RECV_WINDOW:
        raise ValueError(f"recv_window must be in 1..{_MAX_RECV_WINDOW} ms, got {recv_window}")
    check_seconds("timeout", timeout, positive=True)


def _clean(params: Mapping[str, object] | None) -> dict[str, object]:
    return {k: v for k, v in (params or {}).items() if v is not None}


def _retry_policy(retries: int, wait_initial: float, wait_max: float) -> RetryPolicy:
    """The `RetryPolicy` the ``retries=`` and ``retry_wait_*=`` keywords describe."""
    check_int("retries", retries)
    check_seconds("retry_wait_initial", wait_initial)
    check_seconds("retry_wait_max", wait_max)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    return RetryPolicy(
        attempts=retries + 1, wait_initial=wait_initial, wait_max=wait_max, wait_jitter=wait_initial
    )


def _time_sync(auto: bool, interval: float | None) -> TimeSync:
    if interval is not None:
        check_seconds("time_sync_interval", interval, positive=True)
    return TimeSync(auto=auto, interval=interval)


def _order_safety(attempts: int, lookup_delay: float) -> OrderSafety:
    check_int("order_attempts", attempts)
    check_seconds("order_lookup_delay", lookup_delay)
    if attempts < 1:
        raise ValueError(f"order_attempts must be >= 1, got {attempts}")
    return OrderSafety(attempts=attempts, lookup_delay=lookup_delay)
