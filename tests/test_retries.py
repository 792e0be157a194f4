"""Retries and order safety, one response at a time (respx); the simulator tests the loads."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import trio

from aiocea_trio.client import BinanceClient
from aiocea_trio.errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceRateLimitError,
    BinanceServerError,
    BinanceTimeoutError,
    OrderStatusUnknownError,
)
from aiocea_trio.limits import RateLimiter

KEY, SECRET = "key", "secret"
SPOT = "https://api.binance.com"
UNKNOWN = httpx.Response(503, json={"code": -1007, "msg": "Timeout; execution status unknown"})
NO_ORDER = httpx.Response(400, json={"code": -2013, "msg": "Order does not exist."})


def _client(**kwargs: object) -> BinanceClient:
    kwargs.setdefault("limiter", RateLimiter(learn_limits=False))
    return BinanceClient(KEY, SECRET, **kwargs)  # type: ignore[arg-type]


def _params(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode()))


def _accepted(order_id: int) -> Callable[[httpx.Request], httpx.Response]:
    """Binance's answer to a new order: it names the client order id that was sent."""

    def answer(request: httpx.Request) -> httpx.Response:
        cid = _params(request)["newClientOrderId"]
        return httpx.Response(200, json={"orderId": order_id, "clientOrderId": cid})

    return answer


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SPOT}/api/v3/time").respond(json={"serverTime": 1_700_000_000_000})
        yield router


async def test_get_is_retried_through_5xx_and_drops(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    route = mock.get(f"{SPOT}/api/v3/depth").mock(
        side_effect=[
            UNKNOWN,
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.Response(200, json={"bids": [], "asks": []}),
        ]
    )
    async with _client(retries=3) as client:
        assert await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"}) == {
            "bids": [],
            "asks": [],
        }
        assert client.statistics().retries == 3
    assert route.call_count == 4


async def test_get_gives_up_after_the_bound_with_the_last_error(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    route = mock.get(f"{SPOT}/api/v3/ping").mock(side_effect=httpx.ReadTimeout("slow"))
    start = trio.current_time()
    async with _client(retries=2, retry_wait_initial=1.0, retry_wait_max=10.0) as client:
        with pytest.raises(BinanceTimeoutError):
            await client.request("GET", "/api/v3/ping")
    assert route.call_count == 3
    # Exponential backoff with jitter: waits of about 1 s then 2 s (each up to +1 s jitter).
    assert 3.0 <= trio.current_time() - start <= 5.0


async def test_client_errors_are_not_retried(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    route = mock.get(f"{SPOT}/api/v3/depth").respond(
        400, json={"code": -1121, "msg": "Invalid symbol."}
    )
    async with _client() as client:
        with pytest.raises(BinanceAPIError):
            await client.request("GET", "/api/v3/depth", {"symbol": "X"})
    assert route.call_count == 1


async def test_ambiguous_order_failure_is_looked_up_not_resent(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(side_effect=httpx.ReadTimeout("lost"))

    def lookup(request: httpx.Request) -> httpx.Response:
        cid = _params(request)["origClientOrderId"]
        return httpx.Response(200, json={"orderId": 1, "clientOrderId": cid, "status": "FILLED"})

    looked = mock.get(f"{SPOT}/api/v3/order").mock(side_effect=lookup)
    async with _client() as client:
        order = await client.request(
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
            signed=True,
        )
        assert client.statistics().order_lookups == 1
    assert placed.call_count == 1
    sent_cid = _params(placed.calls.last.request)["newClientOrderId"]
    assert order == {"orderId": 1, "clientOrderId": sent_cid, "status": "FILLED"}
    assert _params(looked.calls.last.request)["symbol"] == "BTCUSDT"


async def test_order_missing_on_the_exchange_is_resent_with_the_same_id(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(
        side_effect=[UNKNOWN, _accepted(7)]
    )
    mock.get(f"{SPOT}/api/v3/order").mock(return_value=NO_ORDER)
    async with _client() as client:
        order = await client.request(
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": 1,
             "newClientOrderId": "mine-1"},
            signed=True,
        )
    assert order == {"orderId": 7, "clientOrderId": "mine-1"}
    assert [_params(c.request)["newClientOrderId"] for c in placed.calls] == ["mine-1", "mine-1"]


async def test_order_is_never_resent_when_the_lookup_fails(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(side_effect=httpx.ReadError("reset"))
    mock.get(f"{SPOT}/api/v3/order").mock(side_effect=httpx.ConnectError("down"))
    async with _client(retries=1) as client:
        with pytest.raises(OrderStatusUnknownError) as info:
            await client.request(
                "POST",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": 1,
                 "newClientOrderId": "mine-2"},
                signed=True,
            )
    assert placed.call_count == 1
    assert info.value.identifiers == {"origClientOrderId": "mine-2"}
    assert "nothing was resent" in str(info.value)


async def test_order_connect_error_is_resent_without_lookup(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(
        side_effect=[httpx.ConnectError("refused"), _accepted(1)]
    )
    looked = mock.get(f"{SPOT}/api/v3/order")
    async with _client() as client:
        await client.request(
            "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY"}, signed=True
        )
    assert placed.call_count == 2
    assert looked.call_count == 0


async def test_order_rejections_and_429s_are_not_retried(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    placed = mock.post(f"{SPOT}/api/v3/order").mock(
        side_effect=[
            httpx.Response(400, json={"code": -2010, "msg": "insufficient balance"}),
            httpx.Response(429, json={"code": -1015, "msg": "Too many new orders"}),
        ]
    )
    async with _client() as client:
        with pytest.raises(BinanceAPIError):
            await client.request("POST", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True)
        with pytest.raises(BinanceRateLimitError):
            await client.request("POST", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True)
    assert placed.call_count == 2


async def test_ambiguous_cancel_checks_the_order_first(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    cancel = mock.delete(f"{SPOT}/api/v3/order").mock(side_effect=[UNKNOWN])
    mock.get(f"{SPOT}/api/v3/order").respond(json={"orderId": 5, "status": "CANCELED"})
    async with _client() as client:
        order = await client.request(
            "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 5}, signed=True
        )
    assert order["status"] == "CANCELED"
    assert cancel.call_count == 1


async def test_ambiguous_cancel_of_a_still_open_order_cancels_again(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    cancel = mock.delete(f"{SPOT}/api/v3/order").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={"orderId": 5, "status": "CANCELED"})]
    )
    mock.get(f"{SPOT}/api/v3/order").respond(json={"orderId": 5, "status": "NEW"})
    async with _client() as client:
        order = await client.request(
            "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 5}, signed=True
        )
    assert order == {"orderId": 5, "status": "CANCELED"}
    assert cancel.call_count == 2


async def test_429_pauses_the_market_then_resumes(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    times: list[float] = []
    responses = iter(
        [
            httpx.Response(429, headers={"Retry-After": "30"}, json={"code": -1003, "msg": "x"}),
            httpx.Response(200, json={"price": "1"}),
            httpx.Response(200, json={"price": "2"}),
        ]
    )

    def record(request: httpx.Request) -> httpx.Response:
        times.append(trio.current_time())
        return next(responses)

    mock.get(f"{SPOT}/api/v3/ticker/price").mock(side_effect=record)
    async with _client() as client:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.request, "GET", "/api/v3/ticker/price")
            await trio.sleep(1)
            # A second request while the market is paused waits instead of being sent.
            nursery.start_soon(client.request, "GET", "/api/v3/ticker/price")
        stats = client.statistics().limiter.markets["spot"]
    assert stats.rate_limited == 1
    assert len(times) == 3
    assert all(t - start >= 30 for t in times[1:])


async def test_418_stops_the_market_until_the_ban_ends(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    until: list[int] = []

    def ban(request: httpx.Request) -> httpx.Response:
        until.append(client.server_time_ms() + 120_000)
        msg = f"Way too much request weight used; IP banned until {until[0]}."
        return httpx.Response(418, headers={"Retry-After": "120"}, json={"code": -1003, "msg": msg})

    route = mock.get(f"{SPOT}/api/v3/klines").mock(side_effect=ban)
    ping = mock.get(f"{SPOT}/api/v3/ping").respond(json={})
    fapi = mock.get("https://fapi.binance.com/fapi/v1/ping").respond(json={})
    client = _client()
    async with client:
        with pytest.raises(BinanceBanError) as first:
            await client.request("GET", "/api/v3/klines", {"symbol": "BTCUSDT"})
        with pytest.raises(BinanceBanError) as second:
            await client.request("GET", "/api/v3/ping")
        # Other markets are banned separately and keep working.
        await client.request("GET", "/fapi/v1/ping")
        assert client.statistics().limiter.markets["spot"].banned == 1
        await trio.sleep(121)
        await client.request("GET", "/api/v3/ping")  # the ban is over
    assert route.call_count == 1
    assert first.value.banned_until == until[0]
    assert second.value.banned_until == until[0]
    assert str(until[0]) in str(second.value)
    assert fapi.call_count == 1
    assert ping.call_count == 1


async def test_limits_are_learned_once_from_exchange_info(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    info = mock.get("https://fapi.binance.com/fapi/v1/exchangeInfo").respond(
        json={
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 10,
                 "limit": 50},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 7},
            ]
        }
    )
    mock.get("https://fapi.binance.com/fapi/v1/ping").respond(json={})
    async with BinanceClient() as client, trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(client.request, "GET", "/fapi/v1/ping")
    assert info.call_count == 1
    limits = client.limiter.limits("usdm")
    assert (limits.weight, limits.window, limits.orders) == (50, 10.0, ((60.0, 7),))


async def test_failed_learning_falls_back_to_published_limits(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    info = mock.get(f"{SPOT}/api/v3/exchangeInfo").respond(500, text="down")
    mock.get(f"{SPOT}/api/v3/ping").respond(json={})
    async with BinanceClient(retries=2) as client:
        await client.request("GET", "/api/v3/ping")
    assert client.limiter.limits("spot").weight == 6000
    assert info.call_count == 3  # retried like any GET first


async def test_learning_is_retried_through_a_passing_failure(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    limits = {"rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND",
                              "intervalNum": 10, "limit": 50}], "serverTime": 1_700_000_000_000}
    info = mock.get(f"{SPOT}/api/v3/exchangeInfo")
    info.side_effect = [httpx.ConnectError("reset"), httpx.Response(503), httpx.Response(200, json=limits)]
    mock.get(f"{SPOT}/api/v3/ping").respond(json={})
    async with BinanceClient() as client:
        await client.request("GET", "/api/v3/ping")
        assert abs(client.server_time_ms() - 1_700_000_000_000) < 60_000  # aligned on the way
    assert client.limiter.limits("spot").weight == 50
    assert info.call_count == 3
    assert client.statistics().retries == 2


async def test_server_error_on_a_post_that_is_not_an_order_is_not_retried(
    mock: respx.MockRouter, autojump_clock: trio.testing.MockClock
) -> None:
    route = mock.post(f"{SPOT}/api/v3/order/test").mock(return_value=UNKNOWN)
    async with _client() as client:
        with pytest.raises(BinanceServerError):
            await client.request("POST", "/api/v3/order/test", {"symbol": "X"}, signed=True)
    assert route.call_count == 1
