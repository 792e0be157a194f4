"""FastTransport's own behaviour: mocks still intercept, the fallback, pool limits, no secrets.

What it shares with httpx's transport is in test_transport_conformance.py; this module holds
what only FastTransport has (its statistics, its factory, its respx delegation).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import httpx
import pytest
import respx
import trio

from aiocea_trio.transport import (
    FastTransport,
    TransportStatistics,
    default_transport,
    fast_transport_available,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SIGNED = "/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=deadbeefcafe"


class Counter:
    """A raw server answering ``answer`` to every request; counts connections."""

    def __init__(self, answer: bytes = OK, *, hold: trio.Event | None = None) -> None:
        self.answer = answer
        self.hold = hold
        self.accepted = 0
        self.url = ""

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
                buf = buf.split(b"\r\n\r\n", 1)[1]
                if self.hold is not None:
                    await self.hold.wait()
                await stream.send_all(self.answer)
        except trio.BrokenResourceError:
            pass


@pytest.fixture
def start(nursery: trio.Nursery) -> Callable[..., Awaitable[Counter]]:
    async def start(answer: bytes = OK, *, hold: trio.Event | None = None) -> Counter:
        server = Counter(answer, hold=hold)
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        server.url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        return server

    return start


# --------------------------------------------------------------------------- mocks


@respx.mock
async def test_respx_default_mocker_intercepts() -> None:
    route = respx.get("https://api.binance.com/api/v3/ping").respond(json={})
    async with httpx.AsyncClient(transport=FastTransport()) as client:
        r = await client.get("https://api.binance.com/api/v3/ping")
        assert r.json() == {}
        # an unmocked URL is refused by respx, never sent to the network
        with pytest.raises(respx.models.AllMockedAssertionError):
            await client.get("https://api.binance.com/api/v3/time")
    assert route.call_count == 1


async def test_respx_httpx_mocker_intercepts() -> None:
    async with respx.mock(using="httpx") as mock:
        route = mock.get("https://api.binance.com/api/v3/ping").respond(json={"ok": 1})
        async with httpx.AsyncClient(transport=FastTransport()) as client:
            assert (await client.get("https://api.binance.com/api/v3/ping")).json() == {"ok": 1}
    assert route.call_count == 1


async def test_respx_pass_through_and_unpatched_again(
    start: Callable[..., Awaitable[Counter]],
) -> None:
    server = await start()
    transport = FastTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        async with respx.mock() as mock:
            mock.route(host="127.0.0.1").pass_through()
            assert (await client.get(server.url)).content == b"ok"
        assert transport.statistics().connections == 0  # that went through httpcore
        # respx stopped: FastTransport's own path again
        assert (await client.get(server.url)).content == b"ok"
        assert transport.statistics() == TransportStatistics(
            origins=1, connections=1, idle=1, active=0
        )


async def test_mocked_before_the_transport_was_built() -> None:
    async with respx.mock() as mock:
        mock.get("https://api.binance.com/api/v3/ping").respond(json={})
        transport = FastTransport()  # sees the patched pool at construction
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get("https://api.binance.com/api/v3/ping")).json() == {}


def test_respx_imported_after_the_transport_was_built() -> None:
    # FastTransport does not import httpcore (0.1 s); respx imports it, and is then seen.
    code = """
import sys
import httpx, trio
from aiocea_trio.transport import FastTransport
transport = FastTransport()
assert "httpcore" not in sys.modules
import respx

async def main():
    async with respx.mock() as mock:
        mock.get("https://api.binance.com/api/v3/ping").respond(json={"mocked": True})
        async with httpx.AsyncClient(transport=transport) as client:
            print((await client.get("https://api.binance.com/api/v3/ping")).json())

trio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'mocked': True}"


# --------------------------------------------------------------------------- the factory


def test_default_transport_is_fast_when_httptools_imports() -> None:
    assert fast_transport_available()
    assert isinstance(default_transport(), FastTransport)


def test_default_transport_falls_back_without_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)  # import httptools -> ImportError
    assert not fast_transport_available()
    transport = default_transport(max_connections=7)
    assert type(transport) is httpx.AsyncHTTPTransport
    assert transport._pool._max_connections == 7
    with pytest.raises(ImportError, match=r"aiocea-trio\[fast\]"):
        FastTransport()


def test_default_transport_leaves_proxies_to_httpx() -> None:
    transport = default_transport(proxy="http://127.0.0.1:3128")
    assert type(transport) is httpx.AsyncHTTPTransport


def test_the_package_imports_without_httptools() -> None:
    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "import aiocea_trio, aiocea_trio.transport as t\n"
        "assert not t.fast_transport_available()\n"
        "print(type(t.default_transport()).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "AsyncHTTPTransport"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        FastTransport(max_connections=0)


# --------------------------------------------------------------------------- pool limits


async def test_max_connections_is_per_origin(start: Callable[..., Awaitable[Counter]]) -> None:
    a, b = await start(), await start()
    transport = FastTransport(max_connections=2)
    async with httpx.AsyncClient(transport=transport) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(client.get, a.url)
                nursery.start_soon(client.get, b.url)
        assert (a.accepted, b.accepted) == (2, 2)
        assert transport.statistics() == TransportStatistics(
            origins=2, connections=4, idle=4, active=0
        )


async def test_max_keepalive_connections(start: Callable[..., Awaitable[Counter]]) -> None:
    hold = trio.Event()
    server = await start(hold=hold)
    transport = FastTransport(max_connections=4, max_keepalive_connections=1)
    async with httpx.AsyncClient(transport=transport) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(client.get, server.url)
            while server.accepted < 4:
                await trio.sleep(0.001)
            assert transport.statistics().active == 4
            hold.set()
        assert transport.statistics() == TransportStatistics(
            origins=1, connections=1, idle=1, active=0
        )


async def test_a_complete_answer_frees_its_slot_before_it_is_read(
    start: Callable[..., Awaitable[Counter]],
) -> None:
    # httpcore holds the connection until the response is closed; FastTransport gives it
    # back as soon as the whole answer is off the socket (the bytes travel with the response).
    server = await start()
    transport = FastTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", server.url) as first:
            assert transport.statistics().active == 0
            second = await client.get(server.url, timeout=httpx.Timeout(1.0, pool=0.1))
            assert await first.aread() == second.content == b"ok"
    assert server.accepted == 1


async def test_unsolicited_bytes_after_an_answer_spoil_the_connection(
    start: Callable[..., Awaitable[Counter]],
) -> None:
    server = await start(OK + b"junk")
    transport = FastTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):
            assert (await client.get(server.url)).content == b"ok"
    assert server.accepted == 2


async def test_aclose_closes_connections_in_use(start: Callable[..., Awaitable[Counter]]) -> None:
    body = b"x" * 500_000
    server = await start(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    transport = FastTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", server.url) as r:
            assert transport.statistics().active == 1
            await transport.aclose()
            with pytest.raises(httpx.ReadError):
                await r.aread()
        assert transport.statistics() == TransportStatistics(
            origins=0, connections=0, idle=0, active=0
        )
        assert (await client.get(server.url)).content == body  # usable again, like httpcore


# --------------------------------------------------------------------------- protocol edges


async def test_header_injection_is_refused(start: Callable[..., Awaitable[Counter]]) -> None:
    server = await start()
    async with httpx.AsyncClient(transport=FastTransport()) as client:
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(server.url, headers={"X-Note": "a\r\nX-Evil: 1"})
        with pytest.raises(httpx.LocalProtocolError):
            await client.request("GE T", server.url)
    assert server.accepted == 0


async def test_upgrades_are_refused(start: Callable[..., Awaitable[Counter]]) -> None:
    server = await start(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    async with httpx.AsyncClient(transport=FastTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="upgrade"):
            await client.get(server.url)


async def test_unsupported_scheme() -> None:
    transport = FastTransport()
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://example.com/"))


async def test_handle_async_request_without_client(
    start: Callable[..., Awaitable[Counter]],
) -> None:
    server = await start()
    async with FastTransport() as transport:
        request = httpx.Request("GET", server.url + "/x")  # no timeout extension: no limits
        response = await transport.handle_async_request(request)
        assert response.status_code == 200
        assert await response.aread() == b"ok"
        assert response.extensions["http_version"] == b"HTTP/1.1"
        assert response.extensions["reason_phrase"] == b"OK"
    assert transport.statistics().connections == 0


# --------------------------------------------------------------------------- no secrets


async def test_repr_and_errors_carry_no_url(start: Callable[..., Awaitable[Counter]]) -> None:
    server = await start(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    transport = FastTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.get(server.url + SIGNED, timeout=0.05)
        text = f"{transport!r} {transport.statistics()!r} {caught.value}"
    assert repr(transport).startswith("<FastTransport origins=")
    for secret in ("deadbeef", "signature", "127.0.0.1", "localhost", "/api"):
        assert secret not in text
