"""The client's layers, each alone: decode, the rate gate, retries, exactly-once orders,
the session, the clock, the order budget, the header parser and the value objects.

Each layer is given a fake inner layer (a list of scripted answers), so that what it does
with every outcome is seen without a transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
import trio
import trio.testing

from aiocea_trio import endpoints
from aiocea_trio._layers.call import Call, Counters
from aiocea_trio._layers.gate import RateGate
from aiocea_trio._layers.orders import ExactlyOnce
from aiocea_trio._layers.retry import Retrying, retryable
from aiocea_trio._layers.routing import Router
from aiocea_trio._layers.session import Session
from aiocea_trio._layers.wire import decode
from aiocea_trio.client import BinanceClient
from aiocea_trio.clock import ClockSync, ExchangeClock, TimeSync
from aiocea_trio.endpoints import CANCEL_ORDER, KLINES, NEW_ORDER, find
from aiocea_trio.errors import (
    BinanceAPIError,
    BinanceBanError,
    BinanceRateLimitError,
    BinanceResponseError,
    BinanceServerError,
    BinanceTransportError,
    InsecureTransportError,
    OrderStatusUnknownError,
)
from aiocea_trio.limits import (
    MAX_RATE_LIMIT_PAUSE,
    MarketLimits,
    OrderBudget,
    RateLimiter,
    header_counts,
)
from aiocea_trio.markets import Market
from aiocea_trio.retries import OrderSafety, RetryPolicy

SPOT = Market.SPOT
BASE = "https://api.binance.com"


def _call(market: Market, method: str, path: str, **params: object) -> Call:
    return Call(find(market, method, path), BASE, params, signed=True)


class Scripted:
    """A fake inner layer: answers (or raises) from a script, recording each call."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> Any:
        self.calls.append(call)
        await trio.lowlevel.checkpoint()
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step(call) if callable(step) else step


def _order(call: Call, status: str = "NEW") -> dict[str, Any]:
    cid = call.params.get("newClientOrderId") or call.params.get("origClientOrderId")
    return {"orderId": 1, "clientOrderId": cid, "status": status}


def _lost() -> BinanceTransportError:
    return BinanceTransportError("connection reset", market="spot", method="POST", path="/x")


# -- decode --------------------------------------------------------------------------------


def _response(status: int, body: bytes | str, **headers: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers=headers)


KLINE_CALL = Call(KLINES[SPOT], BASE)


def test_decode_returns_the_json_of_a_2xx() -> None:
    assert decode(_response(200, "[1, 2]"), KLINE_CALL) == [1, 2]
    # Positive codes are successes some endpoints report this way.
    ok = {"code": 200, "msg": "success"}
    assert decode(_response(200, '{"code": 200, "msg": "success"}'), KLINE_CALL) == ok


def test_decode_an_error_payload_in_a_200_is_an_error() -> None:
    with pytest.raises(BinanceAPIError) as info:
        decode(_response(200, '{"code": -1121, "msg": "Invalid symbol."}'), KLINE_CALL)
    assert (info.value.status, info.value.code) == (200, -1121)
    assert info.value.path == "/api/v3/klines"


def test_decode_html_is_a_response_error_with_a_scrubbed_excerpt() -> None:
    body = "<html>" + "x" * 500 + " sig=abcdef0123 </html>"
    with pytest.raises(BinanceResponseError) as info:
        decode(_response(502, body), KLINE_CALL, signature="abcdef0123")
    assert info.value.status == 502
    assert "abcdef0123" not in str(info.value)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(418, BinanceBanError), (429, BinanceRateLimitError), (503, BinanceServerError)],
)
def test_decode_types_errors_by_status(status: int, kind: type[BinanceAPIError]) -> None:
    with pytest.raises(kind):
        decode(_response(status, '{"code": -1003, "msg": "slow down"}'), KLINE_CALL)


def test_decode_caps_retry_after_and_reads_a_ban_end() -> None:
    with pytest.raises(BinanceRateLimitError) as limited:
        decode(_response(429, "", **{"Retry-After": "1e9"}), KLINE_CALL)
    assert limited.value.retry_after == MAX_RATE_LIMIT_PAUSE
    banned = '{"code": -1003, "msg": "IP banned until 1700000123456."}'
    with pytest.raises(BinanceBanError) as ban:
        decode(_response(418, banned), KLINE_CALL)
    assert ban.value.banned_until == 1_700_000_123_456


# -- the header parser and the order budget ------------------------------------------------


def test_one_parser_reads_weight_and_order_headers() -> None:
    headers = {
        "X-MBX-USED-WEIGHT-1M": "12",  # M is a minute in these headers
        "x-mbx-used-weight-10s": "3",
        "X-MBX-ORDER-COUNT-10S": "4",
        "X-MBX-ORDER-COUNT-1D": "40",
        "X-MBX-ORDER-COUNT-XS": "5",  # unreadable: skipped
        "X-MBX-ORDER-COUNT-1Q": "6",
        "X-MBX-USED-WEIGHT-1M-EXTRA": "7",
    }
    assert sorted(header_counts(headers, "x-mbx-used-weight-")) == [(10, 3), (60, 12)]
    assert sorted(header_counts(headers, "x-mbx-order-count-")) == [(10, 4), (86400, 40)]


async def test_the_order_budget_holds_an_order_while_its_window_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = OrderBudget(lambda: 1_700_000_001_000 + int(trio.current_time() * 1000))
    limits = MarketLimits(6000, 60.0, orders=((10.0, 2),))
    await budget.reserve(SPOT, limits)
    await budget.reserve(SPOT, limits)
    assert budget.current() == {"spot:10s": 2}
    assert trio.current_time() == 0
    await budget.reserve(SPOT, limits)  # the window is full: wait for the next one
    assert 9 < trio.current_time() < 10  # (+ the guard)
    assert budget.current() == {"spot:10s": 1}


async def test_the_order_budget_takes_the_exchanges_higher_count() -> None:
    budget = OrderBudget(lambda: 1_700_000_001_000)
    budget.reconcile(SPOT, {"X-MBX-ORDER-COUNT-10S": "7"})
    budget.reconcile(SPOT, {"X-MBX-ORDER-COUNT-10S": "3"})
    assert budget.current() == {"spot:10s": 7}


# -- the rate gate ---------------------------------------------------------------------------


class FakeAttempt:
    """Answers with a response (shown to ``seen``) or raises, like ``wire.Attempt``."""

    def __init__(self, response: httpx.Response | None, error: BaseException | None = None):
        self.response, self.error = response, error

    async def __call__(
        self, call: Call, seen: Callable[[httpx.Response], None] | None = None
    ) -> Any:
        if self.response is not None and seen is not None:
            seen(self.response)
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response.json()


def _gate(attempt: FakeAttempt, limiter: RateLimiter) -> tuple[RateGate, OrderBudget]:
    orders = OrderBudget(lambda: 1_700_000_001_000)
    return RateGate(
        attempt, limiter=limiter, orders=orders, now_ms=lambda: 1_700_000_001_000
    ), orders


async def test_the_gate_reserves_the_registry_weight_and_settles_with_the_headers() -> None:
    limiter = RateLimiter(learn_limits=False)
    answer = httpx.Response(200, json=[], headers={"X-MBX-USED-WEIGHT-1M": "30"})
    gate, _ = _gate(FakeAttempt(answer), limiter)
    assert await gate(Call(find(SPOT, "GET", "/api/v3/depth"), BASE, {"limit": 500})) == []
    spot = limiter.statistics().markets["spot"]
    assert (spot.used_weight, spot.in_flight_weight, spot.requests) == (30, 0, 1)


async def test_the_gate_counts_orders_and_refunds_a_free_success() -> None:
    limiter = RateLimiter(learn_limits=False)
    answer = httpx.Response(200, json={"orderId": 1}, headers={"X-MBX-ORDER-COUNT-10S": "1"})
    gate, orders = _gate(FakeAttempt(answer), limiter)
    await gate(Call(NEW_ORDER[SPOT], BASE, {"symbol": "BTCUSDT"}, signed=True))
    assert orders.current()["spot:10s"] == 1
    assert limiter.statistics().markets["spot"].used_weight == 0  # free when accepted


async def test_the_gate_tells_the_limiter_of_a_429_and_releases() -> None:
    limiter = RateLimiter(learn_limits=False)
    error = BinanceRateLimitError(429, -1003, "slow", retry_after=7.0, **KLINE_CALL.where)
    gate, _ = _gate(FakeAttempt(httpx.Response(429), error), limiter)
    with pytest.raises(BinanceRateLimitError):
        await gate(KLINE_CALL)
    spot = limiter.statistics().markets["spot"]
    assert (spot.rate_limited, spot.in_flight_weight) == (1, 0)
    assert spot.paused_until is not None


async def test_a_cancelled_caller_sends_nothing_and_reserves_nothing() -> None:
    limiter = RateLimiter(learn_limits=False)
    attempt = FakeAttempt(httpx.Response(200, json=[]))
    sent: list[Call] = []

    async def counted(call: Call, seen: Callable[[httpx.Response], None] | None = None) -> Any:
        sent.append(call)
        return await attempt(call, seen)

    gate, _ = _gate(attempt, limiter)
    gate._inner = counted
    with trio.CancelScope() as scope:
        scope.cancel()
        await gate(KLINE_CALL)  # a request that fits is admitted without waiting, but
    assert scope.cancelled_caught  # the cancellation is seen before anything is reserved
    assert sent == []
    assert "spot" not in limiter.statistics().markets  # the limiter was not even asked
    assert await gate(KLINE_CALL) == []
    assert len(sent) == 1
    assert limiter.statistics().markets["spot"].requests == 1


async def test_the_gate_waits_in_acquire_when_the_budget_is_spent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter({"spot": 10}, window=10, learn_limits=False)

    def now_ms() -> int:
        return int(1_700_000_001_000 + trio.current_time() * 1000)

    gate = RateGate(
        FakeAttempt(httpx.Response(200, json=[])),
        limiter=limiter,
        orders=OrderBudget(now_ms),
        now_ms=now_ms,
    )
    depth = Call(find(SPOT, "GET", "/api/v3/depth"), BASE, {"limit": 100})  # weight 5
    for _ in range(3):
        await gate(depth)
    assert trio.current_time() > 0  # the third did not fit the first window
    assert limiter.statistics().markets["spot"].waits == 1


# -- retries -------------------------------------------------------------------------------


def _server_error(call: Call) -> BinanceServerError:
    return BinanceServerError(503, -1, "busy", **call.where)


async def test_retrying_retries_a_get_and_counts(autojump_clock: trio.testing.MockClock) -> None:
    inner = Scripted(_server_error(KLINE_CALL), _lost(), [1])
    counters = Counters()
    retrying = Retrying(inner, policy=RetryPolicy(attempts=3), counters=counters)
    assert await retrying(KLINE_CALL) == [1]
    assert (len(inner.calls), counters.retries) == (3, 2)


async def test_a_first_failure_handed_to_the_policy_counts_as_an_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = Scripted(_server_error(KLINE_CALL), [2])
    policy = RetryPolicy(attempts=2)
    first = _server_error(KLINE_CALL)
    with pytest.raises(BinanceServerError):  # two attempts: the one handed over, one more
        await policy.run(lambda: inner(KLINE_CALL), retryable=retryable, failed=first)
    assert len(inner.calls) == 1
    assert await policy.run(lambda: inner(KLINE_CALL), retryable=retryable, failed=first) == [2]


async def test_retrying_sends_other_methods_once() -> None:
    call = _call(SPOT, "POST", "/api/v3/order/test")
    inner = Scripted(_server_error(call))
    retrying = Retrying(inner, policy=RetryPolicy(attempts=5), counters=Counters())
    with pytest.raises(BinanceServerError):
        await retrying(call)
    assert len(inner.calls) == 1


# -- exactly once ----------------------------------------------------------------------------


def _exactly_once(inner: Scripted, counters: Counters | None = None) -> ExactlyOnce:
    async def prepare(call: Call) -> None:
        await trio.lowlevel.checkpoint()

    return ExactlyOnce(
        inner,
        prepare=prepare,
        safety=OrderSafety(attempts=3, lookup_delay=0.5),
        new_id=lambda: "fixed-id",
        counters=counters or Counters(),
    )


async def test_a_lost_placement_is_looked_up_not_resent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = Scripted(_lost(), _order)
    counters = Counters()
    found = await _exactly_once(inner, counters)(Call(NEW_ORDER[SPOT], BASE, {"symbol": "X"}))
    assert found["clientOrderId"] == "fixed-id"
    assert [(c.method, c.path) for c in inner.calls] == [
        ("POST", "/api/v3/order"),
        ("GET", "/api/v3/order"),
    ]
    assert inner.calls[1].params == {"symbol": "X", "origClientOrderId": "fixed-id"}
    assert counters.order_lookups == 1
    assert trio.current_time() == 0.5  # the lookup delay


async def test_a_placement_the_exchange_lacks_is_resent_with_the_same_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    missing = BinanceAPIError(400, -2013, "Order does not exist.", **KLINE_CALL.where)
    inner = Scripted(_lost(), missing, _order)
    counters = Counters()
    await _exactly_once(inner, counters)(Call(NEW_ORDER[SPOT], BASE, {"symbol": "X"}))
    posts = [c for c in inner.calls if c.method == "POST"]
    assert [c.params["newClientOrderId"] for c in posts] == ["fixed-id", "fixed-id"]
    assert counters.retries == 1


async def test_a_failed_lookup_raises_status_unknown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = Scripted(_lost(), _lost())
    with pytest.raises(OrderStatusUnknownError) as info:
        await _exactly_once(inner)(Call(NEW_ORDER[SPOT], BASE, {"symbol": "X"}))
    assert info.value.identifiers == {"origClientOrderId": "fixed-id"}
    assert len(inner.calls) == 2  # never resent


async def test_a_lost_cancel_of_a_cancelled_order_is_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = Scripted(_lost(), lambda call: _order(call, "CANCELED"))
    call = Call(CANCEL_ORDER[Market.USDM], BASE, {"symbol": "X", "origClientOrderId": "a"})
    assert (await _exactly_once(inner)(call))["status"] == "CANCELED"
    assert [c.method for c in inner.calls] == ["DELETE", "GET"]


async def test_rejections_and_other_requests_pass_straight_through() -> None:
    rejected = BinanceAPIError(400, -2010, "insufficient balance", **KLINE_CALL.where)
    inner = Scripted(rejected, [1])
    layer = _exactly_once(inner)
    with pytest.raises(BinanceAPIError):
        await layer(Call(NEW_ORDER[SPOT], BASE, {"symbol": "X"}))
    assert await layer(KLINE_CALL) == [1]
    assert len(inner.calls) == 2


async def test_an_answer_about_another_order_is_ambiguous(
    autojump_clock: trio.testing.MockClock,
) -> None:
    other = {"orderId": 9, "clientOrderId": "someone-else"}
    inner = Scripted(other, _order)
    answer = await _exactly_once(inner)(Call(NEW_ORDER[SPOT], BASE, {"symbol": "X"}))
    assert answer["clientOrderId"] == "fixed-id"
    assert inner.calls[1].method == "GET"


# -- the session -----------------------------------------------------------------------------


def _session(inner: Scripted, limiter: RateLimiter, sync: ClockSync) -> Session:
    return Session(
        inner,
        bases=dict.fromkeys(Market, BASE),
        limiter=limiter,
        sync=sync,
        local_ms=sync.clock.local_ms,
        policy=RetryPolicy(attempts=1),
        counters=Counters(),
    )


async def test_the_session_learns_limits_once_and_syncs_before_signing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    info = {
        "serverTime": 1_700_000_000_000,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 50}
        ],
    }
    limiter = RateLimiter()
    sync = ClockSync(limiter.clock, TimeSync())
    sync.reset()
    inner = Scripted(info, {"serverTime": 1_700_000_000_500}, {"balances": []}, [1])
    session = _session(inner, limiter, sync)
    assert await session(_call(SPOT, "GET", "/api/v3/account")) == {"balances": []}
    assert await session(KLINE_CALL) == [1]
    paths = [c.path for c in inner.calls]
    assert paths == ["/api/v3/exchangeInfo", "/api/v3/time", "/api/v3/account", "/api/v3/klines"]
    assert limiter.limits(SPOT).weight == 50
    assert limiter.clock.now_ms() == 1_700_000_000_500


async def test_the_session_resyncs_once_on_minus_1021(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(learn_limits=False)
    sync = ClockSync(limiter.clock, TimeSync(auto=False))
    sync.reset()
    stale = BinanceAPIError(400, -1021, "outside of the recvWindow", **KLINE_CALL.where)
    inner = Scripted(stale, {"serverTime": 1_700_000_000_000}, {"ok": True})
    assert await _session(inner, limiter, sync)(_call(SPOT, "GET", "/api/v3/account")) == {
        "ok": True
    }
    assert [c.path for c in inner.calls] == ["/api/v3/account", "/api/v3/time", "/api/v3/account"]


# -- the clock -------------------------------------------------------------------------------


async def test_the_clock_measures_from_the_midpoint_and_tells_its_listeners(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = ExchangeClock()
    clock.start()
    changes: list[int] = []
    clock.on_change(lambda: changes.append(clock.offset_ms))
    assert not clock.known
    local = clock.local_ms()
    clock.measured(local + 5_100, local, local + 200)
    assert (clock.known, clock.offset_ms, changes) == (True, 5_000, [5_000])
    clock.measured(local + 5_100, local, local + 200)  # the same offset: nobody is told
    assert changes == [5_000]
    assert clock.now_ms() - clock.local_ms() == 5_000


async def test_a_clock_sync_runs_once_for_concurrent_callers_and_per_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sync = ClockSync(ExchangeClock(), TimeSync(interval=60))
    sync.reset()
    runs = 0

    async def measure() -> None:
        nonlocal runs
        runs += 1
        await trio.sleep(1)
        sync.synced(sync.clock.local_ms(), sync.clock.local_ms(), sync.clock.local_ms())

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(sync.ensure, measure)
    assert runs == 1
    await trio.sleep(30)
    await sync.ensure(measure)
    assert runs == 1
    await trio.sleep(31)
    await sync.ensure(measure)
    assert runs == 2
    off = ClockSync(ExchangeClock(), TimeSync(auto=False))
    off.reset()
    await off.ensure(measure)
    assert runs == 2


async def test_clients_sharing_a_limiter_read_one_clock(mock: respx.MockRouter) -> None:
    mock.get(f"{BASE}/api/v3/time").respond(json={"serverTime": 1_700_000_000_000})
    shared = RateLimiter(learn_limits=False)
    async with BinanceClient(limiter=shared) as one, BinanceClient(limiter=shared) as two:
        await one.sync_time()
        assert two.time_offset_ms == one.time_offset_ms
        assert abs(one.server_time_ms() - 1_700_000_000_000) < 1_000
        assert abs(two.server_time_ms() - one.server_time_ms()) <= 1


# -- the value objects and the facade -----------------------------------------------------


def test_value_objects_validate() -> None:
    with pytest.raises(ValueError, match="interval"):
        TimeSync(interval=0)
    with pytest.raises(TypeError, match="interval"):
        TimeSync(interval="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempts"):
        OrderSafety(attempts=0)
    with pytest.raises(ValueError, match="lookup_delay"):
        OrderSafety(lookup_delay=float("nan"))
    assert TimeSync(interval=None).interval is None


def test_keywords_build_the_value_objects_and_the_objects_win() -> None:
    client = BinanceClient(
        retries=5, retry_wait_initial=0.5, time_sync_interval=60, order_attempts=2
    )
    assert client.retry_policy == RetryPolicy(
        attempts=6, wait_initial=0.5, wait_max=5.0, wait_jitter=0.5
    )
    assert client.time_sync == TimeSync(auto=True, interval=60)
    assert client.order_safety == OrderSafety(attempts=2, lookup_delay=1.0)
    assert (client.retries, client.order_attempts, client.time_sync_interval) == (5, 2, 60)
    policy = RetryPolicy(attempts=2)
    client = BinanceClient(
        retry=policy, time_sync=TimeSync(auto=False), order_safety=OrderSafety(lookup_delay=0)
    )
    assert client.retry_policy is policy
    assert (client.retries, client.auto_sync_time, client.order_lookup_delay) == (1, False, 0)
    with pytest.raises(ValueError, match="order_attempts"):
        BinanceClient(order_attempts=0)
    with pytest.raises(TypeError, match="retries"):
        BinanceClient(retries=1.5)  # type: ignore[arg-type]


@pytest.fixture
def mock() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


async def test_call_takes_a_registry_endpoint(mock: respx.MockRouter) -> None:
    route = mock.get("https://fapi.binance.com/fapi/v1/klines").respond(json=[[1]])
    async with BinanceClient(limiter=RateLimiter(learn_limits=False)) as client:
        answer = await client.call(KLINES[Market.USDM], {"symbol": "BTCUSDT", "limit": 99})
        assert answer == [[1]]
        assert dict(route.calls.last.request.url.params) == {"symbol": "BTCUSDT", "limit": "99"}
        stats = client.statistics()
    assert stats.used_weight("usdm") == 1  # limit < 100: weight 1 on futures


async def test_call_signs_a_signed_endpoint_and_places_orders_once(
    mock: respx.MockRouter,
) -> None:
    mock.get(f"{BASE}/api/v3/time").respond(json={"serverTime": 1_700_000_000_000})

    def placed(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert "signature" in params
        return httpx.Response(200, json={"orderId": 1, "clientOrderId": params["newClientOrderId"]})

    route = mock.post(f"{BASE}/api/v3/order").mock(side_effect=placed)
    async with BinanceClient("key", "secret", limiter=RateLimiter(learn_limits=False)) as client:
        answer = await client.call(NEW_ORDER[SPOT], {"symbol": "BTCUSDT", "side": "BUY"})
    assert answer["clientOrderId"].startswith("aiocea-")
    assert route.call_count == 1


async def test_call_refuses_a_signed_endpoint_without_a_signer() -> None:
    async with BinanceClient(limiter=RateLimiter(learn_limits=False)) as client:
        with pytest.raises(ValueError, match="api_secret= or signer="):
            await client.call(endpoints.QUERY_ORDER[SPOT], {"symbol": "BTCUSDT"})


def test_the_router_finds_the_entry_and_refuses_the_key_in_clear() -> None:
    router = Router(dict.fromkeys(Market, "https://h"), "key", None, allow_insecure_http=False)
    endpoint, base, extra = router.route("POST", "/fapi/v1/order")
    assert (endpoint, base, extra) == (NEW_ORDER[Market.USDM], "https://h", "")
    endpoint, base, extra = router.route("GET", "http://127.0.0.1:9/api/v3/depth?limit=5")
    assert (endpoint.weight, base, extra) == (
        find(SPOT, "GET", "/api/v3/depth").weight,
        "http://127.0.0.1:9",
        "limit=5",
    )
    with pytest.raises(InsecureTransportError):
        router.route("GET", "http://example.com/api/v3/ping")
