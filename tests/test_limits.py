"""RateLimiter on its own: windows, reservations, header reconciliation, pauses and bans."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiocea_trio.errors import BinanceBanError
from aiocea_trio.limits import MarketLimits, RateLimiter
from aiocea_trio.markets import Market

SPOT = Market.SPOT


def now_ms() -> int:
    # Windows are aligned to epoch multiples; trio time 0 is 1 s into a minute.
    return int(1_699_999_981_000 + trio.current_time() * 1000)


async def test_requests_within_the_budget_do_not_wait(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    for _ in range(10):
        await limiter.acquire(SPOT, 10, now_ms)
        limiter.release(SPOT, 10, charged=None, headers=None, server_now_ms=now_ms)
    assert trio.current_time() == 0
    stats = limiter.statistics().markets["spot"]
    assert (stats.used_weight, stats.waits, stats.requests) == (100, 0, 10)


async def test_a_spent_budget_waits_for_the_next_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    await limiter.acquire(SPOT, 60, now_ms)
    limiter.release(SPOT, 60, charged=None, headers=None, server_now_ms=now_ms)
    await limiter.acquire(SPOT, 60, now_ms)
    # The window ends 9 s later; the limiter rolls 1% (0.1 s) after the exchange does.
    assert trio.current_time() == pytest.approx(9.1)
    assert limiter.statistics().markets["spot"].waits == 1


async def test_in_flight_reservations_count(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    await limiter.acquire(SPOT, 70, now_ms)  # not released yet: still in flight
    with trio.move_on_after(5) as scope:
        await limiter.acquire(SPOT, 40, now_ms)
    assert scope.cancelled_caught
    assert limiter.statistics().markets["spot"].in_flight_weight == 70


async def test_headers_reveal_weight_used_elsewhere(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 100}, window=60)
    await limiter.acquire(SPOT, 1, now_ms)
    limiter.release(
        SPOT, 1, charged=None, headers={"X-MBX-USED-WEIGHT-1M": "95"}, server_now_ms=now_ms
    )
    assert limiter.statistics().markets["spot"].used_weight == 95
    await limiter.acquire(SPOT, 10, now_ms)
    assert trio.current_time() == pytest.approx(59.6)


async def test_free_requests_are_not_charged(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 10}, window=10)
    for _ in range(5):
        await limiter.acquire(SPOT, 10, now_ms)
        limiter.release(SPOT, 10, charged=0, headers=None, server_now_ms=now_ms)
    assert trio.current_time() == 0


async def test_pause_and_ban(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    limiter.note_rate_limited(SPOT, 7)
    await limiter.acquire(SPOT, 1, now_ms)
    assert trio.current_time() >= 7
    limiter.release(SPOT, 1, charged=None, headers=None, server_now_ms=now_ms)
    until = now_ms() + 60_000
    limiter.note_banned(SPOT, until)
    with pytest.raises(BinanceBanError) as info:
        await limiter.acquire(SPOT, 1, now_ms, describe=("GET", "/api/v3/ping"))
    assert info.value.banned_until == until
    assert info.value.retry_after == pytest.approx(60)
    assert str(info.value).startswith("spot GET /api/v3/ping: HTTP 418")
    await trio.sleep(60)
    await limiter.acquire(SPOT, 1, now_ms)


async def test_a_request_larger_than_the_budget_still_goes_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter({"spot": 10}, window=10)
    await limiter.acquire(SPOT, 50, now_ms)
    limiter.release(SPOT, 50, charged=None, headers=None, server_now_ms=now_ms)
    assert limiter.statistics().markets["spot"].used_weight == 10


async def test_admit_now_reserves_what_fits_and_nothing_else(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    assert limiter.admit_now(SPOT, 70, now_ms)
    assert not limiter.admit_now(SPOT, 40, now_ms)  # 70 in flight: 40 does not fit
    stats = limiter.statistics().markets["spot"]
    assert (stats.in_flight_weight, stats.requests, stats.waits) == (70, 1, 0)
    limiter.release(SPOT, 70, charged=None, headers=None, server_now_ms=now_ms)
    assert limiter.admit_now(SPOT, 30, now_ms)
    assert not limiter.admit_now(SPOT, 1, now_ms)  # 70 used + 30 in flight: full
    limiter.release(SPOT, 30, charged=None, headers=None, server_now_ms=now_ms)
    await limiter.acquire(SPOT, 1, now_ms)  # what did not fit waits for the next window
    assert trio.current_time() == pytest.approx(9.1)


async def test_admit_now_respects_pauses_and_bans(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    limiter.note_rate_limited(SPOT, 5)
    assert not limiter.admit_now(SPOT, 1, now_ms)
    await trio.sleep(5)
    assert limiter.admit_now(SPOT, 1, now_ms)
    limiter.release(SPOT, 1, charged=None, headers=None, server_now_ms=now_ms)
    limiter.note_banned(SPOT, now_ms() + 30_000)
    with pytest.raises(BinanceBanError):
        limiter.admit_now(SPOT, 1, now_ms, describe=("GET", "/api/v3/ping"))
    assert limiter.statistics().markets["spot"].in_flight_weight == 0


def test_admit_now_leaves_a_shared_limiter_to_acquire() -> None:
    limiter = RateLimiter({"spot": 100}, window=10, shared="redis://127.0.0.1:1")
    assert not limiter.admit_now(SPOT, 1, lambda: 0)  # Redis makes its reservations


async def test_admit_now_and_acquire_together_never_overbook(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The gate's way (admit now, else wait in acquire) by 40 tasks at once: a window
    never holds more than its budget, and what did not fit waited for later windows."""
    limiter = RateLimiter({"spot": 100}, window=10)
    weights = [5 + i % 3 * 10 for i in range(40)]  # 600 in all: six windows at least
    booked: list[int] = []

    async def one(weight: int) -> None:
        await trio.lowlevel.checkpoint()
        if not limiter.admit_now(SPOT, weight, now_ms):
            await limiter.acquire(SPOT, weight, now_ms)
        stats = limiter.statistics().markets["spot"]
        booked.append(stats.used_weight + stats.in_flight_weight)
        await trio.sleep(0.5)
        limiter.release(SPOT, weight, charged=None, headers=None, server_now_ms=now_ms)

    async with trio.open_nursery() as nursery:
        for weight in weights:
            nursery.start_soon(one, weight)
    assert len(booked) == 40
    assert max(booked) <= 100
    stats = limiter.statistics().markets["spot"]
    assert stats.requests == 40
    assert stats.in_flight_weight == 0
    assert stats.waits > 0
    assert trio.current_time() >= 49.1  # the sixth window opens 9.1 + 4 x 10 s in


def test_limits_from_exchange_info() -> None:
    limits = MarketLimits.from_exchange_info(
        [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        ]
    )
    assert limits == MarketLimits(6000, 60.0, ((10.0, 100), (86400.0, 200000)))
    with pytest.raises(ValueError, match="REQUEST_WEIGHT"):
        MarketLimits.from_exchange_info([])


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="window"):
        RateLimiter(window=0)
    with pytest.raises(ValueError, match="headroom"):
        RateLimiter(headroom=1.5)
    with pytest.raises(ValueError):
        RateLimiter({"nasdaq": 5})
    assert RateLimiter({"spot": 5}).limits("spot") == MarketLimits(5, 60.0)


async def test_concurrent_acquires_never_overbook(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    admitted: list[float] = []

    async def one() -> None:
        await limiter.acquire(SPOT, 10, now_ms)
        admitted.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for _ in range(25):
            nursery.start_soon(one)
        await trio.sleep(1)
        # Nothing was released: exactly ten reservations of 10 fit in 100.
        assert len(admitted) == 10
        assert limiter.statistics().markets["spot"].in_flight_weight == 100
        nursery.cancel_scope.cancel()


async def test_weight_spent_as_the_exchange_rolls_counts_in_its_new_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The limiter rolls 1 % after the exchange: what it settles in between may already
    be in the exchange's new window, and must not be forgotten when the limiter rolls."""
    limiter = RateLimiter({"spot": 100}, window=10)
    exchange: dict[int, int] = {}  # the exchange's count per window, by processing time

    async def request(weight: int) -> None:
        await limiter.acquire(SPOT, weight, now_ms)
        index = now_ms() // 10_000
        exchange[index] = exchange.get(index, 0) + weight
        limiter.release(SPOT, weight, charged=None, headers=None, server_now_ms=now_ms)

    await trio.sleep(9.02)  # 20 ms after the exchange's boundary, 80 ms before ours
    await request(60)
    await trio.sleep(0.1)  # the limiter has rolled too
    await request(60)  # must wait: 60 + 60 > 100 in the exchange's window
    await request(30)
    assert max(exchange.values()) <= 100
    assert trio.current_time() > 19  # the second request went in the window after


async def test_a_new_clock_keeps_what_the_old_one_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter({"spot": 100}, window=10)
    offset = 0

    def server_ms() -> int:
        return now_ms() + offset

    await limiter.acquire(SPOT, 60, server_ms)
    limiter.release(SPOT, 60, charged=None, headers=None, server_now_ms=server_ms)
    offset = -3 * 365 * 86_400_000 + 4_000  # the offset is measured: years back
    limiter.clock_changed()
    await limiter.acquire(SPOT, 60, server_ms)  # 60 + 60 > 100: waits for the next window
    assert trio.current_time() > 0


BURSTS_AND_LULLS = st.lists(  # (weight, pause before it, time to answer)
    st.tuples(
        st.integers(1, 40),
        st.integers(0, 50) | st.integers(9_000, 10_000) | st.sampled_from([0, 9_900, 10_000]),
        st.sampled_from([0, 0, 100, 250]) | st.integers(0, 250),
    ),
    min_size=1,
    max_size=40,
)


def _model_exchange(
    limiter: RateLimiter,
    start_ms: int,
    skew_ms: int,
    requests: list[tuple[int, int, int]],
    *,
    window_s: int = 10,
    learn_first: bool = False,
) -> dict[int, int]:
    """Run ``requests`` through ``limiter`` against a model exchange allowing 100 per window.

    Pauses and answer times are given for 10 s windows and scaled to ``window_s``.
    The exchange counts each request when it arrives, in its own fixed windows; the
    client's clock is off by ``skew_ms``. With ``learn_first`` the client starts as a
    real one does: its first request (exchangeInfo, weight 20) goes out on a clock
    years off and under Binance's default limits, and only its answer gives the
    exchange's limits and clock. Returns the weight the exchange counted per window.
    """
    spent: dict[int, int] = {}
    scale = window_s / 10
    clock = {"offset": -(3 * 365 * 86_400_000) if learn_first else skew_ms}

    def exchange_ms() -> int:
        return 1_700_000_000_000 + start_ms + int(trio.current_time() * 1000)

    def client_ms() -> int:
        return exchange_ms() + clock["offset"]

    async def one(weight: int, latency_ms: int) -> None:
        await limiter.acquire(SPOT, weight, client_ms)
        await trio.sleep(latency_ms / 2000)
        index = exchange_ms() // (window_s * 1000)
        spent[index] = spent.get(index, 0) + weight
        headers = {f"x-mbx-used-weight-{window_s}s": str(spent[index])}
        await trio.sleep(latency_ms / 2000)
        limiter.release(SPOT, weight, charged=None, headers=headers, server_now_ms=client_ms)

    async def main() -> None:
        if learn_first:
            await one(20, 0)
            limiter.set_limits(SPOT, MarketLimits(100, float(window_s)))
            clock["offset"] = skew_ms
            limiter.clock_changed()
        async with trio.open_nursery() as nursery:
            for weight, gap_ms, latency_ms in requests:
                await trio.sleep(gap_ms * scale / 1000)
                nursery.start_soon(one, weight, latency_ms)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return spent


@settings(max_examples=500, deadline=None)
@given(
    start_ms=st.integers(0, 9_999),
    skew_ms=st.integers(-99, 99),  # within the guard: 1 % of a 10 s window
    requests=BURSTS_AND_LULLS,
)
# Found by this test: a client clock 1 ms behind, a request at the exchange's boundary.
@example(start_ms=498, skew_ms=-1, requests=[(1, 9502, 0), (29, 0, 0), (35, 0, 0), (36, 0, 0)])
def test_no_exchange_window_is_ever_overspent(
    start_ms: int, skew_ms: int, requests: list[tuple[int, int, int]]
) -> None:
    spent = _model_exchange(RateLimiter({"spot": 100}, window=10), start_ms, skew_ms, requests)
    assert max(spent.values()) <= 100


@settings(max_examples=300, deadline=None)
@given(
    window_s=st.sampled_from([10, 60]),  # 60: the window length does not change when learned
    start_ms=st.integers(0, 59_999),
    skew_ms=st.integers(-99, 99),
    requests=BURSTS_AND_LULLS,
)
# The exchangeInfo weight, counted on the local clock, forgotten when the clock moved.
@example(window_s=60, start_ms=30_000, skew_ms=0, requests=[(40, 0, 0), (41, 0, 0)])
def test_nor_while_the_limits_and_the_clock_are_being_learned(
    window_s: int, start_ms: int, skew_ms: int, requests: list[tuple[int, int, int]]
) -> None:
    spent = _model_exchange(
        RateLimiter(), start_ms, skew_ms, requests, window_s=window_s, learn_first=True
    )
    assert max(spent.values()) <= 100
