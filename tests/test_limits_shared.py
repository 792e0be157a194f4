"""RateLimiter(shared=...) against a real ``redis-server`` (see tests/redis_server.py).

Redis's expiries run on real time, so these tests run on it too, with short windows
(1 s) and a hard limit on trio's clock each. Two limiters in one trio run, each with its
own Redis connection, stand for two processes.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import attrs
import pytest
import trio

from aiocea_trio.errors import BinanceBanError
from aiocea_trio.limits import MarketLimits, OrderBudget, RateLimiter, window_guard_ms
from aiocea_trio.markets import Market
from aiocea_trio.shared_limits import OrderGrant, RedisWindows, Reservation, open_redis_windows
from aiocea_trio.sim import SimExchange
from tests.redis_server import RedisServer, free_port, redis_server, redis_url

pytest.importorskip("coredis", reason="the redis extra (coredis) is not installed")

__all__ = ["redis_server", "redis_url"]  # fixtures, imported to be found

# coredis leaves two AnyIO memory streams unclosed when a connection fails (see
# tests/test_shared_limits.py, COREDIS_LEAK): a ResourceWarning when they are collected.
COREDIS_LEAK = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SPOT = Market.SPOT
WINDOW = 1.0  # s
LIMIT = 100


def _key() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def _limiter(shared: str | RedisWindows, key: str = "default", **kwargs: float) -> RateLimiter:
    return RateLimiter({"spot": LIMIT}, window=WINDOW, shared=shared, key=key, **kwargs)


def _window_of(limiter: RateLimiter) -> int:
    """The window the last reservation counted in (no await since it was made)."""
    index = limiter._budgets[SPOT].window_index
    assert index is not None
    return index


@attrs.define(eq=False)
class _Recording(RedisWindows):
    """RedisWindows that records each granted reservation as ``(window start, weight)``."""

    granted: list[tuple[int, int]] = attrs.field(factory=list)

    async def reserve(
        self,
        market: str,
        window_start_ms: int,
        weight: int,
        *,
        limit: int,
        window_ms: int,
        now_ms: int,
        floor: int = 0,
    ) -> Reservation:
        found = await super().reserve(
            market,
            window_start_ms,
            weight,
            limit=limit,
            window_ms=window_ms,
            now_ms=now_ms,
            floor=floor,
        )
        if found.granted:
            self.granted.append((window_start_ms, weight))
        return found


async def test_two_limiters_never_reserve_more_than_the_limit_together(redis_url: str) -> None:
    key = _key()
    with trio.fail_after(15):
        async with (
            open_redis_windows(redis_url, key=key) as one_conn,
            open_redis_windows(redis_url, key=key) as two_conn,
        ):
            one_windows = _Recording(one_conn.client, key)
            two_windows = _Recording(two_conn.client, key)
            async with _limiter(one_windows) as one, _limiter(two_windows) as two:

                async def request(limiter: RateLimiter) -> None:
                    await limiter.acquire(SPOT, 10, now_ms)
                    limiter.release(SPOT, 10, charged=None, headers=None, server_now_ms=now_ms)

                started = trio.current_time()
                async with trio.open_nursery() as nursery:
                    for _ in range(15):
                        nursery.start_soon(request, one)
                        nursery.start_soon(request, two)
                elapsed = trio.current_time() - started
    per_window: dict[int, int] = defaultdict(int)
    for start, weight in one_windows.granted + two_windows.granted:
        per_window[start] += weight
    assert sum(per_window.values()) == 300  # every request went through Redis
    assert max(per_window.values()) <= LIMIT  # the two together, in every window
    assert len(per_window) >= 3
    assert elapsed > 1.0  # 300 weight at 100 a window: three windows, two rolls
    assert one_windows.granted  # both shared the windows
    assert two_windows.granted


async def test_a_pause_noted_by_one_is_honoured_by_the_other(redis_url: str) -> None:
    key = _key()
    with trio.fail_after(10):
        async with _limiter(redis_url, key) as one, _limiter(redis_url, key) as two:
            await one.acquire(SPOT, 1, now_ms)
            one.note_rate_limited(SPOT, 1.0)  # a 429 with Retry-After: 1
            one.release(SPOT, 1, charged=None, headers=None, server_now_ms=now_ms)
            async with open_redis_windows(redis_url, key=key) as windows:
                while (await windows.paused_until(SPOT.value)).paused_until_ms is None:
                    await trio.sleep(0.01)  # the background task sends it
            started = trio.current_time()
            await two.acquire(SPOT, 1, now_ms)
            waited = trio.current_time() - started
            two.release(SPOT, 1, charged=None, headers=None, server_now_ms=now_ms)
            stats = two.statistics().markets["spot"]
    assert 0.5 < waited < 1.5
    assert (stats.waits, stats.rate_limited) == (1, 0)  # the pause was the other's


async def test_a_ban_noted_by_one_stops_the_other(redis_url: str) -> None:
    key = _key()
    with trio.fail_after(10):
        async with _limiter(redis_url, key) as one, _limiter(redis_url, key) as two:
            await two.acquire(SPOT, 1, now_ms)
            two.release(SPOT, 1, charged=None, headers=None, server_now_ms=now_ms)
            until = now_ms() + 60_000
            one.note_banned(SPOT, until, now_ms())
            async with open_redis_windows(redis_url, key=key) as windows:
                while (await windows.paused_until(SPOT.value)).banned_until_ms is None:
                    await trio.sleep(0.01)
            with pytest.raises(BinanceBanError) as caught:
                await two.acquire(SPOT, 1, now_ms)
            assert caught.value.banned_until == until
            with pytest.raises(BinanceBanError):  # known locally now: no round trip
                await two.acquire(SPOT, 1, now_ms)


@COREDIS_LEAK
async def test_redis_down_falls_back_to_a_local_share_then_shares_again(
    redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = _key()
    caplog.set_level(logging.INFO, logger="aiocea_trio.limits")
    granted: dict[int, int] = defaultdict(int)
    with trio.fail_after(20):
        async with _limiter(redis_url, key, fallback_share=0.25) as limiter:
            assert limiter.shared_down is False
            redis_server.stop()
            started = trio.current_time()

            async def request() -> None:
                await limiter.acquire(SPOT, 10, now_ms)
                granted[_window_of(limiter)] += 10  # (fallback: no await since the check)
                limiter.release(SPOT, 10, charged=None, headers=None, server_now_ms=now_ms)

            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(request)
            elapsed = trio.current_time() - started
            assert limiter.shared_down is True
            downs = [r for r in caplog.records if "Redis is down" in r.getMessage()]
            assert len(downs) == 1  # once per outage, not once per request
            assert downs[0].levelno == logging.WARNING
            # 1/4 of 100 a window: two requests of 10 a window, so three windows.
            assert max(granted.values()) <= 25
            assert len(granted) >= 3
            assert elapsed < 5  # no hang on the dead server

            redis_server.start()
            while limiter.shared_down:
                await trio.sleep(0.05)
            assert any("Redis is back" in r.getMessage() for r in caplog.records)
            # Back, the limiter keeps to its share until a window after the margin, and
            # reserves in Redis meanwhile too.
            await limiter.acquire(SPOT, 10, now_ms)
            start_ms = int(_window_of(limiter) * WINDOW * 1000)
            limiter.release(SPOT, 10, charged=None, headers=None, server_now_ms=now_ms)
            async with open_redis_windows(redis_url, key=key) as windows:
                stored = await windows.client.get(windows.window_key(SPOT.value, start_ms))
            assert int(stored or 0) >= 10  # counted in Redis again
    caplog.clear()
    gc.collect()  # the leaked streams are collected here, where they are ignored


async def test_used_weight_headers_are_settled_in_redis(redis_url: str) -> None:
    key = _key()
    with trio.fail_after(10):
        async with _limiter(redis_url, key) as one, _limiter(redis_url, key) as two:
            # Keep clear of a boundary: the header must land in the window reserved in.
            while now_ms() % 1000 > 1000 - 2 * window_guard_ms(1000) - 200:
                await trio.sleep(0.01)
            await one.acquire(SPOT, 5, now_ms)
            headers = {"X-MBX-USED-WEIGHT-1S": "90"}  # other programs on the IP spent more
            one.release(SPOT, 5, charged=None, headers=headers, server_now_ms=now_ms)
            start_ms = int(_window_of(one) * WINDOW * 1000)
            async with open_redis_windows(redis_url, key=key) as windows:
                while await windows.client.get(windows.window_key(SPOT.value, start_ms)) != "90":
                    await trio.sleep(0.01)
            # The other limiter sees the exchange's figure: 20 more would be 110.
            started = trio.current_time()
            await two.acquire(SPOT, 20, now_ms)
            assert _window_of(two) > start_ms // 1000
            assert trio.current_time() - started > 0


async def test_a_shared_limiter_must_be_opened(redis_url: str) -> None:
    limiter = _limiter(redis_url, _key())
    assert limiter.shared_down is True
    with pytest.raises(RuntimeError, match="must be open"):
        await limiter.acquire(SPOT, 1, now_ms)


async def test_async_with_is_harmless_on_a_local_limiter() -> None:
    local = RateLimiter({"spot": LIMIT}, window=WINDOW)
    async with local as entered:
        assert entered is local
        await local.acquire(SPOT, 1, now_ms)
    assert local.shared_down is None


async def test_the_callers_exception_comes_out_whole(redis_url: str) -> None:
    async def body() -> None:
        async with _limiter(redis_url, _key()) as limiter:
            await limiter.acquire(SPOT, 1, now_ms)
            raise KeyError("mine")

    with trio.fail_after(5), pytest.raises(KeyError, match="mine"):  # bare, not in a group
        await body()


def _headers(used: int) -> dict[str, str]:
    return {"X-MBX-USED-WEIGHT-1S": str(used)}


@COREDIS_LEAK
async def test_no_window_is_overspent_when_redis_comes_back(
    redis_server: RedisServer, redis_url: str
) -> None:
    # Two limiters flood one "exchange" (weight counted per real 1 s window, its used-weight
    # header in every answer) while Redis is killed and restarted empty. The weight they
    # spent on their fallback shares is not in the new Redis: sharing again must not
    # reserve the window's whole limit on top of it.
    key = _key()
    exchange: dict[int, int] = defaultdict(int)

    async def flood(limiter: RateLimiter) -> None:
        while True:
            await limiter.acquire(SPOT, 5, now_ms)
            window = now_ms() // 1000
            exchange[window] += 5
            used = exchange[window]
            await trio.sleep(0.02)  # the request's round trip
            limiter.release(SPOT, 5, charged=None, headers=_headers(used), server_now_ms=now_ms)

    with trio.fail_after(30):
        async with (
            _limiter(redis_url, key, fallback_share=0.5) as one,
            _limiter(redis_url, key, fallback_share=0.5) as two,
            trio.open_nursery() as nursery,
        ):
            for limiter in (one, two, one, two, one, two):
                nursery.start_soon(flood, limiter)
            await trio.sleep(1.5)
            redis_server.stop()
            while not (one.shared_down and two.shared_down):
                await trio.sleep(0.05)
            await trio.sleep(1.0)
            redis_server.start()
            while one.shared_down or two.shared_down:
                await trio.sleep(0.05)
            await trio.sleep(5.0)  # past the margin and into full sharing again
            nursery.cancel_scope.cancel()
    windows = sorted(exchange)[1:-1]  # whole windows only
    over = {w: exchange[w] for w in windows if exchange[w] > LIMIT}
    assert not over
    assert max(exchange[w] for w in windows[-2:]) == LIMIT  # sharing fully again at the end
    gc.collect()


@COREDIS_LEAK
async def test_each_outage_logs_one_warning_down_and_one_back(
    redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiocea_trio.limits")
    key = _key()

    async def busy(limiter: RateLimiter) -> None:
        while True:  # requests all along: every one may find Redis gone (or back)
            await limiter.acquire(SPOT, 1, now_ms)
            await trio.sleep(0.01)
            limiter.release(SPOT, 1, charged=None, headers=None, server_now_ms=now_ms)

    def logged(text: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if text in r.getMessage()]

    with trio.fail_after(30):
        async with _limiter(redis_url, key) as limiter, trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(busy, limiter)
            for outage in (1, 2):
                await trio.sleep(0.3)
                redis_server.stop()
                while not limiter.shared_down:
                    await trio.sleep(0.02)
                await trio.sleep(1.2)  # more than one probe fails
                redis_server.start()
                while limiter.shared_down:
                    await trio.sleep(0.02)
                await trio.sleep(0.5)
                downs, backs = logged("Redis is down"), logged("Redis is back")
                assert (len(downs), len(backs)) == (outage, outage)
            nursery.cancel_scope.cancel()
    assert {r.levelno for r in logged("Redis is down") + logged("Redis is back")} == {
        logging.WARNING
    }
    assert not logged("answers again")  # (an old wording, counted twice by the benchmark)
    caplog.clear()
    gc.collect()


# -- the fallback's rule (item 4 of issue 18's report) -------------------------------------


def _dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there


@COREDIS_LEAK
async def test_alone_on_the_fallback_a_process_spends_exactly_its_share(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def clock_ms() -> int:
        return 1_700_000_000_000 + int(trio.current_time() * 1000)

    spent: dict[int, int] = defaultdict(int)
    async with _limiter(_dead_url(), fallback_share=0.25) as limiter:
        for _ in range(15):
            await limiter.acquire(SPOT, 5, clock_ms)
            spent[clock_ms() // 1000] += 5
            limiter.release(SPOT, 5, charged=None, headers=None, server_now_ms=clock_ms)
        assert limiter.shared_down
    assert list(spent.values()) == [25, 25, 25]  # 1/4 of 100, each window
    gc.collect()


@COREDIS_LEAK
async def test_on_the_fallback_the_exchange_header_counts_the_other_processes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The share is of the whole IP's weight as this process knows it: its own weight in the
    # window, or the exchange's used-weight header if higher (the header counts every
    # process on the IP). Others spent 15 in the first window: this one gets 10 of its 25.
    def clock_ms() -> int:
        return 1_700_000_000_500 + int(trio.current_time() * 1000)

    spent: dict[int, int] = defaultdict(int)
    others = {1_700_000_000: 15}
    async with _limiter(_dead_url(), fallback_share=0.25) as limiter:
        for _ in range(7):
            await limiter.acquire(SPOT, 5, clock_ms)
            window = clock_ms() // 1000
            spent[window] += 5
            headers = _headers(others.get(window, 0) + spent[window])  # the exchange's count
            limiter.release(SPOT, 5, charged=None, headers=headers, server_now_ms=clock_ms)
    assert list(spent.items()) == [(1_700_000_000, 10), (1_700_000_001, 25)]
    gc.collect()


# -- per-account order counts through Redis ------------------------------------------------

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # Binance's docs'
ORDERS = MarketLimits(LIMIT, WINDOW, orders=((1.0, 4), (86_400.0, 1_000)))


@attrs.define(eq=False)
class _RecordingOrders(RedisWindows):
    """RedisWindows that records the time (exchange ms) of each order it admitted."""

    granted: list[int] = attrs.field(factory=list)

    async def reserve_orders(
        self,
        account: str,
        market: str,
        windows: Sequence[tuple[int, int]],
        *,
        now_ms: int,
        floors: Mapping[tuple[int, int], int] | None = None,
    ) -> OrderGrant:
        grant = await super().reserve_orders(account, market, windows, now_ms=now_ms, floors=floors)
        if grant.granted:
            self.granted.append(now_ms)
        return grant


async def test_two_processes_never_place_more_orders_than_the_account_limit_together(
    redis_url: str,
) -> None:
    key = _key()
    with trio.fail_after(15):
        async with (
            open_redis_windows(redis_url, key=key) as one_conn,
            open_redis_windows(redis_url, key=key) as two_conn,
        ):
            one_windows = _RecordingOrders(one_conn.client, key)
            two_windows = _RecordingOrders(two_conn.client, key)
            async with _limiter(one_windows) as one, _limiter(two_windows) as two:
                budgets = [OrderBudget(now_ms, limiter=lim, api_key=API_KEY) for lim in (one, two)]
                async with trio.open_nursery() as nursery:
                    for _ in range(6):
                        for budget in budgets:
                            nursery.start_soon(budget.reserve, SPOT, ORDERS)
            stored = await one_conn.client.keys(f"{one_conn.prefix}:o:*")
    placed = one_windows.granted + two_windows.granted
    # Within the clock guard of a boundary an order counts in both windows.
    guard = window_guard_ms(1000)
    per_window = Counter(w for t in placed for w in {(t - guard) // 1000, (t + guard) // 1000})
    assert len(placed) == 12
    assert max(per_window.values()) <= 4  # the account's limit, for the two together
    assert len(per_window) >= 3
    assert one_windows.granted  # both placed orders
    assert two_windows.granted
    # The account is named by a hash of its API key; the key itself is never in Redis.
    account = "key-" + hashlib.sha256(API_KEY.encode()).hexdigest()[:16]
    assert budgets[0].account == budgets[1].account == account
    assert stored
    assert all(account in name and API_KEY not in name for name in stored)
    assert API_KEY not in repr(budgets[0])


async def test_an_explicit_account_name_and_separate_accounts(redis_url: str) -> None:
    key = _key()
    with trio.fail_after(10):
        async with _limiter(redis_url, key) as limiter:
            mine = OrderBudget(now_ms, limiter=limiter, account="bot-a")
            other = OrderBudget(now_ms, limiter=limiter, account="bot-b")
            for _ in range(4):
                await mine.reserve(SPOT, ORDERS)
            with trio.move_on_after(0.05):  # keep clear of a boundary: at most one roll
                await other.reserve(SPOT, ORDERS)  # another account: its own counts
            async with open_redis_windows(redis_url, key=key) as windows:
                stored = await windows.client.keys(f"{windows.prefix}:o:*")
    assert any(":o:bot-a:spot:1000:" in name for name in stored)
    assert any(":o:bot-b:spot:1000:" in name for name in stored)


@COREDIS_LEAK
async def test_orders_on_the_fallback_get_the_share_of_each_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def clock_ms() -> int:
        return 1_700_000_000_000 + int(trio.current_time() * 1000)

    placed: list[int] = []
    async with _limiter(_dead_url(), fallback_share=0.5) as limiter:
        budget = OrderBudget(clock_ms, limiter=limiter, api_key=API_KEY)
        await limiter.acquire(SPOT, 1, clock_ms)  # finds Redis down
        limiter.release(SPOT, 1, charged=None, headers=None, server_now_ms=clock_ms)
        for _ in range(6):
            await budget.reserve(SPOT, ORDERS)
            placed.append(clock_ms())
    assert sorted(Counter(t // 1000 for t in placed).values()) == [2, 2, 2]  # half of 4
    gc.collect()


async def test_two_clients_on_one_account_share_its_order_limit(redis_url: str) -> None:
    # Two clients with their own limiters (two processes), one account on the simulator,
    # 3 orders a second: together they never draw the simulator's -1015.
    key = _key()
    sim = SimExchange(order_limits={"spot": [(1, 3), (86_400, 1_000)]})
    with trio.fail_after(30):
        async with (
            RateLimiter(shared=redis_url, key=key) as one_limits,
            RateLimiter(shared=redis_url, key=key) as two_limits,
            sim.client(limiter=one_limits) as one,
            sim.client(limiter=two_limits) as two,
        ):

            async def place(client: object, i: int) -> None:
                assert client is one or client is two
                await client.request(
                    "POST",
                    "/api/v3/order",
                    {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "quantity": "0.001", "price": str(10_000 + i)},
                    signed=True,
                )  # fmt: skip

            async with trio.open_nursery() as nursery:
                for i in range(6):
                    nursery.start_soon(place, one, i)
                    nursery.start_soon(place, two, 100 + i)
            stats = [c.statistics().limiter.markets["spot"] for c in (one, two)]
    assert len(sim.account().orders) == 12
    assert [s.rate_limited for s in stats] == [0, 0]
