"""Exactly-once orders: 200 resting orders through every way an answer can go wrong.

Spot and USDⓈ-M LIMIT orders far from the price (so they rest and stay visible) are placed
through the simulator with lost responses (the order IS placed, the connection cut), 503s
and dropped connections before processing, answers slower than the client's timeout, and,
in the second variant, garbage answers to orders that were placed (HTML with 200, JSON cut
in half, an empty 200, a proxy's 408 HTML page) and Binance's error JSON with 200. Some
placements are also cancelled by the caller at a random moment.

Then, against the exchange's own book:

* what the client reported placed exists, as reported (same ``clientOrderId``, ``orderId``);
* what the client reported failed (anything but ``OrderStatusUnknownError``) does not exist;
* each ``newClientOrderId`` is on the exchange at most once, and nothing else is (every
  intent has its own price, so an order resent under a new id would show as a duplicate);
* after the caller reconciles what it cannot know (cancelled and "unknown" placements: look
  up by ``newClientOrderId``, place again with the same id when absent) the exchange holds
  exactly 200 orders: duplicates 0.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from aiocea_trio import BinanceAPIError, BinanceClient, BinanceError, OrderStatusUnknownError
from aiocea_trio.sim import FaultConfig, SimExchange

SEED = 1_207
START_MS = 1_750_000_123_456
ORDERS = 200
CANCEL_SHARE = 0.15  # placements the caller cancels at a random moment
CLIENT_TIMEOUT = 5.0
WORKERS = 12

ORDER_PATHS = ("/api/v3/order", "/fapi/v1/order")
#: (market, symbol, path) of the instruments the orders go to, in turn.
VENUES = (
    ("spot", "BTCUSDT", "/api/v3/order"),
    ("spot", "ETHUSDT", "/api/v3/order"),
    ("spot", "BNBUSDT", "/api/v3/order"),
    ("spot", "SOLUSDT", "/api/v3/order"),
    ("usdm", "BTCUSDT", "/fapi/v1/order"),
    ("usdm", "ETHUSDT", "/fapi/v1/order"),
)
TICKERS = {"spot": "/api/v3/ticker/price", "usdm": "/fapi/v1/ticker/price"}


def _faults(variant: str) -> list[FaultConfig]:
    faults = [
        # Placement, cancel and lookup alike (GET .../order shares the prefix).
        FaultConfig(
            latency=0.05, latency_jitter=0.5, error_rate=0.05, drop_rate=0.05, paths=ORDER_PATHS
        ),
        # Placement and cancel only: the order is placed, then the answer is lost or late.
        FaultConfig(
            lost_order_response_rate=0.10,
            slow_response_rate=0.05,
            slow_response_delay=4 * CLIENT_TIMEOUT,
            orders_only=True,
        ),
    ]
    if variant == "garbage":
        faults.append(FaultConfig(garbage_rate=0.15, error_in_200_rate=0.05, orders_only=True))
    return faults


@attrs.define
class Intent:
    """One order the caller wants on the exchange exactly once."""

    n: int
    market: str
    symbol: str
    path: str
    price: str
    quantity: str
    cid: str
    cancel_after: float | None
    outcome: str = "pending"  # placed / failed / unknown / cancelled
    answer: Any = None
    error: BaseException | None = None

    def params(self) -> dict[str, object]:
        params: dict[str, object] = {
            "symbol": self.symbol,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": self.quantity,
            "price": self.price,
            "newClientOrderId": self.cid,
        }
        if self.market == "spot":
            params["newOrderRespType"] = "ACK"
        return params


def _intents(
    sim: SimExchange, prices: dict[tuple[str, str], Decimal], rng: random.Random
) -> list[Intent]:
    specs = {(s.market, s.symbol): s for s in sim.symbol_specs}
    intents = []
    for n in range(ORDERS):
        market, symbol, path = VENUES[n % len(VENUES)]
        spec = specs[(market, symbol)]
        tick, step = spec.tick, Decimal(1).scaleb(-spec.qty_decimals)
        # Half the price, minus one tick per intent: resting, and every intent its own price.
        price = (prices[(market, symbol)] / 2).quantize(tick, ROUND_DOWN) - n * tick
        qty = max(spec.min_qty, (spec.min_notional * 2 / price).quantize(step, ROUND_UP))
        cancel_after = rng.uniform(0.0, 3.0) if rng.random() < CANCEL_SHARE else None
        intents.append(
            Intent(
                n, market, symbol, path, str(price), str(qty), f"eo-{SEED}-{n:03d}", cancel_after
            )
        )
    return intents


def _on_exchange(sim: SimExchange) -> list[Any]:
    return [o for o in sim.account("demo").orders.values() if o.market in ("spot", "usdm")]


async def _place(client: BinanceClient, intent: Intent) -> None:
    """One placement as a caller makes it, recording what the client said."""
    try:
        if intent.cancel_after is None:
            intent.answer = await client.request("POST", intent.path, intent.params(), signed=True)
        else:
            with trio.move_on_after(intent.cancel_after) as scope:
                intent.answer = await client.request(
                    "POST", intent.path, intent.params(), signed=True
                )
            if scope.cancelled_caught:
                intent.outcome = "cancelled"
                return
    except OrderStatusUnknownError as exc:
        intent.outcome, intent.error = "unknown", exc
    except BinanceError as exc:
        intent.outcome, intent.error = "failed", exc
    else:
        intent.outcome = "placed"


async def _lookup(client: BinanceClient, intent: Intent, counter: Counter[str]) -> bool:
    """Whether the exchange has the order, asked by newClientOrderId (retried until known)."""
    params = {"symbol": intent.symbol, "origClientOrderId": intent.cid}
    for _ in range(50):
        counter["test lookups"] += 1
        try:
            found = await client.request("GET", intent.path, params, signed=True)
        except BinanceAPIError as exc:
            if exc.code == -2013:
                return False
        except BinanceError:
            pass
        else:
            assert found["clientOrderId"] == intent.cid
            return True
    raise AssertionError(f"order {intent.cid} could not be looked up in 50 tries")


@pytest.mark.parametrize("variant", ["lost-slow-cancelled", "garbage"])
async def test_200_orders_exactly_once_through_lost_garbage_slow_and_cancelled_answers(
    variant: str, seeded: None, autojump_clock: trio.testing.MockClock
) -> None:
    rng = random.Random(SEED)
    sim = SimExchange(seed=SEED, start_time_ms=START_MS, faults=_faults(variant))
    counter: Counter[str] = Counter()
    async with sim.client(timeout=CLIENT_TIMEOUT) as client:
        prices = {}
        for market, symbol, _ in VENUES:  # ticker paths carry no faults
            got = await client.request("GET", TICKERS[market], {"symbol": symbol})
            prices[(market, symbol)] = Decimal(got["price"])
        intents = _intents(sim, prices, rng)

        # Round one: every intent placed once, by a pool of workers.
        send, receive = trio.open_memory_channel[Intent](len(intents))
        for intent in intents:
            send.send_nowait(intent)
        send.close()

        async def worker() -> None:
            async for intent in receive:
                await _place(client, intent)

        with trio.fail_after(3_600):
            async with trio.open_nursery() as nursery:
                for _ in range(WORKERS):
                    nursery.start_soon(worker)
        first = Counter(i.outcome for i in intents)
        client_lookups_first = client.statistics().order_lookups

        # What the client said must agree with the exchange, before anyone reconciles.
        book = Counter(o.client_order_id for o in _on_exchange(sim))
        by_cid = {o.client_order_id: o for o in _on_exchange(sim)}
        wrong: list[str] = []
        for i in intents:
            if i.outcome == "placed":
                o = by_cid.get(i.cid)
                if o is None:
                    wrong.append(f"{i.cid} reported placed ({i.answer!r}) but not on the exchange")
                elif not (
                    isinstance(i.answer, dict)
                    and i.answer.get("orderId") == o.order_id
                    and i.answer.get("clientOrderId") == i.cid
                ):
                    wrong.append(
                        f"{i.cid} reported placed as {i.answer!r}, exchange: orderId {o.order_id}"
                    )
            elif i.outcome == "failed" and i.cid in book:
                wrong.append(f"{i.cid} reported failed ({i.error!r}) but on the exchange")

        # Reconcile what the caller cannot know: look up, place again (same id) if absent.
        for _ in range(10):
            pending = [i for i in intents if i.outcome in ("cancelled", "unknown", "failed")]
            if not pending:
                break
            for i in pending:
                if await _lookup(client, i, counter):
                    i.outcome = "placed"
                else:
                    counter["placed again"] += 1
                    i.cancel_after = None
                    await _place(client, i)
        stats = client.statistics()

    orders = _on_exchange(sim)
    per_cid = Counter(o.client_order_id for o in orders)
    per_price = Counter((o.market, o.symbol, o.price) for o in orders)
    ours = {i.cid for i in intents}
    duplicates = sum(n - 1 for n in per_cid.values()) + sum(n - 1 for n in per_price.values())
    strays = [c for c in per_cid if c not in ours]
    figures = (
        f"variant={variant} intents={ORDERS} first round={dict(first)} "
        f"on the exchange={len(orders)} open={sum(o.is_open for o in orders)} "
        f"duplicates={duplicates} strays={len(strays)} "
        f"client lookups={stats.order_lookups} (first round {client_lookups_first}) "
        f"test lookups={counter['test lookups']} placed again={counter['placed again']} "
        f"requests={stats.requests} retries={stats.retries} "
        f"faults={dict(sim.fault_injector.counts)}"
    )
    print(figures)
    assert not wrong, f"{len(wrong)} orders the client got wrong, e.g. {wrong[:4]}; {figures}"
    assert duplicates == 0, figures
    assert not strays, f"orders nobody asked for: {strays[:5]}; {figures}"
    assert len(orders) == ORDERS, figures
    assert set(per_cid) == ours, figures
    assert all(o.is_open for o in orders), figures  # far from the price: all resting
    # The faults did happen, and the caller's cancellations hit placements.
    faults = sim.fault_injector.counts
    assert faults["lost"] > 5, figures
    assert faults["slow"] > 3, figures
    assert first["cancelled"] > 5, figures
    if variant == "garbage":
        assert sum(n for k, n in faults.items() if k.startswith("garbage:")) > 10, figures
