"""BinanceClient: one pooled HTTP connection to Binance's three REST markets.

The path of a request picks its market (and so its host); signed requests get
``timestamp``, ``recvWindow`` and ``signature`` exactly as Binance documents;
Binance's error payloads become typed exceptions. Timestamps follow trio's
clock, anchored to the wall clock when the client opens, so they never jump
with the system clock and they follow ``MockClock`` in tests.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import trio

from ._params import encode_params
from .errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceRateLimitError,
    BinanceResponseError,
    BinanceServerError,
    BinanceTimeoutError,
    BinanceTransportError,
    ClientNotOpenError,
    InsecureTransportError,
)
from .markets import Market, market_for_path
from .signing import HmacSigner, Signer

__all__ = ["BinanceClient"]

logger = logging.getLogger("aiocea_trio.client")

_MAX_RECV_WINDOW: Final = 60_000
_INVALID_TIMESTAMP: Final = -1021
_EXCERPT_CHARS: Final = 200
_TIME_PATHS: Final = {
    Market.SPOT: "/api/v3/time",
    Market.USDM: "/fapi/v1/time",
    Market.COINM: "/dapi/v1/time",
}
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
_NOT_JSON: Final = object()


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        timeout: seconds for each HTTP request (connect, read, write, pool).
        transport: passed to ``httpx.AsyncClient``: tests give respx's or
            ``httpx.ASGITransport``.
        allow_insecure_http: permit sending the API key over plain ``http://`` to a
            host that is not this machine. Off by default, since anyone on the
            path could read the key.
        auto_sync_time: measure the server-time offset before the first signed
            request, and again every ``time_sync_interval`` seconds.
        time_sync_interval: seconds between automatic re-syncs; None for never.

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
    ) -> None:
        if api_secret is not None and signer is not None:
            raise ValueError("give api_secret or signer, not both")
        if not 0 < recv_window <= _MAX_RECV_WINDOW:
            raise ValueError(f"recv_window must be in 1..{_MAX_RECV_WINDOW} ms, got {recv_window}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
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
        self._last_sync: float | None = None
        self._sync_lock: trio.Lock | None = None

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

        One GET of the market's ``time`` endpoint (weight 1); the offset is the
        server time minus the midpoint of the local send and receive times.
        """
        self._require_open()
        market = Market(market)
        before = self.local_time_ms()
        data = await self._send("GET", self._bases[market], _TIME_PATHS[market], market, "", False)
        after = self.local_time_ms()
        server = int(data["serverTime"])
        self._time_offset_ms = server - (before + after) // 2
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

        Raises:
            BinanceAPIError: Binance's error payload (and its subclasses for 429,
                418 and 5xx).
            BinanceResponseError: a body that is not Binance's JSON.
            BinanceTransportError: the request did not complete (timeouts included).

        A ``-1021`` (timestamp outside recvWindow) re-syncs the clock and retries
        that signed request once; nothing else is retried here.
        """
        self._require_open()
        method = method.upper()
        base, path, market, extra = self._route(path)
        query = encode_params(params)
        if extra:
            query = f"{extra}&{query}" if query else extra
        if not signed:
            return await self._send(method, base, path, market, query, False)
        if self._signer is None:
            raise ValueError(
                f"{market.value} {method} {path} needs a signature: "
                "give the client api_secret= or signer="
            )
        await self._ensure_time_synced(market)
        try:
            return await self._send(method, base, path, market, query, True)
        except BinanceAPIError as exc:
            if exc.code != _INVALID_TIMESTAMP:
                raise
            logger.info("%s %s %s: -1021, re-syncing the clock once", market.value, method, path)
            await self.sync_time(market)
            return await self._send(method, base, path, market, query, True)

    def _sign(self, query: str) -> tuple[str, str]:
        """Return (signed query, signature) for a query string."""
        assert self._signer is not None
        stamp = f"recvWindow={self.recv_window}&timestamp={self.server_time_ms()}"
        payload = f"{query}&{stamp}" if query else stamp
        signature = self._signer.sign(payload)
        return f"{payload}&signature={signature}", signature

    async def _send(
        self, method: str, base: str, path: str, market: Market, query: str, signed: bool
    ) -> Any:
        http = self._require_open()
        signature = ""
        if signed:
            query, signature = self._sign(query)
        url = f"{base}{path}?{query}" if query else f"{base}{path}"
        if logger.isEnabledFor(logging.DEBUG):
            shown = query.replace(signature, "<redacted>") if signature else query
            logger.debug("%s %s %s%s", market.value, method, path, f"?{shown}" if shown else "")
        try:
            response = await http.request(method, url)
        except httpx.TimeoutException as exc:
            raise BinanceTimeoutError(
                f"no answer within {self.timeout} s ({type(exc).__name__})",
                market=market.value,
                method=method,
                path=path,
            ) from exc
        except httpx.TransportError as exc:
            raise BinanceTransportError(
                f"request failed: {type(exc).__name__}: {_scrub(str(exc), signature)}",
                market=market.value,
                method=method,
                path=path,
            ) from exc
        logger.debug("%s %s %s -> HTTP %d", market.value, method, path, response.status_code)
        return _decode(response, market.value, method, path, signature)


def _scrub(text: str, signature: str) -> str:
    if signature:
        text = text.replace(signature, "<redacted>")
    return text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
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
    if 200 <= status < 300 and data is not _NOT_JSON:
        return data
    if isinstance(data, dict) and isinstance(data.get("code"), int):
        code: int = data["code"]
        msg = _scrub(str(data.get("msg", "")), signature)
    elif status in (418, 429):
        code, msg = -1003, "rate limit exceeded"
    else:
        excerpt = _scrub(body[:_EXCERPT_CHARS].decode("utf-8", "replace"), signature)
        raise BinanceResponseError(status, " ".join(excerpt.split()), **where)
    if status == 418:
        retry_after = _retry_after(response)
        match = _BANNED_UNTIL.search(msg)
        until = int(match.group(1)) if match else None
        raise BinanceBanError(
            status, code, msg, retry_after=retry_after, banned_until=until, **where
        )
    if status == 429:
        raise BinanceRateLimitError(
            status, code, msg, retry_after=_retry_after(response), **where
        )
    if status >= 500:
        raise BinanceServerError(status, code, msg, **where)
    raise BinanceAPIError(status, code, msg, **where)
