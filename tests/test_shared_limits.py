"""The Redis-shared windows against a real ``redis-server`` (see tests/redis_server.py).

Redis's expiries run on real time, so the windows here are short (200 ms) and every test
has a hard limit on trio's clock.
"""

from __future__ import annotations

import gc
import socket
import sys
import textwrap
import time
import uuid

import pytest
import trio

from aiocea_trio.shared_limits import (
    Halt,
    RedisWindows,
    SharedLimitsError,
    open_redis_windows,
)
from tests.redis_server import RedisServer, free_port, redis_server, redis_url

pytest.importorskip("coredis", reason="the redis extra (coredis) is not installed")

__all__ = ["redis_server", "redis_url"]  # fixtures, imported to be found

SPOT = "spot"


def _key() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _commands(windows: RedisWindows) -> dict[str, int]:
    """``{command: calls}`` since the last ``CONFIG RESETSTAT``."""
    info = await windows.client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in info.items()
        if isinstance(stats, dict)
    }


async def test_concurrent_reservations_never_exceed_the_limit(redis_url: str) -> None:
    with trio.fail_after(10):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            start = now // 60_000 * 60_000
            granted: list[int] = []

            async def one() -> None:
                r = await windows.reserve(SPOT, start, 3, limit=100, window_ms=60_000, now_ms=now)
                if r.granted:
                    granted.append(r.used)

            async with trio.open_nursery() as nursery:
                for _ in range(200):
                    nursery.start_soon(one)
            assert len(granted) == 33  # 33 x 3 = 99; a 34th would make 102
            assert sorted(granted) == list(range(3, 100, 3))  # each saw its own increment
            stored = await windows.client.get(windows.window_key(SPOT, start))
            assert stored == "99"


_WORKER = textwrap.dedent(
    """
    import sys, trio
    from aiocea_trio.shared_limits import open_redis_windows

    async def main(url, key, start, now):
        granted = 0
        async with open_redis_windows(url, key=key) as windows:
            async def one():
                nonlocal granted
                r = await windows.reserve("spot", start, 7, limit=1000, window_ms=60000, now_ms=now)
                granted += r.granted
            async with trio.open_nursery() as nursery:
                for _ in range(100):
                    nursery.start_soon(one)
        print(granted)

    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    """
)


async def test_two_processes_share_one_limit(redis_url: str) -> None:
    key, now = _key(), _now_ms()
    start = now // 60_000 * 60_000
    results: list[int] = []

    async def worker() -> None:
        args = [sys.executable, "-c", _WORKER, redis_url, key, str(start), str(now)]
        done = await trio.run_process(args, capture_stdout=True)
        results.append(int(done.stdout))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(worker)
    assert sum(results) == 142  # 142 x 7 = 994 of 1000, whoever got them
    assert min(results) >= 42  # one alone could take at most 100 of them


async def test_counters_expire_with_their_windows(redis_url: str) -> None:
    window = 200
    with trio.fail_after(5):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            start = now // window * window
            r = await windows.reserve(SPOT, start, 5, limit=50, window_ms=window, now_ms=now)
            assert r.granted
            key = windows.window_key(SPOT, start)
            ttl = await windows.client.pttl(key)
            # until one window after the window's end, measured from now
            assert 0 < ttl <= start + 2 * window - now
            assert ttl >= start + 2 * window - now - 150  # (a busy machine)
            await trio.sleep((start + 2 * window - _now_ms() + 30) / 1000)
            assert await windows.client.exists([key]) == 0
            # and a fresh window starts from nothing
            now = _now_ms()
            start = now // window * window
            r = await windows.reserve(SPOT, start, 50, limit=50, window_ms=window, now_ms=now)
            assert r.granted
            assert r.used == 50


async def test_settle_raises_but_never_lowers(redis_url: str) -> None:
    with trio.fail_after(5):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            start = now // 60_000 * 60_000
            args = {"window_ms": 60_000, "now_ms": now}
            await windows.reserve(SPOT, start, 10, limit=100, **args)
            assert await windows.settle(SPOT, start, 40, **args) == 40  # others on the IP
            assert await windows.settle(SPOT, start, 25, **args) == 40  # an older answer
            r = await windows.reserve(SPOT, start, 61, limit=100, **args)
            assert not r.granted
            assert r.used == 40
            r = await windows.reserve(SPOT, start, 60, limit=100, **args)
            assert r.granted
            assert r.used == 100
            # settling a window nobody reserved in creates it, with its expiry
            other = start + 60_000
            assert await windows.settle(SPOT, other, 7, window_ms=60_000, now_ms=now) == 7
            assert 0 < await windows.client.pttl(windows.window_key(SPOT, other)) <= 180_000


async def test_a_reservation_first_raises_the_count_to_its_floor(redis_url: str) -> None:
    # After a restart Redis is empty: the first reservation carries what its process knows
    # the window holds (the exchange's header, its own spending), in the same round trip.
    with trio.fail_after(5):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            start = now // 60_000 * 60_000
            args = {"limit": 100, "window_ms": 60_000, "now_ms": now}
            r = await windows.reserve(SPOT, start, 10, floor=70, **args)
            assert (r.granted, r.used) == (True, 80)
            r = await windows.reserve(SPOT, start, 10, floor=30, **args)  # never lowered
            assert (r.granted, r.used) == (True, 90)
            # refused, the floor is still stored: the others see it
            r = await windows.reserve(SPOT, start, 10, floor=95, **args)
            assert (r.granted, r.used) == (False, 95)
            assert await windows.client.get(windows.window_key(SPOT, start)) == "95"
            assert 0 < await windows.client.pttl(windows.window_key(SPOT, start)) <= 120_000
            # order windows: floors per (interval, window index)
            ten, now_o = 10_000, 1_700_000_005_000
            floors = {(ten, now_o // ten): 4}
            grant = await windows.reserve_orders("a", SPOT, [(ten, 5)], now_ms=now_o, floors=floors)
            assert grant.granted
            key = windows.orders_key("a", SPOT, ten, now_o // ten * ten)
            assert await windows.client.get(key) == "5"
            refused = await windows.reserve_orders("a", SPOT, [(ten, 5)], now_ms=now_o)
            assert not refused.granted


async def test_a_pause_is_seen_by_another_client(redis_url: str) -> None:
    key = _key()
    with trio.fail_after(5):
        async with (
            open_redis_windows(redis_url, key=key) as one,
            open_redis_windows(redis_url, key=key) as two,
        ):
            now = _now_ms()
            start = now // 60_000 * 60_000
            assert await two.paused_until(SPOT) == Halt()
            assert await one.pause(SPOT, now + 5_000, now_ms=now) == now + 5_000
            assert await one.pause(SPOT, now + 1_000, now_ms=now) == now + 5_000  # never earlier
            assert await two.paused_until(SPOT) == Halt(paused_until_ms=now + 5_000)
            r = await two.reserve(SPOT, start, 1, limit=100, window_ms=60_000, now_ms=now)
            assert not r.granted
            assert r.paused_until_ms == now + 5_000
            assert r.used == 0
            # once the pause is over (on the exchange's clock) reservations go through
            later = now + 5_001
            r = await two.reserve(SPOT, start, 1, limit=100, window_ms=60_000, now_ms=later)
            assert r.granted
            # a ban is kept apart, and the key outlives the later end
            await two.pause(SPOT, now + 120_000, now_ms=now, banned=True)
            assert await one.paused_until(SPOT) == Halt(now + 5_000, now + 120_000)
            ttl = await one.client.pttl(one.halt_key(SPOT))
            assert 120_000 < ttl <= 121_000
            # other markets and other keys are not paused
            assert await one.paused_until("usdm") == Halt()
        async with open_redis_windows(redis_url, key=_key()) as other:
            assert await other.paused_until(SPOT) == Halt()


async def test_a_short_pause_expires(redis_url: str) -> None:
    with trio.fail_after(5):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            await windows.pause(SPOT, now + 100, now_ms=now)
            assert 1_000 < await windows.client.pttl(windows.halt_key(SPOT)) <= 1_100


async def test_order_windows(redis_url: str) -> None:
    with trio.fail_after(5):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            ten = 10_000
            now = 1_700_000_005_000  # the middle of a 10 s window, far from its edges
            limits = [(ten, 2), (60_000, 100)]
            for _ in range(2):
                assert (await windows.reserve_orders("acct", SPOT, limits, now_ms=now)).granted
            refused = await windows.reserve_orders("acct", SPOT, limits, now_ms=now)
            assert not refused.granted
            assert refused.full_interval_ms == ten
            assert refused.retry_at_ms == 1_700_000_010_000 + 100  # the next window + the guard
            # refused means counted nowhere
            minute = windows.orders_key("acct", SPOT, 60_000, 1_699_999_980_000)
            assert await windows.client.get(minute) == "2"
            # another account has its own counts
            assert (await windows.reserve_orders("other", SPOT, limits, now_ms=now)).granted
            # within the guard of a boundary, an order counts in both windows
            edge = 1_700_000_019_950
            assert (await windows.reserve_orders("edge", SPOT, [(ten, 5)], now_ms=edge)).granted
            for start in (1_700_000_010_000, 1_700_000_020_000):
                assert await windows.client.get(windows.orders_key("edge", SPOT, ten, start)) == "1"
            # the exchange's count wins when higher
            await windows.settle_orders("edge", SPOT, ten, 1_700_000_020_000, 5, now_ms=edge)
            assert not (await windows.reserve_orders("edge", SPOT, [(ten, 5)], now_ms=edge)).granted


async def test_one_round_trip_per_operation(redis_url: str) -> None:
    with trio.fail_after(10):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            start = now // 60_000 * 60_000
            args = {"window_ms": 60_000, "now_ms": now}
            # the first use of each script loads it (NOSCRIPT, SCRIPT LOAD): warm up
            await windows.reserve(SPOT, start, 1, limit=10_000, **args)
            await windows.settle(SPOT, start, 1, **args)
            await windows.pause(SPOT, now, now_ms=now)
            await windows.reserve_orders("a", SPOT, [(10_000, 1000)], now_ms=now)
            await windows.client.config_resetstat()
            for _ in range(50):
                await windows.reserve(SPOT, start, 1, limit=10_000, **args)
                await windows.settle(SPOT, start, 1, **args)
                await windows.reserve_orders("a", SPOT, [(10_000, 1000)], now_ms=now)
                await windows.paused_until(SPOT)
            calls = await _commands(windows)
            # commandstats counts the commands scripts run too (get, incrby, pexpire, ...),
            # but a client's own round trips are the scripts themselves, and nothing
            # else: no SCRIPT LOAD, no EVAL of the source, no MULTI.
            assert calls["evalsha"] == 150
            assert calls["hmget"] == 100  # 50 paused_until + 50 inside reserve
            sent = set(calls) - {"info", "config|resetstat", "config", "evalsha", "hmget"}
            assert sent <= {"get", "incrby", "incr", "pexpire", "set", "hset", "hget", "pttl"}


# coredis 6.9 leaves a connection's six AnyIO memory streams unclosed when the connection
# fails (``BaseConnection.run`` opens them only after connecting): a ResourceWarning when
# they are collected. Collected here, in the test that made them, and ignored.
COREDIS_LEAK = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@COREDIS_LEAK
async def test_a_redis_that_is_down_fails_quickly(redis_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    started = trio.current_time()
    with trio.fail_after(3):
        async with open_redis_windows(url, key=_key()) as windows:
            with pytest.raises(SharedLimitsError, match="did not answer"):
                await windows.reserve(SPOT, 0, 1, limit=10, window_ms=1000, now_ms=1)
            with pytest.raises(SharedLimitsError):
                await windows.paused_until(SPOT)
    assert trio.current_time() - started < 1.0
    gc.collect()


@COREDIS_LEAK
async def test_a_redis_that_does_not_answer_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = trio.current_time()
        with trio.fail_after(5):
            async with open_redis_windows(url, key=_key(), read_timeout=0.3) as windows:
                with pytest.raises(SharedLimitsError):
                    await windows.reserve(SPOT, 0, 1, limit=10, window_ms=1000, now_ms=1)
        assert trio.current_time() - started < 2.0
    gc.collect()


@COREDIS_LEAK
async def test_a_restarted_redis_is_used_again(redis_server: RedisServer, redis_url: str) -> None:
    with trio.fail_after(15):
        async with open_redis_windows(redis_url, key=_key()) as windows:
            now = _now_ms()
            args = {"limit": 10, "window_ms": 60_000, "now_ms": now}
            assert (await windows.reserve(SPOT, 0, 1, **args)).granted
            redis_server.stop()
            with pytest.raises(SharedLimitsError):
                await windows.reserve(SPOT, 0, 1, **args)
            redis_server.start()  # same port, empty (it saved nothing)
            r = await windows.reserve(SPOT, 0, 1, **args)
            assert r.granted
            assert r.used == 1
    gc.collect()


async def test_the_callers_exception_comes_out_whole(redis_url: str) -> None:
    async def body() -> None:
        async with open_redis_windows(redis_url, key=_key()) as windows:
            await windows.paused_until(SPOT)
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):  # bare, not in a group
        await body()
