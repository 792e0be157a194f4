"""FastTransport and httpx's own transport, held to the same assertions.

Every test runs twice, once per transport, through ``httpx.AsyncClient(transport=...)``
against a scripted raw-TCP server started here, on a free 127.0.0.1 port, in the test's
nursery: it answers with exact bytes, so framing (content-length, chunked, until EOF), interim
answers, bodiless answers, keep-alive decisions, broken and slow servers are all reproducible.
The server counts the connections it accepted and those whose client went away, which is how
reuse, expiry and "nothing leaked" are proved. Timed tests run on ``autojump_clock`` (the
server lives in the same trio run, so virtual time only jumps when everything waits); the
keep-alive expiry test waits ~0.1 s of real time, because httpcore's expiry follows
``time.monotonic``.

Where httpcore's behaviour legitimately differs, the test says why (see ``_pool_state``).
"""

from __future__ import annotations

import gzip
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from functools import partial
from typing import Any

import attrs
import httpx
import pytest
import trio
import trustme

from aiocea_trio.transport import FastTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


# --------------------------------------------------------------------------- the server


class Peer:
    """The server's side of one connection: read whole requests, write exact bytes."""

    def __init__(self, stream: trio.abc.Stream, server: Server) -> None:
        self.stream = stream
        self.server = server
        self.buf = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        self.buf += data
        return bool(data)

    async def request(self) -> tuple[bytes, bytes] | None:
        """The next request's head and (de-chunked) body, ``None`` when the client left."""
        while b"\r\n\r\n" not in self.buf:
            if not await self._fill():
                return None
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        lower = head.lower()
        body = b""
        if b"transfer-encoding: chunked" in lower:
            while True:
                while b"\r\n" not in self.buf:
                    if not await self._fill():
                        return None
                line_end = self.buf.index(b"\r\n")
                size = int(bytes(self.buf[:line_end]), 16)
                while len(self.buf) < line_end + 2 + size + 2:
                    if not await self._fill():
                        return None
                body += bytes(self.buf[line_end + 2 : line_end + 2 + size])
                del self.buf[: line_end + 2 + size + 2]
                if size == 0:
                    break
        elif b"content-length:" in lower:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            while len(self.buf) < length:
                if not await self._fill():
                    return None
            body = bytes(self.buf[:length])
            del self.buf[:length]
        self.server.requests.append((head, body))
        return head, body

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def wait_closed(self) -> None:
        """Read until the client closes (whatever it sends meanwhile is dropped)."""
        while await self._fill():
            self.buf.clear()


Handler = Callable[[Peer], Awaitable[None]]


@attrs.define(eq=False)
class Server:
    handler: Handler
    url: str = ""
    accepted: int = 0
    gone: int = 0  # connections that ended (the client closed or the handler returned)
    requests: list[tuple[bytes, bytes]] = attrs.field(factory=list)

    async def _serve(self, stream: trio.abc.Stream) -> None:
        self.accepted += 1
        peer = Peer(stream, self)
        try:
            await self.handler(peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.gone += 1

    async def wait_gone(self, n: int) -> None:
        """Until ``n`` connections have ended (fails after a second)."""
        with trio.fail_after(1):
            while self.gone < n:
                await trio.sleep(0.001)


def answering(*answers: bytes | Callable[[bytes], bytes]) -> Handler:
    """Answer each request on a connection with the next answer (the last one repeats)."""

    async def handler(peer: Peer) -> None:
        n = 0
        while (req := await peer.request()) is not None:
            answer = answers[min(n, len(answers) - 1)]
            await peer.send(answer(req[0]) if callable(answer) else answer)
            n += 1

    return handler


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def serve(nursery: trio.Nursery, ca: trustme.CA) -> Callable[..., Awaitable[Server]]:
    async def start(handler: Handler, *, tls: bool = False) -> Server:
        server = Server(handler)
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
            serve_fn: Any = partial(
                trio.serve_ssl_over_tcp,
                server._serve,
                0,
                ctx,
                host="127.0.0.1",
                https_compatible=True,
            )
        else:
            serve_fn = partial(trio.serve_tcp, server._serve, 0, host="127.0.0.1")
        listeners = await nursery.start(serve_fn)
        sock = listeners[0].socket if not tls else listeners[0].transport_listener.socket
        port = sock.getsockname()[1]
        server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return server

    return start


# --------------------------------------------------------------------------- the transports


@pytest.fixture(params=["fast", "httpcore"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_transport(kind: str) -> Callable[..., httpx.AsyncBaseTransport]:
    def make(
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 10,
        keepalive_expiry: float = 5.0,
    ) -> httpx.AsyncBaseTransport:
        if kind == "fast":
            return FastTransport(
                verify=verify, max_connections=max_connections, keepalive_expiry=keepalive_expiry
            )
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        return httpx.AsyncHTTPTransport(verify=verify, limits=limits)

    return make


@pytest.fixture
async def client(
    make_transport: Callable[..., httpx.AsyncBaseTransport],
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=make_transport(), timeout=5.0) as c:
        yield c


#: httpcore stops iterating the request body when a send fails or is cancelled, and leaves
#: httpx's ``ByteStream.__aiter__`` generator to the garbage collector, which warns.
#: FastTransport never iterates an in-memory body, and closes a streamed one's iterator.
httpcore_leaks_the_body_iterator = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object ByteStream.__aiter__"
    ":pytest.PytestUnraisableExceptionWarning"
)


def _pool_state(transport: httpx.AsyncBaseTransport) -> tuple[int, int]:
    """(open connections, of which idle), asked of either transport.

    httpcore keeps a connection that failed or was cancelled in its list until the next
    request prunes it, but closed: so only connections not closed are counted.
    """
    if isinstance(transport, FastTransport):
        s = transport.statistics()
        assert s.active == 0, s
        return s.connections, s.idle
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    conns = [c for c in transport._pool.connections if not c.is_closed()]
    return len(conns), sum(1 for c in conns if c.is_idle())


def _transport(client: httpx.AsyncClient) -> httpx.AsyncBaseTransport:
    return client._transport


# --------------------------------------------------------------------------- reuse, framing


async def test_keep_alive_reuses_one_connection(serve: Any, client: httpx.AsyncClient) -> None:
    server = await serve(answering(OK))
    for _ in range(3):
        r = await client.get(server.url + "/a?b=c")
        assert (r.status_code, r.content, r.http_version) == (200, b"ok", "HTTP/1.1")
        assert r.reason_phrase == "OK"
        assert r.headers["content-type"] == "text/plain"
    assert server.accepted == 1
    assert server.requests[0][0].startswith(b"GET /a?b=c HTTP/1.1\r\n")
    assert _pool_state(_transport(client)) == (1, 1)


async def test_concurrent_requests_share_a_bounded_pool(
    serve: Any, make_transport: Callable[..., httpx.AsyncBaseTransport]
) -> None:
    server = await serve(answering(OK))
    async with httpx.AsyncClient(transport=make_transport(max_connections=4)) as client:
        for _ in range(2):
            async with trio.open_nursery() as nursery:
                for _ in range(12):
                    nursery.start_soon(client.get, server.url)
        assert 1 <= server.accepted <= 4
        assert len(server.requests) == 24
        assert _pool_state(client._transport) == (server.accepted, server.accepted)


async def test_chunked_body(serve: Any, client: httpx.AsyncClient) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server = await serve(answering(answer))
    for _ in range(2):
        r = await client.get(server.url)
        assert r.content == b"hello world"
    assert server.accepted == 1


async def test_body_until_eof_is_not_reused(serve: Any, client: httpx.AsyncClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\nuntil ")
        await peer.send(b"the end")

    server = await serve(handler)
    for _ in range(2):
        r = await client.get(server.url)
        assert r.content == b"until the end"
    assert server.accepted == 2


async def test_gzip_is_decoded_by_httpx(serve: Any, client: httpx.AsyncClient) -> None:
    payload = b'{"price": "1.0"}' * 100
    packed = gzip.compress(payload)
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
        + packed
    )
    server = await serve(answering(answer))
    r = await client.get(server.url)
    assert r.content == payload
    assert r.num_bytes_downloaded == len(packed)
    assert b"accept-encoding: gzip" in server.requests[0][0].lower()


async def test_interim_answers_are_skipped(serve: Any, client: httpx.AsyncClient) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + OK
    )
    server = await serve(answering(answer))
    for _ in range(2):
        r = await client.get(server.url)
        assert (r.status_code, r.content) == (200, b"ok")
        assert "link" not in r.headers
    assert server.accepted == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: x\r\n\r\n",
    ],
)
async def test_bodiless_status(serve: Any, client: httpx.AsyncClient, answer: bytes) -> None:
    server = await serve(answering(answer, OK))
    r = await client.get(server.url)
    assert r.content == b""
    r = await client.get(server.url)
    assert r.content == b"ok"  # the next answer is read from the start, on the same connection
    assert server.accepted == 1


async def test_head_has_no_body(serve: Any, client: httpx.AsyncClient) -> None:
    server = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", OK))
    r = await client.head(server.url)
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "10")
    r = await client.get(server.url)
    assert r.content == b"ok"
    assert server.accepted == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    ],
)
async def test_close_and_http10_answers_are_not_reused(
    serve: Any, client: httpx.AsyncClient, answer: bytes
) -> None:
    async def handler(peer: Peer) -> None:  # a server that would keep the connection open
        while await peer.request() is not None:
            await peer.send(answer)

    server = await serve(handler)
    for _ in range(2):
        r = await client.get(server.url)
        assert r.content == b"ok"
    assert server.accepted == 2
    await server.wait_gone(2)
    assert _pool_state(_transport(client)) == (0, 0)


async def test_request_bodies_are_sent(serve: Any, client: httpx.AsyncClient) -> None:
    server = await serve(answering(OK))
    await client.post(server.url + "/form", data={"symbol": "BTCUSDT", "side": "BUY"})
    await client.post(server.url + "/big", content=b"x" * 200_000)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"streamed "
        yield b""
        yield b"body"

    await client.post(server.url + "/stream", content=chunks())
    (h1, b1), (_, b2), (h3, b3) = server.requests
    assert b"content-length: 23\r\n" in h1.lower()
    assert b1 == b"symbol=BTCUSDT&side=BUY"
    assert len(b2) == 200_000
    assert b"transfer-encoding: chunked" in h3.lower()
    assert b3 == b"streamed body"
    assert server.accepted == 1


# --------------------------------------------------------------------------- streaming


async def test_streaming_is_incremental_and_bounded(serve: Any, client: httpx.AsyncClient) -> None:
    first_seen = trio.Event()
    big = b"y" * 1_000_000

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await first_seen.wait()
            await peer.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))

    server = await serve(handler)
    with trio.fail_after(2):  # a transport reading the whole body first would deadlock
        async with client.stream("GET", server.url) as r:
            chunks = r.aiter_raw()
            assert await chunks.__anext__() == b"first"
            first_seen.set()
            sizes = [len(c) async for c in chunks]
    assert sum(sizes) == len(big)
    assert max(sizes) <= 65_536
    # read to the end: back in the pool
    assert (await client.get(server.url + "/again")).status_code == 200
    assert server.accepted == 1


async def test_stream_closed_early_drops_the_connection(
    serve: Any, client: httpx.AsyncClient
) -> None:
    body = b"z" * 300_000
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    server = await serve(answering(answer))
    async with client.stream("GET", server.url) as r:  # closed before its body was read
        assert r.status_code == 200
    await server.wait_gone(1)
    assert _pool_state(_transport(client)) == (0, 0)
    r = await client.get(server.url)
    assert len(r.content) == len(body)
    assert server.accepted == 2


async def test_aclose_closes_pooled_connections(
    serve: Any, make_transport: Callable[..., httpx.AsyncBaseTransport]
) -> None:
    server = await serve(answering(OK))
    async with httpx.AsyncClient(transport=make_transport()) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(client.get, server.url)
        assert server.accepted >= 1
    await server.wait_gone(server.accepted)


# --------------------------------------------------------------------------- idle connections


async def test_idle_connections_expire(
    serve: Any, make_transport: Callable[..., httpx.AsyncBaseTransport]
) -> None:
    server = await serve(answering(OK))
    transport = make_transport(keepalive_expiry=0.05)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(server.url)
        await client.get(server.url)
        assert server.accepted == 1
        await trio.sleep(0.1)
        await client.get(server.url)
        assert server.accepted == 2
        await server.wait_gone(1)  # the expired one was closed


async def test_server_closing_an_idle_connection_is_noticed(
    serve: Any, client: httpx.AsyncClient
) -> None:
    async def handler(peer: Peer) -> None:  # one answer per connection, then close
        await peer.request()
        await peer.send(OK)

    server = await serve(handler)
    await client.get(server.url)
    await server.wait_gone(1)
    await trio.sleep(0.01)  # let the FIN reach the client's socket
    r = await client.get(server.url)  # not an error: the dead connection is not used
    assert r.content == b"ok"
    assert server.accepted == 2
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- broken servers


async def test_death_after_the_request_is_raised_never_resent(
    serve: Any, client: httpx.AsyncClient
) -> None:
    async def handler(peer: Peer) -> None:  # answers the first request, then dies reading one
        await peer.request()
        await peer.send(OK)
        await peer.request()

    server = await serve(handler)
    await client.get(server.url)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(server.url + "/order", content=b"side=BUY")
    await trio.sleep(0.01)
    assert server.accepted == 1  # no second connection: the order was not sent again
    assert len(server.requests) == 2
    assert _pool_state(_transport(client)) == (0, 0)


async def test_reset_before_the_answer_is_raised(serve: Any, client: httpx.AsyncClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        assert isinstance(peer.stream, trio.SocketStream)
        # SO_LINGER on, 0 s: closing sends a RST instead of a FIN
        peer.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = await serve(handler)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await client.get(server.url)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_malformed_answers(serve: Any, client: httpx.AsyncClient, answer: bytes) -> None:
    server = await serve(answering(answer))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(server.url)
    await server.wait_gone(1)


@pytest.mark.parametrize(
    "partial_answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
)
async def test_server_dying_mid_answer(
    serve: Any, client: httpx.AsyncClient, partial_answer: bytes
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(partial_answer)

    server = await serve(handler)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(server.url)
    assert _pool_state(_transport(client)) == (0, 0)
    with pytest.raises(httpx.RemoteProtocolError):  # again, on a fresh connection
        await client.get(server.url)
    assert server.accepted == 2


@pytest.mark.parametrize("length", [10, 200_000])
async def test_server_dying_mid_stream(serve: Any, client: httpx.AsyncClient, length: int) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
        await peer.send(b"h" * (length // 2))

    server = await serve(handler)
    # FastTransport reads a body of at most 64 KiB before returning the response, so the
    # error comes from client.stream() itself; httpcore raises it from aread().
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("GET", server.url) as r:
            await r.aread()
    assert _pool_state(_transport(client)) == (0, 0)


# --------------------------------------------------------------------------- timeouts


async def test_read_timeout(serve: Any, client: httpx.AsyncClient, autojump_clock: Any) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.wait_closed()

    server = await serve(handler)
    began = trio.current_time()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(server.url, timeout=httpx.Timeout(5.0, read=2.0))
    assert trio.current_time() - began == pytest.approx(2.0)
    await server.wait_gone(1)


async def test_read_timeout_mid_body(
    serve: Any, client: httpx.AsyncClient, autojump_clock: Any
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await peer.wait_closed()

    server = await serve(handler)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(server.url, timeout=2.0)
    await server.wait_gone(1)


@httpcore_leaks_the_body_iterator
async def test_write_timeout(serve: Any, client: httpx.AsyncClient, autojump_clock: Any) -> None:
    async def handler(peer: Peer) -> None:  # never reads: the client's send blocks
        await trio.sleep_forever()

    server = await serve(handler)
    with pytest.raises(httpx.WriteTimeout):
        await client.post(
            server.url, content=b"w" * 64_000_000, timeout=httpx.Timeout(5.0, write=1.0)
        )
    assert _pool_state(_transport(client)) == (0, 0)


async def test_pool_timeout(
    serve: Any, make_transport: Callable[..., httpx.AsyncBaseTransport], autojump_clock: Any
) -> None:
    server = await serve(_routes())
    async with httpx.AsyncClient(transport=make_transport(max_connections=1)) as client:
        async with client.stream("GET", server.url + "/drip"):  # holds the one connection
            with pytest.raises(httpx.PoolTimeout):
                await client.get(server.url + "/ok", timeout=httpx.Timeout(5.0, pool=1.0))
        assert (await client.get(server.url + "/ok")).content == b"ok"
    assert server.accepted == 2


async def test_connect_timeout_on_a_stalled_tls_handshake(
    serve: Any,
    make_transport: Callable[..., httpx.AsyncBaseTransport],
    autojump_clock: Any,
) -> None:
    async def handler(peer: Peer) -> None:  # takes the ClientHello and says nothing
        await peer.wait_closed()

    server = await serve(handler)
    url = server.url.replace("http://", "https://")
    async with httpx.AsyncClient(transport=make_transport()) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(url, timeout=httpx.Timeout(5.0, connect=1.0))
    await server.wait_gone(1)


async def test_connect_error(client: httpx.AsyncClient) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


# --------------------------------------------------------------------------- TLS


async def test_tls_with_verification(
    serve: Any, ca: trustme.CA, make_transport: Callable[..., httpx.AsyncBaseTransport]
) -> None:
    server = await serve(answering(OK), tls=True)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with httpx.AsyncClient(transport=make_transport(verify=ctx)) as client:
        for _ in range(3):
            r = await client.get(server.url)
            assert r.content == b"ok"
    assert server.accepted == 1
    await server.wait_gone(1)


async def test_tls_refuses_an_unknown_ca(
    serve: Any, make_transport: Callable[..., httpx.AsyncBaseTransport]
) -> None:
    server = await serve(answering(OK), tls=True)
    async with httpx.AsyncClient(transport=make_transport()) as client:  # certifi's CAs
        with pytest.raises(httpx.ConnectError):
            await client.get(server.url)
    assert server.requests == []


async def test_tls_checks_the_host_name(
    serve: Any, ca: trustme.CA, make_transport: Callable[..., httpx.AsyncBaseTransport]
) -> None:
    server = await serve(answering(OK), tls=True)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with httpx.AsyncClient(transport=make_transport(verify=ctx)) as client:
        # the certificate names 127.0.0.1 and localhost, not this SNI name
        with pytest.raises(httpx.ConnectError):
            await client.get(server.url, extensions={"sni_hostname": "example.com"})


# --------------------------------------------------------------------------- cancellation


def _routes() -> Handler:
    """``/ok`` answers; ``/stall`` never answers; ``/half*`` stop mid-body; ``/drip`` streams."""

    async def handler(peer: Peer) -> None:
        while (req := await peer.request()) is not None:
            target = req[0].split(b" ")[1]
            if target == b"/stall":
                await peer.wait_closed()
                return
            if target == b"/half":
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
                await peer.wait_closed()
                return
            if target == b"/half-big":  # past FastTransport's read-before-returning size
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n")
                await peer.send(b"b" * 100_000)
                await peer.wait_closed()
                return
            if target == b"/drip":
                await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                await peer.send(b"4\r\ndrip\r\n")
                await peer.wait_closed()
                return
            await peer.send(OK)

    return handler


async def _after_cancel(server: Server, client: httpx.AsyncClient, gone: int) -> None:
    """The cancelled connection is closed, nothing is pooled half-read, the next one works."""
    await server.wait_gone(gone)
    assert _pool_state(_transport(client)) == (0, 0)
    accepted = server.accepted
    r = await client.get(server.url + "/ok")
    assert r.content == b"ok"
    assert server.accepted == accepted + 1


@pytest.mark.parametrize("path", ["/stall", "/half", "/half-big"])
async def test_cancel_while_waiting_for_the_answer(
    serve: Any, client: httpx.AsyncClient, path: str, autojump_clock: Any
) -> None:
    server = await serve(_routes())
    await client.get(server.url + "/ok")  # so the cancelled request reuses a pooled connection
    with trio.move_on_after(1) as scope:
        await client.get(server.url + path)
    assert scope.cancelled_caught
    await _after_cancel(server, client, gone=1)


async def test_cancel_mid_stream(
    serve: Any, client: httpx.AsyncClient, autojump_clock: Any
) -> None:
    server = await serve(_routes())
    with trio.move_on_after(1) as scope:
        async with (
            client.stream("GET", server.url + "/drip") as r,
            aclosing(r.aiter_raw()) as chunks,
        ):
            assert await chunks.__anext__() == b"drip"
            await chunks.__anext__()
    assert scope.cancelled_caught
    await _after_cancel(server, client, gone=1)


@httpcore_leaks_the_body_iterator
async def test_cancel_while_sending(
    serve: Any, client: httpx.AsyncClient, autojump_clock: Any
) -> None:
    async def handler(peer: Peer) -> None:
        if peer.server.accepted == 1:  # the first connection never reads
            await trio.sleep(3)
            await peer.wait_closed()
            return
        await _routes()(peer)

    server = await serve(handler)
    with trio.move_on_after(1) as scope:
        await client.post(server.url + "/ok", content=b"s" * 64_000_000)
    assert scope.cancelled_caught
    await trio.sleep(3)
    await _after_cancel(server, client, gone=1)


@pytest.fixture
def no_httpcore_mid_handshake(kind: str) -> None:
    if kind == "httpcore":
        pytest.skip(
            "httpcore 1.0.9 leaks the TCP socket when cancelled mid-handshake "
            "(TrioStream.start_tls closes it on Exception only, not on Cancelled)"
        )


async def test_cancel_while_connecting(
    serve: Any,
    make_transport: Callable[..., httpx.AsyncBaseTransport],
    ca: trustme.CA,
    autojump_clock: Any,
    no_httpcore_mid_handshake: None,
) -> None:

    async def stalled(peer: Peer) -> None:
        await peer.wait_closed()

    server = await serve(stalled)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with httpx.AsyncClient(transport=make_transport(verify=ctx)) as client:
        with trio.move_on_after(1) as scope:
            await client.get(server.url.replace("http://", "https://"))
        assert scope.cancelled_caught
        await server.wait_gone(1)
        assert _pool_state(client._transport) == (0, 0)
        tls_server = await serve(answering(OK), tls=True)
        assert (await client.get(tls_server.url)).content == b"ok"
