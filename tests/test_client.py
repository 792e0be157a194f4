"""BinanceClient against respx: routing, signing, time, errors, redaction, the http guard."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import trio

from aiocea_trio.client import BinanceClient
from aiocea_trio.errors import (
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
)
from aiocea_trio.limits import RateLimiter
from aiocea_trio.signing import HmacSigner

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def _client(*args: object, **kwargs: object) -> BinanceClient:
    """A client that knows its limits already, so respx needs no exchangeInfo route."""
    kwargs.setdefault("limiter", RateLimiter(learn_limits=False))
    kwargs.setdefault("retries", 0)
    return BinanceClient(*args, **kwargs)  # type: ignore[arg-type]


def _split_signed(request: httpx.Request) -> tuple[str, str]:
    raw = request.url.query.decode()
    payload, _, signature = raw.rpartition("&signature=")
    return payload, signature


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/api/v3/ping", "api.binance.com"),
        ("/sapi/v1/system/status", "api.binance.com"),
        ("/fapi/v1/ping", "fapi.binance.com"),
        ("/dapi/v1/ping", "dapi.binance.com"),
    ],
)
async def test_path_prefix_picks_the_production_host(
    mock: respx.MockRouter, path: str, host: str
) -> None:
    route = mock.get(f"https://{host}{path}").respond(json={})
    async with _client() as client:
        assert await client.request("GET", path) == {}
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/api/v3/ping", "https://testnet.binance.vision/api/v3/ping"),
        ("/fapi/v1/ping", "https://testnet.binancefuture.com/fapi/v1/ping"),
        ("/dapi/v1/ping", "https://testnet.binancefuture.com/dapi/v1/ping"),
    ],
)
async def test_testnet_hosts(mock: respx.MockRouter, path: str, url: str) -> None:
    route = mock.get(url).respond(json={})
    async with _client(testnet=True) as client:
        await client.request("get", path)
    assert route.call_count == 1


async def test_base_url_sends_every_market_to_one_host(mock: respx.MockRouter) -> None:
    route = mock.route(host="127.0.0.1", port=8080).respond(json={"ok": 1})
    async with _client(KEY, SECRET, base_url="http://127.0.0.1:8080/") as client:
        for path in ("/api/v3/ping", "/fapi/v1/ping", "/dapi/v1/ping"):
            assert await client.request("GET", path) == {"ok": 1}
        assert client.base_url_for("coinm") == "http://127.0.0.1:8080"
    assert [c.request.url.path for c in route.calls] == [
        "/api/v3/ping",
        "/fapi/v1/ping",
        "/dapi/v1/ping",
    ]


async def test_full_url_is_accepted_and_keeps_its_query(mock: respx.MockRouter) -> None:
    route = mock.get("https://dapi.binance.com/dapi/v1/klines").respond(json=[])
    async with _client() as client:
        await client.request(
            "GET", "https://dapi.binance.com/dapi/v1/klines?symbol=BTCUSD_PERP", {"limit": 1}
        )
    assert route.calls.last.request.url.query == b"symbol=BTCUSD_PERP&limit=1"


async def test_unknown_prefix_is_a_clear_error() -> None:
    async with _client() as client:
        with pytest.raises(ValueError, match="/fapi/"):
            await client.request("GET", "/v3/ping")


async def test_the_seed_base_url_constant_is_kept() -> None:
    assert BinanceClient.CoinM_BASE_URL == "https://dapi.binance.com"


async def test_using_the_client_outside_async_with_says_how() -> None:
    client = _client()
    with pytest.raises(ClientNotOpenError, match="async with BinanceClient"):
        await client.request("GET", "/api/v3/ping")
    async with client:
        assert client.is_open
    assert not client.is_open


async def test_entering_twice_is_refused(mock: respx.MockRouter) -> None:
    async with _client() as client:
        with pytest.raises(RuntimeError, match="already open"):
            await client.__aenter__()


async def test_signed_request_follows_binance_rules(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    mock.get("https://api.binance.com/api/v3/time").respond(json={"serverTime": 1_700_000_000_000})
    route = mock.post("https://api.binance.com/api/v3/order").mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={"orderId": 1, "clientOrderId": dict(parse_qsl(request.url.query.decode()))[
                "newClientOrderId"
            ]},
        )
    )
    async with _client(KEY, SECRET, recv_window=7000) as client:
        await client.request(
            "POST",
            "/api/v3/order",
            {"symbol": "１２３４５６", "side": "BUY", "quantity": 1, "price": 0.1, "x": None},
            signed=True,
        )
    request = route.calls.last.request
    assert request.headers["X-MBX-APIKEY"] == KEY
    assert request.content == b""
    payload, signature = _split_signed(request)
    # Order placement always carries a newClientOrderId (generated here), so that a
    # retry after an ambiguous failure can look the order up instead of re-placing it.
    assert re.fullmatch(
        "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"
        r"&side=BUY&quantity=1&price=0\.1&newClientOrderId=aiocea-[0-9a-f]{24}"
        r"&recvWindow=7000&timestamp=\d{13}",
        payload,
    )
    assert signature == HmacSigner(SECRET).sign(payload)
    stamp = int(dict(parse_qsl(payload))["timestamp"])
    # The clock was synced to the server first: timestamps follow the server's time.
    assert abs(stamp - 1_700_000_000_000) < 50


async def test_time_sync_offset_and_periodic_resync(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    offsets = iter([5_000, 9_000])

    def server_time(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"serverTime": client.local_time_ms() + next(offsets)})

    time_route = mock.get("https://fapi.binance.com/fapi/v1/time").mock(side_effect=server_time)
    order = mock.get("https://fapi.binance.com/fapi/v1/openOrders").respond(json=[])
    client = _client(KEY, SECRET, time_sync_interval=60)
    async with client:
        await client.request("GET", "/fapi/v1/openOrders", signed=True)
        assert client.time_offset_ms == 5_000
        await client.request("GET", "/fapi/v1/openOrders", signed=True)
        assert time_route.call_count == 1  # within the interval: no re-sync
        await trio.sleep(61)
        await client.request("GET", "/fapi/v1/openOrders", signed=True)
        assert client.time_offset_ms == 9_000
    assert time_route.call_count == 2
    payload, _ = _split_signed(order.calls.last.request)
    assert int(dict(parse_qsl(payload))["timestamp"]) - client.local_time_ms() == 9_000


async def test_concurrent_first_signed_requests_sync_once(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    time_route = mock.get("https://dapi.binance.com/dapi/v1/time").respond(
        json={"serverTime": 1_700_000_000_000}
    )
    mock.get("https://dapi.binance.com/dapi/v1/account").respond(json={})
    async with _client(KEY, SECRET) as client, trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(lambda: client.request("GET", "/dapi/v1/account", signed=True))
    assert time_route.call_count == 1


async def test_invalid_timestamp_resyncs_once_and_retries(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    time_route = mock.get("https://api.binance.com/api/v3/time").respond(
        json={"serverTime": 1_700_000_000_000}
    )
    stale = httpx.Response(
        400, json={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    )
    route = mock.get("https://api.binance.com/api/v3/account").mock(
        side_effect=[stale, httpx.Response(200, json={"balances": []})]
    )
    async with _client(KEY, SECRET) as client:
        assert await client.request("GET", "/api/v3/account", signed=True) == {"balances": []}
    assert route.call_count == 2
    assert time_route.call_count == 2  # the first sync, then one re-sync


async def test_a_second_invalid_timestamp_is_raised(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    mock.get("https://api.binance.com/api/v3/time").respond(json={"serverTime": 1})
    route = mock.get("https://api.binance.com/api/v3/account").respond(
        400, json={"code": -1021, "msg": "outside of the recvWindow"}
    )
    async with _client(KEY, SECRET) as client:
        with pytest.raises(BinanceAPIError) as info:
            await client.request("GET", "/api/v3/account", signed=True)
    assert info.value.code == -1021
    assert route.call_count == 2


async def test_signed_request_without_a_signer_is_refused() -> None:
    async with _client(KEY) as client:
        with pytest.raises(ValueError, match="api_secret= or signer="):
            await client.request("GET", "/api/v3/account", signed=True)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="recv_window"):
        BinanceClient(recv_window=60_001)
    with pytest.raises(ValueError, match="not both"):
        BinanceClient(KEY, SECRET, signer=HmacSigner(SECRET))
    with pytest.raises(ValueError, match="base_url"):
        BinanceClient(base_url="ftp://example.com")
    with pytest.raises(ValueError, match="timeout"):
        BinanceClient(timeout=0)


# -- errors ------------------------------------------------------------------------------


async def test_binance_error_payload(mock: respx.MockRouter) -> None:
    mock.get("https://fapi.binance.com/fapi/v1/klines").respond(
        400, json={"code": -1121, "msg": "Invalid symbol."}
    )
    async with _client() as client:
        with pytest.raises(BinanceAPIError) as info:
            await client.request("GET", "/fapi/v1/klines", {"symbol": "NOPE"})
    err = info.value
    assert (err.status, err.code, err.msg) == (400, -1121, "Invalid symbol.")
    assert str(err) == "usdm GET /fapi/v1/klines: HTTP 400, code -1121: Invalid symbol."
    assert type(err) is BinanceAPIError


async def test_html_502_is_a_response_error_with_an_excerpt(mock: respx.MockRouter) -> None:
    mock.get("https://api.binance.com/api/v3/ping").respond(
        502, text="<html>\n<body>502 Bad Gateway</body></html>" + "x" * 1000
    )
    async with _client() as client:
        with pytest.raises(BinanceResponseError) as info:
            await client.request("GET", "/api/v3/ping")
    assert info.value.status == 502
    assert info.value.excerpt.startswith("<html> <body>502 Bad Gateway")
    assert len(info.value.excerpt) <= 200
    assert "spot GET /api/v3/ping" in str(info.value)


async def test_truncated_json_is_a_response_error(mock: respx.MockRouter) -> None:
    mock.get("https://api.binance.com/api/v3/time").respond(200, content=b'{"serverTime": 17')
    async with _client() as client:
        with pytest.raises(BinanceResponseError, match="HTTP 200"):
            await client.request("GET", "/api/v3/time")


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind"),
    [
        (429, {"Retry-After": "7"}, {"code": -1003, "msg": "Too much request weight used"}, 429),
        (
            418,
            {"Retry-After": "120"},
            {"code": -1003, "msg": "Way too much request weight used; IP banned until 1700000120000."},
            418,
        ),
        (503, {}, {"code": -1007, "msg": "Timeout waiting for response; status unknown."}, 503),
        (429, {}, None, 429),
    ],
)
async def test_status_specific_errors(
    mock: respx.MockRouter, status: int, headers: dict[str, str], body: object, kind: int
) -> None:
    if body is None:
        mock.get("https://api.binance.com/api/v3/depth").respond(status, headers=headers, text="")
    else:
        mock.get("https://api.binance.com/api/v3/depth").respond(
            status, headers=headers, json=body
        )
    async with _client() as client:
        with pytest.raises(BinanceAPIError) as info:
            await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
    err = info.value
    assert err.status == status
    if kind == 429:
        assert type(err) is BinanceRateLimitError
        assert err.retry_after == (7.0 if headers else None)
        assert err.code == -1003
    elif kind == 418:
        assert isinstance(err, BinanceBanError)
        assert (err.retry_after, err.banned_until) == (120.0, 1_700_000_120_000)
    else:
        assert type(err) is BinanceServerError
        assert err.code == -1007


async def test_timeout_is_wrapped_with_the_request(mock: respx.MockRouter) -> None:
    mock.get("https://api.binance.com/api/v3/ping").mock(side_effect=httpx.ReadTimeout("slow"))
    async with _client(timeout=2.5) as client:
        with pytest.raises(BinanceTimeoutError) as info:
            await client.request("GET", "/api/v3/ping")
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert str(info.value).startswith("spot GET /api/v3/ping: no answer within 2.5 s")


async def test_connection_refused_is_wrapped(mock: respx.MockRouter) -> None:
    mock.get("https://dapi.binance.com/dapi/v1/ping").mock(
        side_effect=httpx.ConnectError("Connection refused")
    )
    async with _client() as client:
        with pytest.raises(BinanceTransportError) as info:
            await client.request("GET", "/dapi/v1/ping")
    assert not isinstance(info.value, BinanceTimeoutError)
    assert isinstance(info.value, BinanceError)
    assert "coinm GET /dapi/v1/ping" in str(info.value)
    assert "Connection refused" in str(info.value)


async def test_real_connection_refused_on_loopback() -> None:
    # Bind a socket without listening, so the port is ours and nothing accepts.
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        async with _client(base_url=f"http://127.0.0.1:{port}") as client:
            with pytest.raises(BinanceTransportError, match="ConnectError"):
                await client.request("GET", "/api/v3/ping")
    finally:
        sock.close()


# -- secrets -------------------------------------------------------------------------------


async def test_secrets_never_appear_in_repr_logs_or_errors(
    mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    mock.get("https://api.binance.com/api/v3/time").respond(json={"serverTime": 1_700_000_000_000})
    seen: list[str] = []

    def echo(request: httpx.Request) -> httpx.Response:
        _, signature = _split_signed(request)
        seen.append(signature)
        # A hostile or buggy server that echoes the signature back in its error.
        return httpx.Response(400, json={"code": -1022, "msg": f"bad signature {signature}"})

    mock.get("https://api.binance.com/api/v3/account").mock(side_effect=echo)
    client = _client(KEY, SECRET)
    caplog.set_level(logging.DEBUG, logger="aiocea_trio")
    async with client:
        with pytest.raises(BinanceAPIError) as info:
            await client.request("GET", "/api/v3/account", signed=True)
        text = " ".join([repr(client), str(client), str(info.value), repr(info.value), caplog.text])
    signature = seen[0]
    assert len(signature) == 64
    assert signature not in text
    assert SECRET not in text
    assert KEY not in text
    assert "signature=<redacted>" in caplog.text
    assert "<redacted>" in str(info.value)


# -- plain http guard ---------------------------------------------------------------------


def test_api_key_is_never_sent_over_plain_http_to_a_remote_host() -> None:
    with pytest.raises(InsecureTransportError, match="allow_insecure_http"):
        BinanceClient(KEY, SECRET, base_url="http://example.com")
    # Without a key nothing secret travels; loopback and an explicit opt-in are fine.
    BinanceClient(base_url="http://example.com")
    BinanceClient(KEY, SECRET, base_url="http://127.0.0.1:8080")
    BinanceClient(KEY, SECRET, base_url="http://[::1]:8080")
    BinanceClient(KEY, SECRET, base_url="http://localhost:8080")
    BinanceClient(KEY, SECRET, base_url="http://example.com", allow_insecure_http=True)


@pytest.mark.parametrize(
    "url", ["http://evil.localhost", "http://sim.localhost:80", "http://localhost.evil.com"]
)
def test_names_under_localhost_are_not_loopback(url: str) -> None:
    # Only literal loopback addresses and localhost itself are this machine: a
    # resolver may send *.localhost anywhere.
    with pytest.raises(InsecureTransportError, match="allow_insecure_http"):
        BinanceClient(KEY, SECRET, base_url=url)


def test_an_in_process_transport_reaches_no_network() -> None:
    BinanceClient(
        KEY,
        SECRET,
        base_url="http://sim.localhost",
        transport=httpx.MockTransport(lambda request: httpx.Response(200)),
    )


async def test_full_plain_http_url_with_a_key_is_refused() -> None:
    async with _client(KEY) as client:
        with pytest.raises(InsecureTransportError):
            await client.request("GET", "http://example.com/api/v3/ping")


# -- issue 19: requests go straight to the transport ---------------------------------------


def _echo_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"serverTime": 1}, headers={"X-MBX-USED-WEIGHT-1M": "1"})

    return httpx.MockTransport(answer)


async def test_requests_skip_the_async_clients_send_but_keep_its_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[httpx.Request] = []
    async with BinanceClient(
        KEY, base_url="https://api.example.com", transport=_echo_transport(seen),
        limiter=RateLimiter(learn_limits=False),
    ) as client:

        async def no_send(*args: object, **kwargs: object) -> httpx.Response:
            raise AssertionError("AsyncClient.send was used")

        monkeypatch.setattr(httpx.AsyncClient, "send", no_send)
        await client.request("GET", "/api/v3/time", {"a": "x y", "b": ["1", "2"]})
    (request,) = seen
    assert request.headers["X-MBX-APIKEY"] == KEY
    assert request.headers["Host"] == "api.example.com"
    assert request.headers["User-Agent"].startswith("python-httpx/")
    # the URL composed from the parsed base equals httpx's own parse of the same text
    assert request.url == httpx.URL(str(request.url))
    assert request.url.path == "/api/v3/time"
    assert dict(parse_qsl(request.url.query.decode())) == {"a": "x y", "b": '["1","2"]'}


async def test_event_hooks_on_the_http_client_see_every_request() -> None:
    seen: list[httpx.Request] = []
    hooked: list[str] = []
    async with BinanceClient(
        base_url="https://api.example.com", transport=_echo_transport(seen),
        limiter=RateLimiter(learn_limits=False),
    ) as client:

        async def on_request(request: httpx.Request) -> None:
            hooked.append(request.url.path)

        async def on_response(response: httpx.Response) -> None:
            hooked.append(f"{response.status_code}")

        client.http_client.event_hooks["request"].append(on_request)
        client.http_client.event_hooks["response"].append(on_response)
        assert await client.request("GET", "/api/v3/time") == {"serverTime": 1}
    assert hooked == ["/api/v3/time", "200"]
    assert len(seen) == 1


async def test_a_base_url_with_a_path_prefix_keeps_it() -> None:
    seen: list[httpx.Request] = []
    async with BinanceClient(
        base_url="https://proxy.example.com/binance/", transport=_echo_transport(seen),
        limiter=RateLimiter(learn_limits=False),
    ) as client:
        await client.request("GET", "/api/v3/time")
    assert [str(r.url) for r in seen] == ["https://proxy.example.com/binance/api/v3/time"]
