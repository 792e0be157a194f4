"""Simulator over a real loopback socket (hypercorn's trio worker) and through BinanceClient.

Socket tests run on real time (hypercorn's own timers would race an autojump clock); each is
bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio

from aiocea_trio.client import BinanceClient
from aiocea_trio.errors import BinanceAPIError
from aiocea_trio.signing import Ed25519Signer
from aiocea_trio.sim import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    DEMO_ED25519_API_KEY,
    DEMO_ED25519_PRIVATE_KEY,
    FaultConfig,
    SimExchange,
)

LIMIT = 10.0


async def test_serve_returns_the_url_and_answers(nursery: trio.Nursery) -> None:
    sim = SimExchange(seed=2)
    with trio.fail_after(LIMIT):
        url = await nursery.start(sim.serve, "127.0.0.1", 0)
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0")
        async with httpx.AsyncClient(base_url=url) as http:
            r = await http.get(
                "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": "2"}
            )
            assert r.status_code == 200
            assert len(r.json()) == 2
            assert r.headers["x-mbx-used-weight-1m"] == "2"
            r = await http.get("/dapi/v1/exchangeInfo")
            assert r.json()["symbols"][0]["symbol"] == "BTCUSD_PERP"
    nursery.cancel_scope.cancel()


async def test_binance_client_over_the_socket(nursery: trio.Nursery) -> None:
    sim = SimExchange(seed=2)
    with trio.fail_after(LIMIT):
        url = await nursery.start(sim.serve, "127.0.0.1", 0)
        async with BinanceClient(DEMO_API_KEY, DEMO_API_SECRET, base_url=url) as client:
            order = await client.request(
                "POST",
                "/api/v3/order",
                {
                    "symbol": "ETHUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.1",
                    "price": "100",
                    "newClientOrderId": "sock-1",
                },
                signed=True,
            )
            assert order["status"] == "NEW"
            account = await client.request("GET", "/api/v3/account", signed=True)
            usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
            assert Decimal(usdt["locked"]) == 10
            with pytest.raises(BinanceAPIError) as info:
                await client.request(
                    "GET", "/api/v3/order", {"symbol": "ETHUSDT", "orderId": 1}, signed=True
                )
            assert info.value.code == -2013
    assert sim.account().by_client[("spot", "ETHUSDT", "sock-1")].status == "NEW"
    nursery.cancel_scope.cancel()


async def test_dropped_connection_over_the_socket(nursery: trio.Nursery) -> None:
    sim = SimExchange(seed=2, faults=FaultConfig(drop_rate=1.0, paths=("/api/v3/depth",)))
    with trio.fail_after(LIMIT):
        url = await nursery.start(sim.serve, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=url) as http:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
            assert (await http.get("/api/v3/ping")).status_code == 200  # server still fine
    nursery.cancel_scope.cancel()


async def test_serve_reports_ready_once_listening(nursery: trio.Nursery) -> None:
    # nursery.start(sim.serve) is the one way to serve it: it returns once listening.
    sim = SimExchange()
    with trio.fail_after(LIMIT):
        url = await nursery.start(sim.serve, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/fapi/v1/ping")).json() == {}
    nursery.cancel_scope.cancel()


async def test_sim_client_in_process(autojump_clock: trio.testing.MockClock) -> None:
    sim = SimExchange(seed=9)
    async with sim.client() as client:
        rows = await client.request(
            "GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 3}
        )
        assert len(rows) == 3
        account = await client.request("GET", "/api/v3/account", signed=True)
        assert account["accountType"] == "SPOT"
        await trio.sleep(120)  # client and simulator clocks agree under MockClock
        balance = await client.request("GET", "/fapi/v2/balance", signed=True)
        assert balance[0]["asset"] == "USDT"


async def test_ed25519_client_in_process() -> None:
    sim = SimExchange()
    signer = Ed25519Signer(DEMO_ED25519_PRIVATE_KEY)
    async with BinanceClient(
        DEMO_ED25519_API_KEY,
        signer=signer,
        base_url="http://sim.localhost",
        transport=sim.transport(),
    ) as client:
        positions = await client.request("GET", "/dapi/v1/positionRisk", signed=True)
        assert {p["symbol"] for p in positions} >= {"BTCUSD_PERP", "ETHUSD_PERP"}


async def test_client_stays_within_the_simulators_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim = SimExchange(weight_limits={"usdm": 3}, ban_grace=0)
    t0 = trio.current_time()
    async with sim.client(retries=0) as client:
        for _ in range(10):
            await client.request("GET", "/fapi/v1/time")
    # 10 requests at 3 per minute: the client waited for three new windows, never got a 429
    assert trio.current_time() - t0 >= 120
    assert sim.limiter.answered_429 == 0
    assert sim.limiter.answered_418 == 0
