"""Where a request goes: its registry entry and its host, and never the key in clear."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from ..endpoints import Endpoint, find
from ..errors import InsecureTransportError
from ..markets import Market, market_for_path

__all__ = ["Router"]


class Router:
    """Map a method and a path (or a full URL) to its `Endpoint`, host and extra query.

    Args:
        bases: each market's host.
        api_key: the key the requests carry (none: plain http is harmless).
        transport: the client's transport (an in-process one reaches no network).
        allow_insecure_http: permit the key over plain http to another machine.
    """

    def __init__(
        self,
        bases: Mapping[Market, str],
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None,
        *,
        allow_insecure_http: bool,
    ) -> None:
        self.bases = bases
        self._api_key = api_key
        self._transport = transport
        self._allow_insecure_http = allow_insecure_http

    def route(self, method: str, path: str) -> tuple[Endpoint, str, str]:
        """Return (endpoint, base, extra query) for a path or a full URL."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            base = f"{parts.scheme}://{parts.netloc}"
            self.check_secure(base)
            return find(market_for_path(parts.path), method, parts.path), base, parts.query
        if not path.startswith("/"):
            path = "/" + path
        endpoint = find(market_for_path(path), method, path)
        return endpoint, self.bases[endpoint.market], ""

    def check_secure(self, url: str) -> None:
        """Refuse to send the API key over plain http to another machine, unless allowed."""
        parts = urlsplit(url)
        if (
            self._api_key
            and parts.scheme == "http"
            and not _is_loopback(parts.hostname or "")
            and not _in_process(self._transport)
            and not self._allow_insecure_http
        ):
            raise InsecureTransportError(
                f"refusing to send the API key over plain http to {parts.hostname}: use https, "
                "or pass allow_insecure_http=True if this network is trusted"
            )


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
