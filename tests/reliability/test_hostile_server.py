"""A hostile server, generated: whatever it answers, every request ends in time with a
correct result or a ``BinanceError``, and orders are never duplicated or lost.

Hypothesis draws a script of answers (statuses, ``Retry-After`` in every form,
HTML, empty, truncated and wrong-typed JSON, huge bodies, dropped and dripping
connections, answers later than the timeout); a transport in front of the
simulator plays the script, then lets the simulator answer. For orders the
script may let the simulator execute the order and still answer garbage, as a
broken proxy would: the simulator's book must then hold exactly the orders the
client believes placed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiocea_trio import OrderStatusUnknownError, SimExchange
from aiocea_trio.errors import BinanceError

pytestmark = pytest.mark.slow

TIMEOUT = 10.0
# Every wait the client makes is bounded (retries x (timeout + backoff), the 429 cap,
# order look-ups): a request still running after this much trio time has hung.
DEADLINE = 3_600.0

_JSON_BODIES = [
    "{}", "null", "[]", '"text"', "5", "true", '{"code": "x"}', '{"code": -1121, "msg": "Invalid symbol."}',
    '{"code": -1006, "msg": "An unexpected response was received from the message bus."}',
    '{"code": -2010, "msg": "Account has insufficient balance for requested action."}',
    '{"orderId": "not-a-number"}', "[[1, 2], {}]",
]
_BROKEN_BODIES = [
    "", "<html><body><h1>502 Bad Gateway</h1></body></html>", '{"serverTime": 17000',
    '[[1700000000000, "1.0", "2.0"', "\x00\xff\xfe garbage", "a" * 1_000_000,
]
_RETRY_AFTER = [
    None, "0", "1", "30", "inf", "-inf", "1e9", "-5", "nan", "soon", "",
    "Fri, 01 Jan 2100 00:00:00 GMT", "Mon, 01 Jan 1990 00:00:00 GMT",
]
_STATUSES = [200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 418, 429, 500, 502, 503, 504]


@attrs.frozen
class Answer:
    """One scripted answer. ``process``: the simulator handles the request first."""

    kind: str  # "respond", "drop", "drip", "late"
    status: int = 200
    body: str = ""
    retry_after: str | None = None
    gzip_lie: bool = False
    process: bool = False

    def ambiguous(self) -> bool:
        """Could a real exchange have executed an order and still answered this?"""
        if self.kind != "respond":
            return True
        if self.status >= 500 or self.status == 408:
            return True
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.status not in (418, 429)  # a 418/429 page means "refused"
        if isinstance(data, dict) and isinstance(data.get("code"), int):
            return data["code"] == -1006
        return not (isinstance(data, dict) and "orderId" in data)


answers = st.builds(
    Answer,
    kind=st.sampled_from(["respond"] * 6 + ["drop", "drip", "late"]),
    status=st.sampled_from(_STATUSES),
    body=st.sampled_from(_JSON_BODIES + _BROKEN_BODIES),
    retry_after=st.sampled_from(_RETRY_AFTER),
    gzip_lie=st.booleans(),
    process=st.booleans(),
)


class _Drip(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(10_000):
            await trio.sleep(0.5)
            yield b" "


@attrs.define
class HostileTransport(httpx.AsyncBaseTransport):
    """Plays ``script`` (one answer per request), then passes requests to ``inner``."""

    inner: httpx.AsyncBaseTransport
    script: list[Answer]
    paths: tuple[str, ...] = ()  # the paths it plays on (all but exchangeInfo if empty)
    executed: int = 0
    in_process = True  # no network: the client may send its key over plain http

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if (
            not self.script
            or path.endswith("/exchangeInfo")
            or (self.paths and path not in self.paths)
        ):
            return await self.inner.handle_async_request(request)
        answer = self.script.pop(0)
        is_order = request.url.path == "/api/v3/order" and request.method == "POST"
        if answer.process and (not is_order or answer.ambiguous()):
            real = await self.inner.handle_async_request(request)
            await real.aread()
            self.executed += int(is_order)
        if answer.kind == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if answer.kind == "drip":
            return httpx.Response(200, stream=_Drip())
        if answer.kind == "late":
            await trio.sleep(TIMEOUT * 3)
        headers = {"Content-Type": "application/json"}
        if answer.retry_after is not None:
            headers["Retry-After"] = answer.retry_after
        if answer.gzip_lie:
            headers["Content-Encoding"] = "gzip"
        return httpx.Response(answer.status, headers=headers, content=answer.body.encode())


def _run(script: list[Answer], body: Any) -> Any:
    return trio.run(functools.partial(body, script), clock=trio.testing.MockClock(autojump_threshold=0))


async def _reads(script: list[Answer]) -> None:
    sim = SimExchange(seed=1)
    hostile = HostileTransport(sim.transport(), list(script))
    async with sim.client(transport=hostile, timeout=TIMEOUT, order_lookup_delay=0.5) as client:
        calls: list[tuple[str, str, dict[str, object], bool]] = [
            ("GET", "/api/v3/time", {}, False),
            ("GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 5}, False),
            ("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5}, False),
            ("GET", "/api/v3/account", {}, True),
        ]
        for method, path, params, signed in calls:
            with trio.fail_after(DEADLINE):
                try:
                    result = await client.request(method, path, params, signed=signed)
                except BinanceError:
                    continue
            # A success is either the simulator's own answer or a scripted 2xx JSON body.
            assert result is not None or any(a.body == "null" for a in script), (path, result)
        with trio.fail_after(DEADLINE):
            try:
                offset = await client.sync_time()
            except BinanceError:
                return
        assert isinstance(offset, int)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(script=st.lists(answers, min_size=1, max_size=10))
def test_every_read_ends_in_time_with_a_result_or_a_binance_error(script: list[Answer]) -> None:
    _run(script, _reads)


async def _orders(script: list[Answer]) -> None:
    sim = SimExchange(seed=2)
    hostile = HostileTransport(sim.transport(), list(script), paths=("/api/v3/order",))
    believed: dict[str, str] = {}
    async with sim.client(transport=hostile, timeout=TIMEOUT, order_lookup_delay=0.5) as client:
        for n in range(6):
            cid = f"hostile-{n}"
            params = {
                "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.001", "price": "1000", "newClientOrderId": cid,
            }
            with trio.fail_after(DEADLINE):
                try:
                    order = await client.request("POST", "/api/v3/order", params, signed=True)
                except OrderStatusUnknownError:
                    believed[cid] = "unknown"
                except BinanceError:
                    believed[cid] = "failed"
                else:
                    assert order["clientOrderId"] == cid
                    believed[cid] = "placed"
    account = sim.account()
    on_book = [o.client_order_id for o in account.orders.values()]
    assert len(on_book) == len(set(on_book)), f"duplicate orders: {on_book}"
    for cid, belief in believed.items():
        if belief == "placed":
            assert cid in on_book, f"{cid} reported placed but not on the exchange"
        elif belief == "failed":
            assert cid not in on_book, f"{cid} reported failed but exists on the exchange"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(script=st.lists(answers, min_size=1, max_size=12))
def test_orders_under_a_hostile_server_are_never_duplicated_or_misreported(
    script: list[Answer],
) -> None:
    _run(script, _orders)
