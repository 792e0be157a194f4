"""No secret anywhere: a signed pipeline under faults, every logger at DEBUG.

The pipeline places, queries and cancels orders and reads the account with an
HMAC key and with an Ed25519 key, through 5xx answers, dropped connections and
lost order responses, some requests refused on purpose, then downloads klines
into a file. Every signature the transport saw, the API keys, the HMAC secret
and the private key must then be absent from every log record (message and
traceback), every error (its text, its repr and its causes and contexts), the
reprs of the client and signers, and every file written.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import attrs
import httpx
import pytest
import trio
import trio.testing

from aiocea_trio import (
    BinanceClient,
    Ed25519Signer,
    GatherTask,
    Operator,
    SimExchange,
    SpotCancelOrder,
    SpotFetchAccount,
    SpotFetchOpenOrders,
    SpotNewOrder,
    SpotQueryOrder,
    Task,
    TaskQueue,
    download_klines_to_file,
)
from aiocea_trio.sim import FaultConfig
from aiocea_trio.sim.exchange import (
    DEMO_API_KEY,
    DEMO_API_SECRET,
    DEMO_ED25519_API_KEY,
    DEMO_ED25519_PRIVATE_KEY,
)

START = 1_700_000_000_000


@attrs.define
class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on, keeping every signature it carried."""

    inner: httpx.AsyncBaseTransport
    signatures: set[str] = attrs.field(factory=set)
    in_process = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        signature = dict(parse_qsl(request.url.query.decode())).get("signature")
        if signature:
            self.signatures.add(signature)
        return await self.inner.handle_async_request(request)


def _orders(n: int, tag: str) -> list[Task]:
    tasks: list[Task] = []
    for i in range(n):
        cid = f"{tag}-{i}"
        tasks.append(
            SpotNewOrder(
                symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                quantity="0.001", price=str(1000 + i), newClientOrderId=cid,
            )
        )
        tasks.append(SpotQueryOrder(symbol="BTCUSDT", origClientOrderId=cid))
        tasks.append(SpotCancelOrder(symbol="BTCUSDT", origClientOrderId=cid))
    # Refused on purpose: an API error whose text must hold no secret either.
    tasks.append(SpotQueryOrder(symbol="BTCUSDT", origClientOrderId=f"{tag}-missing"))
    tasks.append(GatherTask(SpotFetchAccount(), SpotFetchOpenOrders(symbol="BTCUSDT")))
    return tasks


def _written(folder: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]


def _texts(exc: BaseException | None, seen: set[int] | None = None) -> list[str]:
    """An error's text, repr and formatted traceback, and those of its causes."""
    seen = set() if seen is None else seen
    if exc is None or id(exc) in seen:
        return []
    seen.add(id(exc))
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for attr in ("cause",):  # OrderStatusUnknownError keeps the ambiguous failure
        inner = getattr(exc, attr, None)
        if isinstance(inner, BaseException):
            out += _texts(inner, seen)
    return out + _texts(exc.__cause__, seen) + _texts(exc.__context__, seen)


async def test_no_secret_in_any_log_error_repr_or_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: every library's logger, httpx's included
    sim = SimExchange(
        seed=12,
        start_time_ms=START,
        faults=FaultConfig(error_rate=0.1, drop_rate=0.05, lost_order_response_rate=0.2),
    )
    hmac_wire = Recorder(sim.transport())
    ed_wire = Recorder(sim.transport())
    signer = Ed25519Signer(DEMO_ED25519_PRIVATE_KEY)
    errors: list[BaseException] = []
    reprs: list[str] = [repr(signer)]
    clients = [
        sim.client(transport=hmac_wire, order_lookup_delay=0.2),
        BinanceClient(
            DEMO_ED25519_API_KEY,
            signer=signer,
            base_url="http://sim.localhost",
            transport=ed_wire,
            order_lookup_delay=0.2,
        ),
    ]
    out = tmp_path / "klines.csv"
    for number, client in enumerate(clients):
        async with client:
            reprs.append(repr(client))
            queue = TaskQueue()
            queue.add_tasks(*_orders(15, f"s{number}"))
            operator = Operator(client=client, max_concurrency=4).add_queue(queue)
            async with operator.completed() as done:
                async for task in done:
                    if task.error is not None:
                        errors.append(task.error)
                        reprs.append(repr(task))
            await download_klines_to_file(
                client, out, "BTCUSDT", "1m", START - 86_400_000, START - 3_600_000,
                source="rest",
            )
            reprs.append(repr(client.statistics()))

    signatures = hmac_wire.signatures | ed_wire.signatures
    assert len(signatures) > 60, "the pipeline signed too little to prove anything"
    assert errors, "no request failed: the failure paths were not exercised"
    secrets = {
        DEMO_API_KEY, DEMO_API_SECRET, DEMO_ED25519_API_KEY,
        DEMO_ED25519_PRIVATE_KEY.splitlines()[1],  # the key's base64 body
    }
    for signature in signatures:
        secrets |= {signature, unquote(signature)}

    records = [r.getMessage() for r in caplog.records]
    records += [caplog.handler.format(r) for r in caplog.records if r.exc_info]
    # Signed request lines were logged (requests go straight to the transport, so httpx's
    # own INFO lines are covered in test_client_hostile.py).
    assert any("signature=<redacted>" in r.getMessage() for r in caplog.records)
    texts = records + reprs + [t for e in errors for t in _texts(e)]
    files = _written(tmp_path)
    assert len(files) >= 2  # the CSV and its sidecar
    for secret in secrets:
        for where, items in (("log", records), ("error or repr", texts), ("file", files)):
            leaked = [t for t in items if secret in t]
            assert not leaked, f"a secret appears in a {where}: {leaked[0][:300]!r}"
