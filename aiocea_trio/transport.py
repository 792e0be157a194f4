"""A fast HTTP/1.1 transport for httpx on trio: trio's streams carry, httptools parses.

Why it exists (issue 19): a tiny GET over keep-alive costs ~1,100 µs of client CPU through
httpx + httpcore + h11 on trio, most of it in httpcore's pool bookkeeping and h11's pure-Python
state machine; the same exchange parsed by httptools (llhttp, in C) costs a fraction of it.
``FastTransport`` keeps httpx's client (its API, redirects, auth, cookies, decoding) and
replaces only the layer under it.

How an exchange goes, and why:

- *One origin pool per (scheme, host, port)*: a ``trio.Semaphore`` of ``max_connections``
  slots and a stack of idle connections (the most recently used first: the likeliest alive).
  A request takes a slot (waiting at most the ``pool`` timeout), then an idle connection if
  one is fresh, else dials one. Idle connections past ``keepalive_expiry`` are closed, and one
  the server has closed (its socket readable while idle: EOF) is discarded before reuse, as
  httpcore does.
- *One write*: the request line, headers and an in-memory body are encoded into one bytes
  object and sent with one ``send_all``.
- *No resend, ever*: once a byte was written, whatever goes wrong is raised (an order must
  not be placed twice). The only "retry" is the idle check above, before anything is written.
- *Parsing*: one httptools parser per connection, its callbacks appending to lists. A body
  whose Content-Length fits one read (64 KiB) is read before returning, under the same cancel
  scope as the request (a scope costs ~6 µs on trio: one per exchange, its deadline moved per
  read and write). When the whole answer is read (the common case for JSON), the connection
  goes back to the pool at once and the response carries the bytes; otherwise it streams the body
  chunk by chunk (bounded memory) and gives the connection back only when the body was read
  to its end and the answer allows reuse (HTTP/1.1, no ``Connection: close``).
- *Cancellation and errors*: any exception (``trio.Cancelled`` included, always re-raised)
  while a connection is in use closes it and frees its slot, so a half-read connection never
  returns to the pool. Closing is synchronous (the socket is closed; no TLS close_notify is
  awaited), so cleanup never awaits inside ``except``/``finally`` (one exception: a streamed
  request body's iterator is closed, shielded, within 1 s, rather than left to the GC).
- *Content-Encoding* is left to httpx (the response carries the raw bytes), as httpcore does.
- *Mocks*: respx patches httpcore's pool (and pytest-httpx httpx's transport); when either is
  patched, requests go through a lazily created ``httpx.AsyncHTTPTransport`` so the mock sees
  them and a mocked test never reaches the network.
- *Proxies* are not handled here: httpx routes proxied URLs (its env-proxy mounts) to its own
  transport, and ``default_transport(proxy=...)`` returns httpx's transport.
- *Not supported*: HTTP/2, ``101 Switching Protocols`` upgrades (raised as
  ``httpx.RemoteProtocolError``), Unix sockets, ``local_address``.

Nothing here logs: URLs carry signatures.
"""

from __future__ import annotations

import math
import re
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import attrs
import httpx
import trio

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "FastTransport",
    "RequestHeads",
    "TransportStatistics",
    "default_transport",
    "fast_transport_available",
    "plain_target",
]

#: Bytes asked of the socket per read: large answers arrive in chunks of at most this much.
READ_SIZE: Final = 65_536
#: An in-memory request body up to this size is sent in the same write as the head.
_COALESCE_BODY: Final = 65_536
_INF: Final = math.inf
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_METHODS: dict[str, bytes] = {}
_HTTP11: Final = b"HTTP/1.1"
_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}
_READ_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
_CUT_SHORT: Final = "Server disconnected before the end of the body."


def fast_transport_available() -> bool:
    """Whether ``FastTransport`` can be built (httptools, the ``fast`` extra, imports)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


def default_transport(
    *,
    verify: ssl.SSLContext | bool = True,
    proxy: httpx.Proxy | httpx.URL | str | None = None,
    trust_env: bool = True,
    max_connections: int = 100,
    max_keepalive_connections: int | None = None,
    keepalive_expiry: float | None = 5.0,
) -> httpx.AsyncBaseTransport:
    """The client's transport: ``FastTransport`` when httptools imports, else httpx's own.

    httpx's ``AsyncHTTPTransport`` is also returned when a ``proxy`` is asked for (proxies are
    httpcore's business). ``max_connections`` and ``max_keepalive_connections`` are per origin
    for ``FastTransport`` and across origins for httpx's transport (the client talks to one
    host per market, so the two readings agree in practice).
    """
    if proxy is not None or not fast_transport_available():
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        )
        return httpx.AsyncHTTPTransport(
            verify=verify, proxy=proxy, trust_env=trust_env, limits=limits
        )
    return FastTransport(
        verify=verify,
        trust_env=trust_env,
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive_connections,
        keepalive_expiry=keepalive_expiry,
    )


@attrs.frozen
class TransportStatistics:
    """A snapshot of ``FastTransport``'s pools (counts only: no hosts, no URLs)."""

    #: Origins (scheme, host, port) with a pool.
    origins: int
    #: Open connections, idle or in use.
    connections: int
    #: Open connections waiting in a pool for the next request.
    idle: int
    #: Requests holding a connection slot: being sent, awaiting an answer or streaming a body.
    active: int


class _Origin:
    """One (scheme, host, port): its slots, idle stack and every open connection."""

    __slots__ = ("closed", "conns", "host", "idle", "max", "port", "slots", "tls")

    def __init__(self, host: str, port: int, tls: bool, max_connections: int) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.max = max_connections
        self.slots = trio.Semaphore(max_connections)
        self.idle: list[_Conn] = []  # a stack: the most recently released last
        self.conns: set[_Conn] = set()
        self.closed = False


class _Conn:
    """One connection: its stream and parser, and the parser's callbacks (per message state)."""

    __slots__ = (
        "body",
        "complete",
        "dirty",
        "expires",
        "head_done",
        "headers",
        "is_head",
        "keep_alive",
        "origin",
        "parser",
        "raw",
        "reason",
        "sock",
        "status",
        "stream",
        "version",
    )

    def __init__(
        self, origin: _Origin, stream: trio.abc.Stream, sock: trio.socket.SocketType
    ) -> None:
        import httptools

        self.origin = origin
        self.stream = stream
        self.sock = sock
        # Plain TCP: the stdlib socket itself, for the two calls a request makes on it (send,
        # then recv once trio says it is readable), without the stream's per-call machinery.
        # TLS (or a trio without this attribute) goes through the stream.
        raw = None if isinstance(stream, trio.SSLStream) else getattr(sock, "_sock", None)
        self.raw: socket.socket | None = raw if isinstance(raw, socket.socket) else None
        self.parser = httptools.HttpResponseParser(self)
        self.expires = _INF
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.reason = b""
        self.status = 0
        self.version = "1.1"
        self.head_done = False
        self.complete = False
        self.is_head = False
        self.keep_alive = False
        self.dirty = False  # bytes the server sent beyond the answer: never reuse

    def start(self, is_head: bool) -> None:
        """Reset the per-message state before a request."""
        self.body = []
        self.head_done = self.complete = self.keep_alive = False
        self.is_head = is_head

    def close(self) -> None:
        """Close at once, synchronously (no TLS close_notify: never awaits, safe in cleanup)."""
        self.sock.close()
        self.origin.conns.discard(self)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            self.dirty = True
        self.headers = []
        self.reason = b""

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200:  # 1xx interim answers are skipped (their message completes empty)
            self.status = status
            self.version = self.parser.get_http_version()
            self.head_done = True
            if self.is_head:  # the parser does not know the method: a HEAD answer has no body
                self.complete = True

    def on_body(self, body: bytes) -> None:
        if self.complete:
            self.dirty = True
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.head_done and not self.is_head:
            self.complete = True
            # llhttp forgets the answer's flags once this callback returns: ask now
            self.keep_alive = self.parser.should_keep_alive()

    # after the message

    def reusable(self) -> bool:
        """Whether the connection may carry another request (the answer is complete)."""
        if self.dirty:
            return False
        if self.is_head:
            # The parser may still wait for a body that never comes: start a fresh one.
            import httptools

            self.parser = httptools.HttpResponseParser(self)
            return self.version == "1.1" and not _says_close(self.headers)
        return self.version == "1.1" and self.keep_alive

    def until_eof(self) -> bool:
        """Whether the body is delimited by the connection's end (no length, not chunked)."""
        for name, _ in self.headers:
            if name.lower() in (b"content-length", b"transfer-encoding"):
                return False
        return True


def _check_head(head: bytes, lines: int, request: httpx.Request | None) -> None:
    """Refuse a head whose ``lines`` lines hold a CR, LF or NUL of their own: one in a header
    or the target would split (smuggle) the request."""
    if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
        raise httpx.LocalProtocolError("Illegal character in request head", request=request)


def _says_close(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(n.lower() == b"connection" and b"close" in v.lower() for n, v in headers)


def _join(parts: list[bytes]) -> bytes:
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _encode_method(method: str) -> bytes:
    raw = method.encode("ascii", "replace")
    if not _TOKEN.fullmatch(raw):
        raise httpx.LocalProtocolError("Illegal method name")
    _METHODS[method] = raw
    return raw


#: What a request target may hold to be sent as it is: the characters httpx's URL parser
#: leaves alone in a path and a query (anything else is left to that parser).
_PLAIN_TARGET = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]+")


class RequestHeads:
    """Request heads for one origin with fixed headers, for `FastTransport.fetch`.

    Built once per origin (the header block encoded and checked once), then one bytes
    object per request from its method and target: what ``httpx.Request`` plus the
    transport's encoding would make, without either.

    Args:
        url: the origin (scheme, host, port; any path is ignored).
        headers: every header a request carries (``Host`` first, as httpx sends it).
    """

    __slots__ = ("block", "origin")

    def __init__(self, url: httpx.URL, headers: httpx.Headers) -> None:
        self.origin: Final = (url.raw_scheme, url.raw_host, url.port or 0)
        raw = headers.raw
        block = b"".join([*[b"%s: %s\r\n" % pair for pair in raw], b"\r\n"])
        _check_head(block, len(raw) + 1, None)
        self.block: Final = block

    def head(self, method: str, target: str) -> bytes:
        """``method target HTTP/1.1`` and the headers, for a `plain_target`."""
        verb = _METHODS.get(method) or _encode_method(method)
        return b"%s %s HTTP/1.1\r\n%s" % (verb, target.encode("ascii"), self.block)


def plain_target(target: str) -> bool:
    """Whether a request target (path and query, percent-encoded) is sent as it is: it holds
    nothing httpx's URL parser would encode (nor a space, CR, LF or NUL)."""
    return _PLAIN_TARGET.fullmatch(target) is not None


class FastTransport(httpx.AsyncBaseTransport):
    """An HTTP/1.1 transport for ``httpx.AsyncClient`` on trio, parsed by httptools.

    Args:
        verify: certificate verification, as httpx takes it: ``True`` (certifi's CAs, or
            ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when ``trust_env``), ``False``, or an
            ``ssl.SSLContext`` (its ALPN is set to ``http/1.1``, as httpcore does).
        trust_env: let ``SSL_CERT_FILE``/``SSL_CERT_DIR`` choose the CAs.
        max_connections: connections per origin; more requests wait (``pool`` timeout).
        max_keepalive_connections: idle connections kept per origin (default: as many as
            ``max_connections``).
        keepalive_expiry: seconds an idle connection is kept (trio's clock); ``None`` keeps it
            until the server closes it.

    Takes no proxy (see ``default_transport``). Timeouts come from the request's
    ``timeout`` extension (httpx's client sets it), each phase mapped to httpx's exception.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
        max_connections: int = 100,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        try:
            import httptools
        except ImportError as exc:  # pragma: no cover - exercised through default_transport
            raise ImportError(
                "FastTransport needs httptools: pip install 'aiocea-trio[fast]'"
            ) from exc
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._verify = verify
        self._trust_env = trust_env
        self._ssl: ssl.SSLContext | None = None  # built on the first https connection
        self._max_connections = max_connections
        self._max_idle = (
            max_connections
            if max_keepalive_connections is None
            else max(0, max_keepalive_connections)
        )
        self._keepalive_expiry = _INF if keepalive_expiry is None else keepalive_expiry
        self._keepalive_expiry_arg = keepalive_expiry
        self._origins: dict[tuple[bytes, bytes, int], _Origin] = {}
        self._parse_errors = (httptools.HttpParserError, httptools.HttpParserUpgrade)
        self._mockable = _mockable(*_mock_targets())
        self._delegate: httpx.AsyncHTTPTransport | None = None

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<FastTransport origins={s.origins} connections={s.connections} "
            f"idle={s.idle} active={s.active}>"
        )

    def statistics(self) -> TransportStatistics:
        """Counts of origins, connections (open, idle) and requests in flight."""
        origins = self._origins.values()
        return TransportStatistics(
            origins=len(self._origins),
            connections=sum(len(o.conns) for o in origins),
            idle=sum(len(o.idle) for o in origins),
            active=sum(o.max - o.slots.value for o in origins),
        )

    async def __aenter__(self) -> FastTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection, idle or in use (a body being streamed then fails)."""
        origins = list(self._origins.values())
        self._origins.clear()
        for origin in origins:
            origin.closed = True
            origin.idle.clear()
            for conn in list(origin.conns):
                conn.close()
        delegate, self._delegate = self._delegate, None
        if delegate is not None:
            await delegate.aclose()
        await trio.lowlevel.checkpoint()

    # the exchange

    def mocked(self) -> bool:
        """Whether a mock (respx, pytest-httpx) patches httpcore or httpx right now: then
        requests go through httpx's own transport, which the mock sees."""
        mockable = self._mockable
        if len(mockable) == 1 and "httpcore" in sys.modules:  # imported since (respx does)
            mockable = self._mockable = _mockable(*_mock_targets())
        for cls, original in mockable:
            if getattr(cls, "handle_async_request", None) is not original:
                if _patched(cls):
                    return True
                self._mockable = _mockable(*_mock_targets())  # unpatched again
        return False

    async def fetch(
        self, origin: tuple[bytes, bytes, int], head: bytes, *, is_head: bool = False
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send a request head (no body) already encoded, return (status, headers, whole body).

        What ``BinanceClient`` sends through when this transport is the client's: an
        ``httpx.Request`` and ``httpx.Response`` cost more than the rest of a small exchange.
        ``origin`` is (``url.raw_scheme``, ``url.raw_host``, ``url.port or 0``); ``head`` is the
        request line, the headers (``Host`` included) and the blank line, as `RequestHeads`
        makes it for a `plain_target`. No timeouts: the caller bounds the whole exchange (a cancel
        scope). The body is read to its end; its ``Content-Encoding``, if any, is not
        undone. The caller asks `mocked` first: this never goes through a mock.
        """
        slots, conn = await self._open(origin, None, {})
        try:
            conn.start(is_head)
            await self._send_and_read(conn, head, None, None, None, None, None)
            while not conn.complete:  # a large, chunked or until-EOF body: read it all
                self._take(conn, await _receive(conn, None), None)
        except BaseException:
            conn.close()
            slots.release()
            raise
        parts = conn.body
        conn.body = []
        self._release(conn)
        return conn.status, conn.headers, _join(parts) if parts else b""

    async def _open(
        self,
        key: tuple[bytes, bytes, int],
        request: httpx.Request | None,
        timeouts: dict[str, float | None],
    ) -> tuple[trio.Semaphore, _Conn]:
        """A slot of the origin's pool and a connection (an idle one, or a new one)."""
        origin = self._origins.get(key)
        if origin is None:
            origin = self._new_origin(key)
        slots = origin.slots
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            await self._wait_slot(slots, timeouts.get("pool"), request)
        try:
            conn = self._take_idle(origin)
            if conn is None:
                conn = await self._connect(origin, request, timeouts.get("connect"))
        except BaseException:
            slots.release()
            raise
        return slots, conn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection and return the answer (maybe streaming)."""
        if self.mocked():
            return await self._mocked(request)

        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port or 0)
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        data, rest = self._encode(request)
        is_head = request.method == "HEAD"

        slots, conn = await self._open(key, request, timeouts)
        owned = True  # the connection and its slot are this method's to free on failure
        try:
            conn.start(is_head)
            read_timeout = timeouts.get("read")
            await self._exchange(conn, data, rest, timeouts.get("write"), read_timeout, request)
            status, headers, reason, version = conn.status, conn.headers, conn.reason, conn.version
            stream: httpx.AsyncByteStream
            if conn.complete:
                parts = conn.body
                conn.body = []
                owned = False
                self._release(conn)
                stream = httpx.ByteStream(_join(parts) if parts else b"")
            else:
                owned = False  # the stream owns it (and the slot) now
                stream = _Body(self, conn, read_timeout, request)
        except BaseException:
            if owned:
                conn.close()
                slots.release()
            raise
        return httpx.Response(
            status,
            headers=headers,
            stream=stream,
            extensions={
                "http_version": _HTTP11 if version == "1.1" else b"HTTP/" + version.encode(),
                "reason_phrase": reason,
            },
        )

    def _encode(self, request: httpx.Request) -> tuple[bytes, bytes | httpx.AsyncByteStream | None]:
        """The request head (plus an in-memory body) as one bytes object; what is left to send.

        What is left: a large in-memory body, or the request's stream (a streamed body).
        """
        method = _METHODS.get(request.method) or _encode_method(request.method)
        raw = request.headers.raw
        head = b"".join(
            [
                method,
                b" ",
                request.url.raw_path,
                b" HTTP/1.1\r\n",
                *[b"%s: %s\r\n" % pair for pair in raw],
                b"\r\n",
            ]
        )
        _check_head(head, len(raw) + 2, request)
        try:
            content = request.content
        except httpx.RequestNotRead:
            stream = request.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            return head, stream
        if not content:
            return head, None
        if len(content) <= _COALESCE_BODY:
            return head + content, None
        return head, content

    def _new_origin(self, key: tuple[bytes, bytes, int]) -> _Origin:
        scheme, host, port = key
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                "Request URL has an unsupported protocol (FastTransport speaks http and https)."
            )
        if not host:
            raise httpx.UnsupportedProtocol("Request URL is missing a host.")
        origin = _Origin(
            host.decode("ascii"),
            port or _DEFAULT_PORTS[scheme],
            scheme == b"https",
            self._max_connections,
        )
        self._origins[key] = origin
        return origin

    def _ssl_context(self) -> ssl.SSLContext:
        """httpx's context for ``verify`` (built once, on the first https connection)."""
        if self._ssl is None:
            ctx = httpx.create_ssl_context(verify=self._verify, trust_env=self._trust_env)
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    async def _wait_slot(
        self, slots: trio.Semaphore, seconds: float | None, request: httpx.Request | None
    ) -> None:
        with trio.move_on_after(_INF if seconds is None else seconds):
            await slots.acquire()
            return
        raise httpx.PoolTimeout("Timed out waiting for a connection from the pool", request=request)

    def _take_idle(self, origin: _Origin) -> _Conn | None:
        """A fresh idle connection, closing the expired ones and those the server closed."""
        idle = origin.idle
        if not idle:
            return None
        now = trio.current_time()
        while idle and idle[0].expires < now:  # oldest first: the stack is ordered by release
            idle.pop(0).close()
        while idle:
            conn = idle.pop()
            if conn.sock.is_readable():  # idle yet readable: EOF (or junk) from the server
                conn.close()
                continue
            return conn
        return None

    def _release(self, conn: _Conn) -> None:
        """A complete answer: pool the connection if it may be reused, else close it."""
        origin = conn.origin
        if conn.reusable() and not origin.closed and len(origin.idle) < self._max_idle:
            conn.expires = trio.current_time() + self._keepalive_expiry
            origin.idle.append(conn)
        else:
            conn.close()
        origin.slots.release()

    def _abandon(self, conn: _Conn) -> None:
        """An unfinished answer (error, cancellation, early close): close and free the slot."""
        conn.close()
        conn.origin.slots.release()

    async def _connect(
        self, origin: _Origin, request: httpx.Request | None, seconds: float | None
    ) -> _Conn:
        tcp: trio.SocketStream | None = None
        try:
            with trio.move_on_after(_INF if seconds is None else seconds):
                tcp = await trio.open_tcp_stream(origin.host, origin.port)
                stream: trio.abc.Stream = tcp
                if origin.tls:
                    asked = request.extensions.get("sni_hostname") if request else None
                    sni = asked or origin.host
                    stream = trio.SSLStream(
                        tcp,
                        self._ssl_context(),
                        server_hostname=sni,
                        https_compatible=True,
                    )
                    await stream.do_handshake()
                conn = _Conn(origin, stream, tcp.socket)
                origin.conns.add(conn)
                return conn
        except (OSError, trio.BrokenResourceError) as exc:
            if tcp is not None:
                tcp.socket.close()
            raise httpx.ConnectError(_message(exc), request=request) from exc
        except BaseException:
            if tcp is not None:
                tcp.socket.close()
            raise
        if tcp is not None:
            tcp.socket.close()
        raise httpx.ConnectTimeout("Timed out connecting", request=request)

    async def _exchange(
        self,
        conn: _Conn,
        data: bytes,
        rest: bytes | httpx.AsyncByteStream | None,
        write_timeout: float | None,
        read_timeout: float | None,
        request: httpx.Request,
    ) -> None:
        """Send the request, read the head (and a small body: one cancel scope for it all).

        A cancel scope costs ~6 µs to set up on trio, more than the rest of this method: so
        one scope's deadline is moved per phase (each write, each read, as httpcore's
        per-operation timeouts) instead of one ``move_on_after`` per operation, and none
        is made when no timeout is asked (a caller bounding the whole request itself).
        """
        if write_timeout is None and read_timeout is None:
            await self._send_and_read(conn, data, rest, None, None, None, request)
            return
        phase = ["write"]
        with trio.CancelScope(deadline=_deadline(write_timeout)) as scope:
            await self._send_and_read(
                conn, data, rest, scope, write_timeout, read_timeout, request, phase
            )
            return
        if phase[0] == "read":
            raise httpx.ReadTimeout("Timed out reading the answer", request=request)
        raise httpx.WriteTimeout("Timed out writing the request", request=request)

    async def _send_and_read(
        self,
        conn: _Conn,
        data: bytes,
        rest: bytes | httpx.AsyncByteStream | None,
        scope: trio.CancelScope | None,
        write_timeout: float | None,
        read_timeout: float | None,
        request: httpx.Request | None,
        phase: list[str] | None = None,
    ) -> None:
        try:
            await _send_all(conn, data, request)
            if isinstance(rest, bytes):
                await _send_all(conn, rest, request)
            elif rest is not None:
                assert request is not None  # a streamed body comes with its request
                await _send_stream(conn, rest, scope, write_timeout, request)
        except httpx.WriteError:
            # As httpcore does: the server may have answered early (say a 413) and
            # closed its reading side; read that answer. Nothing is resent.
            pass
        if phase is not None:
            phase[0] = "read"
        while not conn.head_done:
            if scope is not None:
                scope.deadline = _deadline(read_timeout)
            chunk = await _receive(conn, request)
            if not chunk:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            self._feed(conn, chunk, request)
        if not conn.complete and _small_body(conn.headers):
            # a small answer is read whole here: no per-chunk streaming machinery
            while not conn.complete:
                if scope is not None:
                    scope.deadline = _deadline(read_timeout)
                chunk = await _receive(conn, request, now=True)
                if not chunk:
                    raise httpx.RemoteProtocolError(_CUT_SHORT, request=request)
                self._feed(conn, chunk, request)

    def _take(self, conn: _Conn, data: bytes | bytearray, request: httpx.Request | None) -> None:
        """Body bytes read: fed to the parser. None at all: the connection ended, which ends a
        body delimited by it (and spoils the connection) and is an error otherwise."""
        if data:
            self._feed(conn, data, request)
        elif conn.until_eof():
            conn.complete = True
            conn.dirty = True  # the connection ended with the body: not reusable
        else:
            raise httpx.RemoteProtocolError(_CUT_SHORT, request=request)

    def _feed(self, conn: _Conn, data: bytes | bytearray, request: httpx.Request | None) -> None:
        try:
            conn.parser.feed_data(data)
        except self._parse_errors as exc:
            if conn.complete:  # junk after a whole answer: keep the answer, drop the connection
                conn.dirty = True
                return
            if conn.parser.get_status_code() == 101:
                raise httpx.RemoteProtocolError(
                    "FastTransport does not support protocol upgrades (101)", request=request
                ) from exc
            raise httpx.RemoteProtocolError(
                f"Malformed HTTP answer: {_message(exc)}", request=request
            ) from exc

    async def _mocked(self, request: httpx.Request) -> httpx.Response:
        """respx/pytest-httpx is patching httpcore/httpx: go through them (never the network)."""
        if self._delegate is None:
            self._delegate = httpx.AsyncHTTPTransport(
                verify=self._verify, trust_env=self._trust_env
            )
        return await self._delegate.handle_async_request(request)


def _patched(cls: type) -> bool:
    """Whether ``cls.handle_async_request`` is a mock's (respx, pytest-httpx), not the library's.

    Only asked when the method is not the one seen at construction: an identity test per
    request, this look at the function's module only while something is patched.
    """
    module = getattr(cls.__dict__.get("handle_async_request"), "__module__", None) or ""
    return not module.startswith(("httpcore.", "httpx."))


def _mock_targets() -> tuple[type, ...]:
    """What mocks patch: httpx's transport (pytest-httpx) and, once imported, httpcore's pool
    (respx; it imports httpcore, so an httpcore not imported yet is not patched)."""
    httpcore = sys.modules.get("httpcore")
    if httpcore is None:
        return (httpx.AsyncHTTPTransport,)
    return (httpx.AsyncHTTPTransport, httpcore.AsyncConnectionPool)


def _mockable(*classes: type) -> tuple[tuple[type, object], ...]:
    """Each class with its own ``handle_async_request`` (``None`` if a mock's is there now)."""
    return tuple(
        (cls, None if _patched(cls) else cls.__dict__.get("handle_async_request"))
        for cls in classes
    )


def _message(exc: BaseException) -> str:
    """An error's text (its cause's when it has none: trio wraps the ssl/OS error)."""
    return str(exc) or str(exc.__cause__ or "") or type(exc).__name__


def _deadline(seconds: float | None) -> float:
    return _INF if seconds is None else trio.current_time() + seconds


def _small_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the answer says its body fits one read (then it is read before returning)."""
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            return value.isdigit() and int(value) <= READ_SIZE
    return False


async def _send_all(conn: _Conn, data: bytes, request: httpx.Request | None) -> None:
    raw = conn.raw
    try:
        if raw is not None:  # a request fits the socket's buffer: one send, no wait
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        await conn.stream.send_all(data)
    except _READ_ERRORS as exc:
        raise httpx.WriteError(_message(exc), request=request) from exc


async def _receive(
    conn: _Conn, request: httpx.Request | None, *, now: bool = False
) -> bytes | bytearray:
    """The next bytes of the answer. ``now``: they may be there already (the rest of an
    answer whose head came alone: servers often write the two apart), so try reading
    before waiting, which spares a trip through the scheduler when they are."""
    raw = conn.raw
    try:
        if raw is None:
            return await conn.stream.receive_some(READ_SIZE)
        if now:
            try:
                data = raw.recv(READ_SIZE)
            except BlockingIOError:
                pass
            else:
                await trio.lowlevel.checkpoint_if_cancelled()
                return data
        while True:  # the answer is not there yet when asked: wait first, then read
            if raw.fileno() < 0:  # closed under us (the transport's aclose)
                raise trio.ClosedResourceError("the connection was closed")
            await trio.lowlevel.wait_readable(raw)
            try:
                return raw.recv(READ_SIZE)
            except BlockingIOError:  # woken without data: wait again
                continue
    except _READ_ERRORS as exc:
        raise httpx.ReadError(_message(exc), request=request) from exc


async def _receive_within(
    conn: _Conn, seconds: float | None, request: httpx.Request
) -> bytes | bytearray:
    if seconds is None:
        return await _receive(conn, request)
    with trio.move_on_after(seconds):
        return await _receive(conn, request)
    raise httpx.ReadTimeout("Timed out reading the answer", request=request)


async def _send_stream(
    conn: _Conn,
    stream: httpx.AsyncByteStream,
    scope: trio.CancelScope | None,
    seconds: float | None,
    request: httpx.Request,
) -> None:
    """A streamed request body, in chunked framing when the head says so (httpx sets it)."""
    chunked = any(
        n.lower() == b"transfer-encoding" and v.lower() == b"chunked"
        for n, v in request.headers.raw
    )
    chunks = stream.__aiter__()
    try:
        async for chunk in chunks:
            if chunk:
                if scope is not None:
                    scope.deadline = _deadline(seconds)
                await _send_all(
                    conn, b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk, request
                )
        if chunked:
            if scope is not None:
                scope.deadline = _deadline(seconds)
            await _send_all(conn, b"0\r\n\r\n", request)
    finally:
        # an async generator left unfinished (the send failed or was cancelled) is closed
        # now, not by the garbage collector: its own cleanup must not wait for that
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with trio.move_on_after(1.0, shield=True):
                await aclose()


class _Body(httpx.AsyncByteStream):
    """A body read as it is iterated; owns its connection and slot until the end or aclose."""

    __slots__ = ("_conn", "_request", "_timeout", "_transport")

    def __init__(
        self, transport: FastTransport, conn: _Conn, seconds: float | None, request: httpx.Request
    ) -> None:
        self._transport = transport
        self._conn: _Conn | None = conn
        self._timeout = seconds
        self._request = request

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        try:
            while True:
                parts = conn.body
                if conn.complete:
                    conn.body = []
                    self._conn = None
                    self._transport._release(conn)
                    if parts:
                        return _join(parts)
                    raise StopAsyncIteration
                if parts:
                    conn.body = []
                    return _join(parts)
                data = await _receive_within(conn, self._timeout, self._request)
                self._transport._take(conn, data, self._request)
        except BaseException:
            if self._conn is not None:
                self._conn = None
                self._transport._abandon(conn)
            raise

    async def aclose(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            if conn.complete:
                conn.body = []
                self._transport._release(conn)
            else:
                self._transport._abandon(conn)
