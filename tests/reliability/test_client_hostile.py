"""One hostile answer at a time: each class of issue 12's client findings, pinned.

Every test here failed on the client before the hardening (0.1.0): signed URLs in
httpx's INFO lines, a 429 with ``Retry-After: inf`` that paused a market forever,
a dripping server holding an order, orders marked failed that existed, KeyError
from wrong-shaped JSON, and stamina's bare lines on stderr.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import trio
import trio.testing

from aiocea_trio import MAX_BAN_SECONDS, MAX_RATE_LIMIT_PAUSE
from aiocea_trio.client import BinanceClient
from aiocea_trio.errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceError,
    BinanceResponseError,
    BinanceTimeoutError,
    BinanceTransportError,
    OrderStatusUnknownError,
)
from aiocea_trio.limits import RateLimiter

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT = "https://api.binance.com"
TIME = {"serverTime": 1_700_000_000_000}
NO_ORDER = httpx.Response(400, json={"code": -2013, "msg": "Order does not exist."})
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}


def _client(**kwargs: object) -> BinanceClient:
    kwargs.setdefault("limiter", RateLimiter(learn_limits=False))
    return BinanceClient(KEY, SECRET, **kwargs)  # type: ignore[arg-type]


def _params(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode()))


def _signatures(route: respx.Route) -> list[str]:
    return [_params(call.request)["signature"] for call in route.calls]


def _accepted(order_id: int) -> Callable[[httpx.Request], httpx.Response]:
    """Binance's answer to a new order: it names the client order id that was sent."""

    def answer(request: httpx.Request) -> httpx.Response:
        cid = _params(request)["newClientOrderId"]
        return httpx.Response(200, json={"orderId": order_id, "clientOrderId": cid})

    return answer


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SPOT}/api/v3/time").respond(json=TIME)
        yield router


# -- 1. signatures in logs and errors ----------------------------------------------------


async def test_no_signature_or_key_in_any_log_record_at_any_level(
    mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    route = mock.get(f"{SPOT}/api/v3/account").respond(json={"balances": []})
    caplog.set_level(logging.DEBUG)  # every logger: httpx's INFO request lines included
    async with _client() as client:
        await client.request("GET", "/api/v3/account", signed=True)
        (signature,) = _signatures(route)
        # Requests go straight to the transport, which logs nothing; a user's request
        # through the pooled httpx client logs httpx's INFO line, filtered the same way.
        await client.http_client.get(f"{SPOT}/api/v3/account?timestamp=1&signature={signature}")
    messages = [r.getMessage() for r in caplog.records]
    assert any(r.name == "httpx" for r in caplog.records), "httpx logged no request line"
    for text in messages:
        assert signature not in text
        assert KEY not in text
        assert SECRET not in text
    assert any("signature=<redacted>" in text for text in messages)


async def test_a_transport_error_carries_no_request_url_or_key(mock: respx.MockRouter) -> None:
    route = mock.get(f"{SPOT}/api/v3/account").mock(
        side_effect=httpx.ConnectError("refused while sending GET /api/v3/account?signature=ab12")
    )
    async with _client(retries=0) as client:
        with pytest.raises(BinanceTransportError) as info:
            await client.request("GET", "/api/v3/account", signed=True)
    (signature,) = _signatures(route)
    error = info.value
    cause = error.__cause__
    assert isinstance(cause, httpx.ConnectError)  # the kind survives: "never sent" logic needs it
    assert error.__context__ is None or error.__context__ is cause
    with pytest.raises(RuntimeError):
        cause.request  # noqa: B018  (the signed request, with the API key header, is gone)
    for text in (str(error), repr(error), str(cause), repr(cause)):
        assert signature not in text
        assert "ab12" not in text
        assert KEY not in text


@pytest.mark.parametrize("decoded", [True, False])
async def test_an_echoed_query_in_an_error_message_is_scrubbed(
    mock: respx.MockRouter, decoded: bool
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        shown = "&".join(f"{k}={v}" for k, v in parse_qsl(query)) if decoded else query
        return httpx.Response(400, json={"code": -1102, "msg": f"Bad request: {shown}"})

    route = mock.get(f"{SPOT}/api/v3/account").mock(side_effect=echo)
    async with _client() as client:
        with pytest.raises(BinanceAPIError) as info:
            await client.request("GET", "/api/v3/account", signed=True)
    (signature,) = _signatures(route)
    assert signature not in str(info.value)
    assert "signature=<redacted>" in info.value.msg


async def test_an_html_page_echoing_the_url_is_scrubbed(mock: respx.MockRouter) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text=f"<html><p>upstream failed for {request.url}</p></html>")

    route = mock.get(f"{SPOT}/api/v3/account").mock(side_effect=page)
    async with _client(retries=0) as client:
        with pytest.raises(BinanceResponseError) as info:
            await client.request("GET", "/api/v3/account", signed=True)
    (signature,) = _signatures(route)
    assert signature not in str(info.value)
    assert signature[:20] not in str(info.value)


# -- 2. bounded waits on a server's word -----------------------------------------------


@pytest.mark.parametrize(
    "retry_after", ["inf", "1e9", "Fri, 01 Jan 2100 00:00:00 GMT", "nan", "-5", "soon"]
)
async def test_a_429_never_pauses_longer_than_the_cap(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    retry_after: str,
) -> None:
    route = mock.get(f"{SPOT}/api/v3/depth").mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": retry_after}, json={"code": -1003, "msg": "slow"}
            ),
            httpx.Response(200, json={"bids": [], "asks": []}),
        ]
    )
    caplog.set_level(logging.WARNING, logger="aiocea_trio")
    async with _client(retries=1) as client:
        start = trio.current_time()
        with trio.fail_after(MAX_RATE_LIMIT_PAUSE + 30):
            await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
        waited = trio.current_time() - start
    assert route.call_count == 2
    assert waited <= MAX_RATE_LIMIT_PAUSE + 6  # + the retry's own backoff
    assert any("429" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_a_429_pause_yields_to_the_callers_deadline(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    mock.get(f"{SPOT}/api/v3/depth").respond(
        429, headers={"Retry-After": "200"}, json={"code": -1003, "msg": "slow"}
    )
    async with _client(retries=3) as client:
        with trio.move_on_after(10) as scope:
            await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
    assert scope.cancelled_caught


async def test_a_ban_years_away_is_cut_to_three_days(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    years = TIME["serverTime"] + 10 * 365 * 86_400_000
    mock.get(f"{SPOT}/api/v3/depth").respond(
        418,
        headers={"Retry-After": "inf"},
        json={"code": -1003, "msg": f"Way too much request weight used; IP banned until {years}."},
    )
    async with _client(retries=0) as client:
        with pytest.raises(BinanceBanError) as first:
            await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
        assert first.value.retry_after == MAX_BAN_SECONDS
        with pytest.raises(BinanceBanError) as second:  # refused locally, nothing sent
            await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
    assert second.value.retry_after is not None
    assert second.value.retry_after <= MAX_BAN_SECONDS


# -- 3. a total deadline per attempt ----------------------------------------------------


class _Drip(httpx.AsyncByteStream):
    """A body sent one byte every half second: no read ever times out."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for byte in self._body:
            await trio.sleep(0.5)
            yield bytes([byte])


def _dripping(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Drip(body))

    return respond


async def test_a_dripping_server_cannot_hold_a_request_past_its_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport = httpx.MockTransport(_dripping(b'{"serverTime": 1700000000000}' * 20))
    async with _client(
        transport=transport, timeout=5, retries=0, base_url="http://127.0.0.1:1"
    ) as client:
        start = trio.current_time()
        with pytest.raises(BinanceTimeoutError, match="5"):
            await client.sync_time()
        assert trio.current_time() - start == pytest.approx(5)


async def test_a_dripping_order_is_looked_up_not_left_pending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v3/time":
            return httpx.Response(200, json=TIME)
        cid = _params(request).get("newClientOrderId") or _params(request)["origClientOrderId"]
        seen.append(f"{request.method} {cid}")
        if request.method == "POST":
            return _dripping(b'{"orderId": 1, "status": "FILLED"}' * 50)(request)
        return httpx.Response(200, json={"orderId": 1, "clientOrderId": cid, "status": "FILLED"})

    transport = httpx.MockTransport(handler)
    async with _client(transport=transport, timeout=5, base_url="http://127.0.0.1:1") as client:
        with trio.fail_after(60):
            order = await client.request("POST", "/api/v3/order", ORDER, signed=True)
    assert order["orderId"] == 1
    assert [s.split()[0] for s in seen] == ["POST", "GET"]  # placed once, then looked up


# -- 4. orders: anything but a well-formed answer means "look it up" ------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html><body>OK</body></html>"),
        httpx.Response(200, text='{"orderId": 12, "status": "NE'),
        httpx.Response(200, text=""),
        httpx.Response(200, json={}),
        httpx.Response(200, json=None),
        httpx.Response(408, text="<html>Request Timeout</html>"),
        httpx.Response(403, text="<html>Forbidden by the WAF</html>"),
        httpx.Response(400, json={"code": -1006, "msg": "An unexpected response was received"}),
    ],
    ids=["html-200", "truncated", "empty", "empty-object", "null", "408", "403-html", "-1006"],
)
async def test_an_order_answer_that_is_not_an_order_is_looked_up(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock, answer: httpx.Response
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(return_value=answer)

    def lookup(request: httpx.Request) -> httpx.Response:
        cid = _params(request)["origClientOrderId"]
        return httpx.Response(200, json={"orderId": 12, "clientOrderId": cid, "status": "NEW"})

    looked = mock.get(f"{SPOT}/api/v3/order").mock(side_effect=lookup)
    async with _client() as client:
        order = await client.request("POST", "/api/v3/order", ORDER, signed=True)
    assert placed.call_count == 1  # the order exists: never sent again
    assert looked.call_count == 1
    assert order["orderId"] == 12


async def test_a_malformed_order_answer_with_no_such_order_is_resent_with_the_same_id(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(
        side_effect=[httpx.Response(200, text="<html/>"), _accepted(3)]
    )
    mock.get(f"{SPOT}/api/v3/order").mock(return_value=NO_ORDER)
    async with _client() as client:
        order = await client.request("POST", "/api/v3/order", ORDER, signed=True)
    assert order["orderId"] == 3
    ids = [_params(c.request)["newClientOrderId"] for c in placed.calls]
    assert len(ids) == 2
    assert ids[0] == ids[1]


async def test_an_unsettled_lookup_says_unknown(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    mock.post(f"{SPOT}/api/v3/order").respond(200, text="<html/>")
    mock.get(f"{SPOT}/api/v3/order").respond(200, text="<html>maintenance</html>")
    async with _client(retries=1) as client:
        with pytest.raises(OrderStatusUnknownError, match="unknown"):
            await client.request("POST", "/api/v3/order", ORDER, signed=True)


@pytest.mark.parametrize("status", [200, 201])
async def test_a_2xx_carrying_an_error_payload_is_an_api_error(
    mock: respx.MockRouter, status: int
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").respond(
        status, json={"code": -2010, "msg": "Account has insufficient balance."}
    )
    async with _client() as client:
        with pytest.raises(BinanceAPIError) as info:
            await client.request("POST", "/api/v3/order", ORDER, signed=True)
    assert info.value.code == -2010
    assert placed.call_count == 1


async def test_a_2xx_with_a_positive_code_is_a_success(mock: respx.MockRouter) -> None:
    mock.post("https://fapi.binance.com/fapi/v1/marginType").respond(
        json={"code": 200, "msg": "success"}
    )
    mock.get("https://fapi.binance.com/fapi/v1/time").respond(json=TIME)
    async with _client() as client:
        answer = await client.request(
            "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "CROSSED"},
            signed=True,
        )
    assert answer == {"code": 200, "msg": "success"}


# -- 5. wrong-shaped JSON is a BinanceResponseError naming the endpoint -------------------


@pytest.mark.parametrize(
    "body", ["{}", "null", "[]", '{"serverTime": "soon"}', '{"serverTime": true}']
)
async def test_a_wrong_shaped_server_time_is_a_response_error(body: str) -> None:
    with respx.mock() as router:
        router.get(f"{SPOT}/api/v3/time").respond(content=body.encode())
        async with _client() as client:
            with pytest.raises(BinanceResponseError, match="/api/v3/time") as info:
                await client.sync_time()
    assert isinstance(info.value, BinanceError)
    assert "wrong shape" in str(info.value)


@pytest.mark.parametrize("body", ["null", "{}", "[]", '{"rateLimits": null}'])
async def test_a_wrong_shaped_exchange_info_falls_back_to_published_limits(
    body: str, caplog: pytest.LogCaptureFixture
) -> None:
    with respx.mock() as router:
        router.get(f"{SPOT}/api/v3/exchangeInfo").respond(content=body.encode())
        router.get(f"{SPOT}/api/v3/ping").respond(json={})
        async with BinanceClient() as client:
            assert await client.request("GET", "/api/v3/ping") == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("/api/v3/exchangeInfo" in w and "published" in w for w in warnings)


# -- 13. retries are logged under our own name, never as bare lines on stderr -------------


async def test_retries_are_logged_under_aiocea_trio_at_info(
    mock: respx.MockRouter,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock.get(f"{SPOT}/api/v3/depth").mock(
        side_effect=[httpx.Response(503, text="busy"), httpx.Response(200, json={})]
    )
    caplog.set_level(logging.DEBUG)
    async with _client(retries=2) as client:
        await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
    retries = [r for r in caplog.records if r.name == "aiocea_trio.retries"]
    assert len(retries) == 1
    assert retries[0].levelno == logging.INFO
    assert "retry 1 of 2" in retries[0].getMessage()
    assert not [r for r in caplog.records if r.name.startswith("stamina")]


def test_a_script_without_logging_config_prints_nothing_on_retries() -> None:
    script = textwrap.dedent(
        """
        import trio
        from aiocea_trio import SimExchange
        from aiocea_trio.sim import FaultConfig

        async def main():
            sim = SimExchange(faults=FaultConfig(error_rate=0.5, paths=("/api/v3/depth",)))
            async with sim.client(retry_wait_initial=0.0, retry_wait_max=0.0, retries=8) as c:
                for _ in range(10):
                    await c.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
                print("retries", c.statistics().retries)

        trio.run(main)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    retries = int(done.stdout.split()[-1])
    assert retries > 0, "the fault rate caused no retry: the check would prove nothing"
    assert done.stderr == ""


# -- archives: the same typed errors, retried under the same policy --------------------


ARCHIVE_ROOT = "https://data.binance.vision"
ARCHIVE = "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip"


async def test_an_archive_host_failing_with_5xx_is_retried_then_a_binance_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from aiocea_trio.archives import ArchiveFile, fetch_archive

    with respx.mock() as router:
        route = router.get(f"{ARCHIVE_ROOT}{ARCHIVE}").respond(503, text="<html>busy</html>")
        async with httpx.AsyncClient() as http:
            with pytest.raises(BinanceResponseError, match="503") as info:
                await fetch_archive(http, ARCHIVE_ROOT, ArchiveFile(ARCHIVE, 0, 1))
    assert route.call_count == 4
    assert info.value.path == ARCHIVE


async def test_an_archive_host_dropping_connections_is_a_transport_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from aiocea_trio.archives import ArchiveFile, fetch_archive

    with respx.mock() as router:
        route = router.get(f"{ARCHIVE_ROOT}{ARCHIVE}").mock(
            side_effect=httpx.RemoteProtocolError("Server disconnected")
        )
        async with httpx.AsyncClient() as http:
            with pytest.raises(BinanceTransportError, match="RemoteProtocolError") as info:
                await fetch_archive(http, ARCHIVE_ROOT, ArchiveFile(ARCHIVE, 0, 1))
    assert route.call_count == 4
    assert info.value.__context__ is None


# -- 5 (continued): typed consumers name the endpoint too ------------------------------


@pytest.mark.parametrize("body", ["{}", "null", '{"a": 1}', '"text"'])
async def test_a_task_given_the_wrong_json_fails_with_a_response_error(body: str) -> None:
    from aiocea_trio import SpotFetchAccount, SpotFetchKline, TaskState

    with respx.mock() as router:
        router.get(f"{SPOT}/api/v3/time").respond(json=TIME)
        router.get(f"{SPOT}/api/v3/klines").respond(content=body.encode())
        router.get(f"{SPOT}/api/v3/account").respond(content=b"[]")
        async with _client() as client:
            klines = SpotFetchKline(symbol="BTCUSDT", interval="1m")
            account = SpotFetchAccount()
            await klines.execute(client, raise_errors=False)
            await account.execute(client, raise_errors=False)
    for task, path in ((klines, "/api/v3/klines"), (account, "/api/v3/account")):
        assert task.state is TaskState.FAILED
        assert isinstance(task.error, BinanceResponseError), task.error
        assert path in str(task.error)


@pytest.mark.parametrize("body", ["{}", "null", '[{"a": 1}]', "[[1, 2]]"])
async def test_history_given_the_wrong_json_fails_with_a_response_error(
    body: str, autojump_clock: trio.testing.MockClock
) -> None:
    from aiocea_trio import download_klines

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SPOT}/api/v3/time").respond(json=TIME)
        router.get(f"{SPOT}/api/v3/klines").respond(content=body.encode())
        async with _client() as client:
            with pytest.raises(BinanceResponseError, match="/api/v3/klines"):
                await download_klines(
                    client, "BTCUSDT", "1m", start=1_690_000_000_000, end=1_690_003_600_000,
                    source="rest",
                )


async def test_a_failed_page_is_not_reported_as_a_gap(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    from aiocea_trio import download_klines

    def page(request: httpx.Request) -> httpx.Response:
        start = int(_params(request)["startTime"])
        if start > 1_690_000_000_000:  # every page but the first is refused
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        rows = [[start + i * 60_000, "1", "1", "1", "1", "1", start + i * 60_000 + 59_999,
                 "1", 1, "1", "1", "0"] for i in range(1000)]
        return httpx.Response(200, json=rows)

    caplog.set_level(logging.WARNING)
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SPOT}/api/v3/time").respond(json=TIME)
        router.get(f"{SPOT}/api/v3/klines").mock(side_effect=page)
        async with _client() as client:
            with pytest.raises(BinanceAPIError):
                await download_klines(
                    client, "BTCUSDT", "1m", start=1_689_999_960_000,
                    end=1_689_999_960_000 + 5000 * 60_000, source="rest", max_concurrency=1,
                )
    # The failure is the answer; the rows it prevented are not "missing from the exchange".
    assert not [r for r in caplog.records if "klines from" in r.getMessage()]
