"""The way one request goes out, and the answer it brings back (`Answer`).

A Binance request needs nothing of what ``AsyncClient.send`` adds per request (cookie jars,
auth flows, redirects, event hooks) but pays for all of it, and for the ``httpx.Request`` and
``httpx.Response`` objects too: with a fast transport those cost more than the exchange
itself (docs/benchmarks.md, "Per-request CPU"). So `Lane` sends the request itself, by the
cheapest legitimate way its client allows:

1. the client's transport is `FastTransport` (and no mock patches httpx): the request head is
   encoded once per host (`RequestHeads`) and `FastTransport.fetch` returns the status, the
   raw headers and the body — no httpx objects at all;
2. another transport (the simulator's in-process one, httpx's own, a mounted proxy, respx's
   ``using="httpx"`` mocker): an ``httpx.Request`` built from the base URL parsed once,
   handed to the transport the client would choose (``_transport_for_url``);
3. event hooks on the client's ``http_client``, or an httpx without those seams:
   ``AsyncClient.request``, which calls the hooks.

All three send the same request (method, URL, the client's headers) and give the same
`Answer`; a compressed body is decoded as httpx decodes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Final, Protocol

import httpx

from ..transport import FastTransport, RequestHeads, plain_target

__all__ = ["Answer", "Answered", "Lane", "RawHeaders"]


class Answered(Protocol):
    """What the layers read of an answer: `Answer`, or an ``httpx.Response``."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def is_success(self) -> bool: ...


class RawHeaders(Mapping[str, str]):
    """Headers as received (``raw``: name and value bytes), read as a case-insensitive
    mapping when someone asks (rarely: the limiter reads ``raw``), decoded then, once."""

    __slots__ = ("_decoded", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw: Final = raw
        self._decoded: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        decoded = self._decoded
        if decoded is None:
            decoded = {}
            for name, value in self.raw:
                key, text = name.decode("latin-1").lower(), value.decode("latin-1")
                decoded[key] = f"{decoded[key]}, {text}" if key in decoded else text
            self._decoded = decoded
        return decoded

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"RawHeaders({self._mapping()!r})"


class Answer:
    """A whole answer: its status, headers and (decoded) body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code: Final = status_code
        self.headers: Final = headers
        self.content: Final = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        """A read ``httpx.Response``'s answer."""
        return cls(response.status_code, response.headers, response.content)

    @classmethod
    def received(cls, status: int, raw: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        """An answer from the wire: a ``Content-Encoding`` is undone as httpx does."""
        for name, _ in raw:
            if len(name) == 16 and name.lower() == b"content-encoding":
                return cls.of(httpx.Response(status, headers=raw, content=body))
        return cls(status, RawHeaders(raw), body)

    def __repr__(self) -> str:
        return f"<Answer [{self.status_code}]>"


class _Base:
    """One base URL, parsed once: the URL, its path prefix, its headers and its heads."""

    __slots__ = ("headers", "heads", "prefix", "url")

    def __init__(self, url: httpx.URL, client_headers: httpx.Headers) -> None:
        self.url: Final = url
        self.prefix: Final = url.raw_path.decode("ascii").rstrip("/")
        headers = httpx.Headers({"Host": url.netloc.decode("ascii")})
        headers.update(client_headers)
        self.headers: Final = headers
        self.heads: RequestHeads | None = None  # made on the first FastTransport request


class Lane:
    """Sends a client's requests (see the module's text); one per ``httpx.AsyncClient``.

    Args:
        http: the client's ``httpx.AsyncClient``; its headers are read when a base is
            first used.
    """

    __slots__ = ("_bases", "_extensions", "_seams", "http")

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        # No per-operation timeouts: the attempt's own deadline (a cancel scope) bounds
        # connecting, sending and the whole answer, on every transport.
        self._extensions = {"timeout": httpx.Timeout(None).as_dict()}
        self._bases: dict[str, _Base | None] = {}
        # Whether this httpx has the seams used here (another version: AsyncClient.request).
        self._seams = callable(getattr(http, "_transport_for_url", None)) and _URLS_COMPOSE

    async def send(self, method: str, base: str, path: str, query: str) -> Answer:
        """The whole answer to ``method base+path?query`` (path and query percent-encoded)."""
        known = self._base(base)
        http = self.http
        tail = f"{path}?{query}" if query else path
        target = f"{known.prefix}{tail}" if known is not None else ""
        # Through AsyncClient.request when event hooks on the client's http_client must see
        # every request, or a target holds characters httpx would encode (its URL parser
        # does), or this httpx lacks the seams used below.
        if (
            known is None
            or not self._seams
            or not plain_target(target)
            or any(http.event_hooks.values())
        ):
            return Answer.of(await http.request(method, f"{base}{tail}"))
        # Looked up per request: respx's using="httpx" mocker patches this method, and a
        # mock started after the first request must see the next. Mounts match on scheme,
        # host and port only, so the base URL picks as the whole URL would.
        transport = http._transport_for_url(known.url)
        if isinstance(transport, FastTransport) and not transport.mocked():
            heads = known.heads
            if heads is None:
                heads = known.heads = RequestHeads(known.url, known.headers)
            head = heads.head(method, target)
            status, raw, body = await transport.fetch(heads.origin, head, is_head=method == "HEAD")
            return Answer.received(status, raw, body)
        url = _compose(known.url, known.prefix + path, query)
        request = httpx.Request(method, url, headers=known.headers, extensions=self._extensions)
        response = await transport.handle_async_request(request)
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
        return Answer.of(response)

    def _base(self, base: str) -> _Base | None:
        """``base`` parsed, with the client's headers and its ``Host`` (built once); None
        when it has a query or fragment (then every URL is parsed by httpx)."""
        known = self._bases.get(base, _UNSEEN)
        if known is _UNSEEN:
            url = httpx.URL(base)
            known = None
            if not (url.query or url.fragment or not url.host):
                known = _Base(url, self.http.headers)
            self._bases[base] = known
        assert known is not _UNSEEN
        return known  # type: ignore[return-value]


_UNSEEN: Final = object()


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


def _compose(base: httpx.URL, path: str, query: str) -> httpx.URL:
    """``base`` with ``path`` (the whole path) and ``query``, from parts already
    percent-encoded: an ``httpx.URL`` without parsing again."""
    url = httpx.URL.__new__(httpx.URL)
    reference = base._uri_reference  # checked by _URLS_COMPOSE
    url._uri_reference = reference._replace(path=path, query=query or None)
    return url


def _urls_compose() -> bool:
    """Whether this httpx's URLs can be composed from parts (its private layout is the one
    ``_compose`` knows): checked once against httpx's own parser."""
    try:
        base = httpx.URL("https://api.example.com:8443")
        made = _compose(base, "/api/v3/klines", "symbol=BTCUSDT&limit=1000&x=%2Fa%3D")
        parsed = httpx.URL(
            "https://api.example.com:8443/api/v3/klines?symbol=BTCUSDT&limit=1000&x=%2Fa%3D"
        )
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
