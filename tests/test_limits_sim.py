"""Never banned, never double-ordered: the client against the simulator with tight limits.

Windows are a few seconds long and budgets small, so a burst crosses many
windows; ``autojump_clock`` makes the waiting free.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from aiocea_trio.client import BinanceClient
from aiocea_trio.errors import BinanceBanError
from aiocea_trio.limits import RateLimiter
from aiocea_trio.sim import FaultConfig, SimExchange

TIGHT = {"spot": 120, "usdm": 60, "coinm": 60}

MIXED: list[tuple[str, dict[str, Any]]] = [
    ("/api/v3/ping", {}),
    ("/api/v3/time", {}),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5}),
    ("/api/v3/klines", {"symbol": "ETHUSDT", "interval": "1m", "limit": 10}),
    ("/api/v3/ticker/price", {"symbol": "BNBUSDT"}),
    ("/api/v3/avgPrice", {"symbol": "BTCUSDT"}),
    ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "5m", "limit": 499}),
    ("/fapi/v1/depth", {"symbol": "ETHUSDT", "limit": 100}),
    ("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}),
    ("/dapi/v1/klines", {"symbol": "BTCUSD_PERP", "interval": "1h", "limit": 1000}),
    ("/dapi/v1/ticker/price", {"symbol": "ETHUSD_PERP"}),
    ("/dapi/v1/openInterest", {"symbol": "BTCUSD_PERP"}),
]


async def _burst(client: BinanceClient, count: int, workers: int, seed: int) -> int:
    rng = random.Random(seed)
    calls = [rng.choice(MIXED) for _ in range(count)]
    done = 0

    async def worker(mine: list[tuple[str, dict[str, Any]]]) -> None:
        nonlocal done
        for path, params in mine:
            await client.request("GET", path, params)
            done += 1

    async with trio.open_nursery() as nursery:
        for w in range(workers):
            nursery.start_soon(worker, calls[w::workers])
    return done


@pytest.mark.parametrize("into_window_ms", [0, 25, 2_500])
async def test_a_burst_of_1000_mixed_requests_gets_no_429(
    into_window_ms: int, autojump_clock: trio.testing.MockClock
) -> None:
    # Starting 0 or 25 ms into a window, the first requests go out between the exchange's
    # roll and the limiter's (which rolls 1 %, 50 ms, later), while it learns the limits.
    sim = SimExchange(
        weight_window=5, weight_limits=TIGHT, start_time_ms=1_700_000_000_000 + into_window_ms
    )
    async with sim.client() as client:
        assert await _burst(client, 1_000, workers=40, seed=1) == 1_000
        stats = client.statistics()
    assert sim.limiter.answered_429 == 0
    assert sim.limiter.answered_418 == 0
    # The limits were learned from the simulator's exchangeInfo, not Binance's defaults.
    assert {m: s.limit for m, s in stats.limiter.markets.items()} == TIGHT
    assert all(s.window == 5 for s in stats.limiter.markets.values())
    assert sum(s.waits for s in stats.limiter.markets.values()) > 0  # the budget did bind
    assert stats.retries == 0


async def test_two_clients_sharing_a_limiter_stay_under_one_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The exchange's clock is years from this machine's: only the client that learns the
    # limits measures it, and the other must count its weight in the same windows.
    sim = SimExchange(weight_window=5, weight_limits=TIGHT, start_time_ms=1_700_000_001_234)
    shared = RateLimiter()
    async with sim.client(limiter=shared) as one, sim.client(limiter=shared) as two:
        for path in ("/api/v3/ping", "/fapi/v1/ping", "/dapi/v1/ping"):
            await one.request("GET", path)  # one learns every market's limits
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_burst, one, 300, 10, 2)
            nursery.start_soon(_burst, two, 300, 10, 3)
        assert abs(one.server_time_ms() - two.server_time_ms()) <= 1
    assert sim.limiter.answered_429 == 0
    assert sum(s.requests for s in shared.statistics().markets.values()) >= 600


async def test_separate_limiters_on_one_ip_would_be_rate_limited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The control for the test above: the simulator does count per IP, so two
    # unshared budgets overrun it; the clients then back off and still finish.
    sim = SimExchange(weight_window=5, weight_limits=TIGHT)
    async with sim.client(retries=10) as one, sim.client(retries=10) as two:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_burst, one, 300, 10, 2)
            nursery.start_soon(_burst, two, 300, 10, 3)
    assert sim.limiter.answered_429 > 0
    assert sim.limiter.answered_418 == 0


async def test_a_forced_429_pauses_then_resumes(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange(weight_window=10, weight_limits={"spot": 50})
    # A limiter that believes the budget is huge: the exchange's 429 must stop it.
    limiter = RateLimiter({"spot": 10_000}, window=10, learn_limits=False)
    async with sim.client(limiter=limiter) as client:
        start = trio.current_time()
        for _ in range(80):
            await client.request("GET", "/api/v3/ping")
        elapsed = trio.current_time() - start
        stats = client.statistics()
    assert sim.limiter.answered_429 == 1  # one, and no second in a row
    assert sim.limiter.answered_418 == 0
    assert stats.limiter.markets["spot"].rate_limited == 1
    assert stats.retries == 1
    assert elapsed >= 1  # it waited for Retry-After before going on


async def test_a_418_stops_the_market_and_says_until_when(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimExchange(weight_window=60, weight_limits={"spot": 10}, ban_grace=0)
    # Someone else on this IP ignores the 429s and gets it banned.
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as rude:
        statuses = [(await rude.get("/api/v3/ping")).status_code for _ in range(13)]
    assert statuses[-1] == 418
    async with sim.client(retries=0) as client:
        seen = sim.limiter.answered_418
        with pytest.raises(BinanceBanError) as first:
            await client.request("GET", "/api/v3/time")
        assert sim.limiter.answered_418 == seen + 1
        with pytest.raises(BinanceBanError) as second:
            await client.request("GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
        assert sim.limiter.answered_418 == seen + 1  # refused locally: nothing was sent
        until = first.value.banned_until
        assert until is not None
        assert second.value.banned_until == until
        assert str(until) in str(second.value)
        # Other markets are not banned.
        await client.request("GET", "/fapi/v1/ping")
        await trio.sleep((until - client.server_time_ms()) / 1000 + 61)
        await client.request("GET", "/api/v3/ping")


@pytest.mark.parametrize("start_ms", [1_700_000_000_000, 1_700_000_009_500])
async def test_orders_are_placed_exactly_once_through_lost_responses(
    start_ms: int, autojump_clock: trio.testing.MockClock
) -> None:
    # 200 orders cross several 10-second ORDERS windows (100 per window on spot): the
    # client must count the orders whose responses were lost, or it gets a -1015.
    faults = FaultConfig(lost_order_response_rate=0.2, orders_only=True)
    sim = SimExchange(faults=faults, seed=7, start_time_ms=start_ms)
    placed: list[dict[str, Any]] = []
    async with sim.client(order_lookup_delay=0.5) as client:
        for i in range(200):
            placed.append(
                await client.request(
                    "POST",
                    "/api/v3/order",
                    {
                        "symbol": "BTCUSDT",
                        "side": "BUY" if i % 2 else "SELL",
                        "type": "LIMIT",
                        "timeInForce": "GTC",
                        "quantity": "0.001",
                        "price": "10000" if i % 2 else "500000",  # rests: far from the market
                    },
                    signed=True,
                )
            )
        stats = client.statistics()
    orders = list(sim.account().orders.values())
    assert len(orders) == 200
    ids = Counter(o.client_order_id for o in orders)
    assert all(n == 1 for n in ids.values())
    assert set(ids) == {p["clientOrderId"] for p in placed}
    assert stats.order_lookups >= 20  # about 40 responses were lost and recovered


async def test_gets_succeed_through_5xx_and_drops(autojump_clock: trio.testing.MockClock) -> None:
    faults = FaultConfig(error_rate=0.1, drop_rate=0.1)
    sim = SimExchange(faults=faults, seed=3)
    async with sim.client(retries=6) as client:
        results = [
            await client.request("GET", "/fapi/v1/ticker/price", {"symbol": "BTCUSDT"})
            for _ in range(200)
        ]
        stats = client.statistics()
    assert all(r["symbol"] == "BTCUSDT" for r in results)
    assert stats.retries >= 20  # about 40 attempts failed and were retried


@pytest.mark.parametrize("skew_ms", [-5, 5])
async def test_orders_near_window_boundaries_with_clocks_a_little_apart(
    skew_ms: int, autojump_clock: trio.testing.MockClock
) -> None:
    # Clocks agree to a few ms at best: an order sent at a boundary may land in either
    # window. 5 orders per 10 s, 30 orders back to back: never a -1015.
    sim = SimExchange(order_limits={"spot": [(10, 5)]}, start_time_ms=1_700_000_009_000)
    async with sim.client() as client:
        exact = client.server_time_ms
        client.server_time_ms = lambda: exact() + skew_ms  # type: ignore[method-assign]
        began = trio.current_time()
        for i in range(30):
            await client.request(
                "POST",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "0.001", "price": str(10_000 + i)},
                signed=True,
            )
        elapsed = trio.current_time() - began
    assert len(sim.account().orders) == 30
    assert 41 < elapsed < 42  # six windows: the first ends after 1 s, the sixth opens at 41 s


async def test_the_exchange_info_weight_survives_learning_the_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first request learns the limits (exchangeInfo, weight 20) before the client
    # knows the exchange's clock, years from this machine's: that weight is counted on
    # the local clock, and must still count once the windows follow the exchange's.
    sim = SimExchange(weight_limits={"spot": 30}, start_time_ms=1_700_000_010_000)
    async with sim.client() as client:
        for _ in range(15):  # 20 + 15 x 1 > 30: the last five wait for the next window
            await client.request("GET", "/api/v3/ping")
        waited = trio.current_time()
    assert sim.limiter.answered_429 == 0
    assert 30 < waited < 31  # the exchange's window ends 30 s after the start (+ 1 % guard)
