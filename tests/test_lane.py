"""The client's way out (`_layers/lane.py`): the same request and the same answer by every path.

`BinanceClient` sends through `FastTransport.fetch` when that is its transport (no httpx
Request/Response), through an ``httpx.Request`` handed to any other transport, and through
``AsyncClient.request`` when event hooks or odd characters ask for it. A scripted raw-TCP
server started here, on a free 127.0.0.1 port, records the exact bytes each path sends and
answers exact bytes, so "the same on every path" is checked byte for byte.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from aiocea_trio import BinanceClient, BinanceTimeoutError, BinanceTransportError, RateLimiter
from aiocea_trio._layers.lane import Answer, RawHeaders
from aiocea_trio.transport import FastTransport, RequestHeads, plain_target


def _json(body: object, *extra: bytes) -> bytes:
    data = json.dumps(body).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-MBX-USED-WEIGHT-1M: 7\r\n"
    return head + b"".join(extra) + b"Content-Length: %d\r\n\r\n" % len(data) + data


class Scripted:
    """Answers each request with the next of ``answers`` (the last one repeats); records the
    request heads and counts connections. An answer ``None`` closes the connection unanswered;
    ``b""`` never answers."""

    def __init__(self, *answers: bytes | None) -> None:
        self.answers = list(answers)
        self.heads: list[bytes] = []
        self.accepted = 0
        self.url = ""

    def _next(self) -> bytes | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def handle(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                answer = self._next()
                if answer is None:
                    return
                if not answer:
                    await trio.sleep_forever()
                await stream.send_all(answer)
                if b"\r\nConnection: close\r\n" in answer.split(b"\r\n\r\n", 1)[0] + b"\r\n":
                    return  # the body ends with the connection
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()


@pytest.fixture
def serve(nursery: trio.Nursery) -> Callable[..., Awaitable[Scripted]]:
    async def serve(*answers: bytes | None) -> Scripted:
        server = Scripted(*answers)
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        server.url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        return server

    return serve


class CountingFast(FastTransport):
    """FastTransport counting the requests sent by `fetch` (the client's own path)."""

    fetched = 0

    async def fetch(
        self, origin: tuple[bytes, bytes, int], head: bytes, *, is_head: bool = False
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self.fetched += 1
        return await super().fetch(origin, head, is_head=is_head)


def _client(url: str, transport: httpx.AsyncBaseTransport, **kw: Any) -> BinanceClient:
    return BinanceClient(
        base_url=url,
        transport=transport,
        limiter=RateLimiter(weight_limits={"spot": 6000}, learn_limits=False),
        auto_sync_time=False,
        retries=0,
        **kw,
    )


@pytest.fixture(params=["fetch", "request", "hooks"])
def path(request: pytest.FixtureRequest) -> str:
    """The three ways out: FastTransport.fetch, an httpx.Request on httpx's transport, and
    AsyncClient.request (event hooks on the http_client)."""
    return str(request.param)


@pytest.fixture
def open_client(path: str) -> Callable[..., Any]:
    def open_client(url: str, **kw: Any) -> Any:
        transport: httpx.AsyncBaseTransport = (
            CountingFast() if path == "fetch" else httpx.AsyncHTTPTransport()
        )
        client = _client(url, transport, **kw)

        class Opened:
            async def __aenter__(self) -> BinanceClient:
                await client.__aenter__()
                if path == "hooks":
                    client.http_client.event_hooks["request"].append(_no_hook)
                return client

            async def __aexit__(self, *exc: object) -> None:
                await client.__aexit__(None, None, None)
                if path == "fetch":
                    assert isinstance(transport, CountingFast)
                    assert transport.fetched > 0

        return Opened()

    return open_client


async def _no_hook(request: httpx.Request) -> None:
    pass


async def _heads(serve: Any, path: str, call: Callable[[BinanceClient], Awaitable[Any]]) -> bytes:
    server = await serve(_json({"ok": 1}))
    transport: httpx.AsyncBaseTransport = (
        FastTransport() if path == "fetch" else httpx.AsyncHTTPTransport()
    )
    async with _client(server.url, transport, api_key="k3y") as client:
        if path == "hooks":
            client.http_client.event_hooks["request"].append(_no_hook)
        await call(client)
    host = server.url.removeprefix("http://").encode()
    return b"\r\n".join(server.heads).replace(host, b"HOST")


# -------------------------------------------------------------------- the same request


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.request("GET", "/api/v3/time"),
        lambda c: c.request("GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"}),
        lambda c: c.request("GET", "/api/v3/ticker/price", {"symbols": ["BTCUSDT", "ETH/x y"]}),
        lambda c: c.request("DELETE", "/api/v3/userDataStream", {"listenKey": "a+b=c"}),
        # a full URL whose query holds characters httpx percent-encodes (a space, a pipe)
        lambda c: c.request("GET", c.base_url_for("spot") + "/api/v3/depth?x=a b|c", {"limit": 5}),
    ],
    ids=["no-query", "query", "encoded", "delete", "full-url"],
)
async def test_every_path_sends_the_same_bytes(serve: Any, call: Any) -> None:
    sent = {path: await _heads(serve, path, call) for path in ("fetch", "request", "hooks")}
    assert sent["fetch"] == sent["request"] == sent["hooks"]
    assert b"X-MBX-APIKEY: k3y" in sent["fetch"]
    _method, target, version = sent["fetch"].split(b"\r\n")[0].split(b" ")  # target encoded
    assert version == b"HTTP/1.1"
    assert target.startswith(b"/api/v3/")


async def test_a_target_httpx_would_encode_is_left_to_httpx(serve: Any) -> None:
    server = await serve(_json({}))
    async with _client(server.url, CountingFast()) as client:
        await client.request("GET", server.url + "/api/v3/depth?x=a b|c")
        assert isinstance(client.http_client._transport, CountingFast)
        assert client.http_client._transport.fetched == 0
    assert server.heads[0].startswith(b"GET /api/v3/depth?x=a%20b|c HTTP/1.1\r\n")


def test_plain_targets() -> None:
    assert plain_target("/api/v3/klines?symbol=BTCUSDT&limit=1000&x=%2F~-._")
    for odd in ("/a b", "/a#b", "/a\r\nX: 1", "/a\x00", '/a"b', "/a|b", "/é", "/a<b>", "/a{b}"):
        assert not plain_target(odd), odd


def test_request_heads_refuse_header_injection() -> None:
    url = httpx.URL("http://127.0.0.1:1")
    with pytest.raises(httpx.LocalProtocolError):
        RequestHeads(url, httpx.Headers({"Host": "127.0.0.1:1", "X-A": "1\r\nX-Injected: 2"}))
    with pytest.raises(httpx.LocalProtocolError):
        RequestHeads(url, httpx.Headers({"Host": "h"})).head("GE T", "/")


# -------------------------------------------------------------------- the same answer


async def test_answers_and_weight_headers(serve: Any, open_client: Any) -> None:
    server = await serve(_json({"serverTime": 1}), _json([1, 2]))
    async with open_client(server.url) as client:
        assert await client.request("GET", "/api/v3/time") == {"serverTime": 1}
        assert await client.request("GET", "/api/v3/time") == [1, 2]
        assert await client.request("GET", "/api/v3/time") == [1, 2]
        assert client.statistics().used_weight("spot") == 7  # from X-MBX-USED-WEIGHT-1M
    assert server.accepted == 1  # one connection kept alive for all three


async def test_gzip_answers_are_decoded(serve: Any, open_client: Any) -> None:
    data = gzip.compress(json.dumps({"rows": list(range(1000))}).encode())
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(data) + data
    )
    server = await serve(answer)
    async with open_client(server.url) as client:
        assert await client.request("GET", "/api/v3/klines") == {"rows": list(range(1000))}


async def test_large_chunked_and_until_eof_bodies(serve: Any, open_client: Any) -> None:
    big = json.dumps(list(range(60_000))).encode()  # several reads
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (big[:70_000], big[70_000:]))
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    until_eof = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big
    server = await serve(chunked, until_eof, _json(1))
    async with open_client(server.url) as client:
        assert await client.request("GET", "/api/v3/klines") == list(range(60_000))
        assert await client.request("GET", "/api/v3/klines") == list(range(60_000))
        assert await client.request("GET", "/api/v3/time") == 1
    assert server.accepted == 2  # the body that ended with its connection needed a new one


async def test_errors_are_typed(serve: Any, open_client: Any) -> None:
    err = b'{"code":-1121,"msg":"Invalid symbol."}'
    bad = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(err), err)
    server = await serve(bad, None)
    async with open_client(server.url) as client:
        with pytest.raises(Exception, match="Invalid symbol") as caught:
            await client.request("GET", "/api/v3/klines")
        assert getattr(caught.value, "code", None) == -1121
        with pytest.raises(BinanceTransportError):  # the server hangs up without answering
            await client.request("GET", "/api/v3/klines")


async def test_a_silent_server_is_a_timeout(
    serve: Any, open_client: Any, autojump_clock: Any
) -> None:
    server = await serve(b"")
    async with open_client(server.url, timeout=3.0) as client:
        start = trio.current_time()
        with pytest.raises(BinanceTimeoutError):
            await client.request("GET", "/api/v3/time")
        assert trio.current_time() - start == pytest.approx(3.0)


async def test_cancelled_mid_answer_frees_the_connection(serve: Any) -> None:
    server = await serve(b"")
    transport = FastTransport()
    async with _client(server.url, transport) as client:
        with trio.move_on_after(0.2):
            await client.request("GET", "/api/v3/time")
        stats = transport.statistics()
        assert (stats.active, stats.connections, stats.idle) == (0, 0, 0)


async def test_a_mock_sees_the_requests(serve: Any) -> None:
    import respx

    transport = CountingFast()
    async with _client("http://127.0.0.1:9", transport) as client:
        with respx.mock:
            route = respx.get("http://127.0.0.1:9/api/v3/time").respond(json={"mocked": True})
            assert await client.request("GET", "/api/v3/time") == {"mocked": True}
        assert route.call_count == 1
        assert transport.fetched == 0


# -------------------------------------------------------------------- the answer object


def test_raw_headers_read_as_httpx_does() -> None:
    raw = [(b"Content-Type", b"a/b"), (b"Set-Cookie", b"x=1"), (b"set-cookie", b"y=2")]
    headers = RawHeaders(raw)
    ours, httpx_own = dict(headers.items()), httpx.Headers(raw)
    assert ours == dict(httpx_own.items())
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "a/b"
    assert headers.get("Retry-After") is None
    assert "set-cookie" in headers
    assert 1 not in headers
    assert len(headers) == 2
    assert headers.raw is raw
    assert "a/b" in repr(headers)


def test_answers_decode_content_encoding() -> None:
    body = gzip.compress(b'{"a":1}')
    answer = Answer.received(200, [(b"Content-Encoding", b"gzip")], body)
    assert answer.content == b'{"a":1}'
    assert answer.is_success
    plain = Answer.received(503, [(b"X-A", b"1")], b"x")
    assert plain.content == b"x"
    assert not plain.is_success
    assert plain.headers["x-a"] == "1"
    assert repr(plain) == "<Answer [503]>"



async def test_a_mock_started_after_the_first_request_sees_the_next(serve: Any) -> None:
    import respx

    server = await serve(_json({"real": True}))
    async with _client(server.url, CountingFast()) as client:
        assert await client.request("GET", "/api/v3/time") == {"real": True}
        for using in ("httpcore", "httpx"):
            with respx.mock(using=using) as mock:
                mock.get(f"{server.url}/api/v3/time").respond(json={"mocked": using})
                assert await client.request("GET", "/api/v3/time") == {"mocked": using}
        assert await client.request("GET", "/api/v3/time") == {"real": True}
    assert len(server.heads) == 2
