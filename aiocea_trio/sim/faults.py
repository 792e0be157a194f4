"""Seeded fault injection: latency, 503s, dropped connections, lost order responses,
garbage bodies, slow and drip-fed answers, 429 storms."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence

import attrs

__all__ = ["GARBAGE_KINDS", "FaultConfig", "FaultDecision", "FaultInjector"]

#: Bodies a ``garbage_rate`` fault answers with, the request having been processed: an HTML
#: page with 200, the real JSON cut in half with 200, an empty 200, a proxy's 408 HTML page.
GARBAGE_KINDS = ("html200", "truncated200", "empty200", "html408")


def _rate() -> float:
    return attrs.field(
        default=0.0,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0)),
    )


def _kinds(value: Sequence[str]) -> tuple[str, ...]:
    kinds = tuple(value)
    unknown = set(kinds) - set(GARBAGE_KINDS)
    if unknown or not kinds:
        raise ValueError(f"garbage_kinds must be a non-empty subset of {GARBAGE_KINDS}")
    return kinds


def _paths(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _active(value: tuple[float, float] | None) -> tuple[float, float] | None:
    if value is None:
        return None
    start, end = (float(v) for v in value)
    if not 0 <= start <= end:
        raise ValueError("active must be (start, end) seconds with 0 <= start <= end")
    return (start, end)


@attrs.frozen
class FaultConfig:
    """One fault rule. Rates are probabilities per matching request.

    Attributes:
        latency: seconds added before the request is processed (trio time, so autojump
            clocks skip it).
        latency_jitter: up to this many extra seconds, uniformly drawn.
        error_rate: answer 503 with -1006 "execution status unknown" *without* processing.
        drop_rate: cut the connection without processing (the client sees a transport
            error such as ``httpx.RemoteProtocolError``).
        lost_order_response_rate: on order placement only: the order IS placed, then the
            connection is cut before the response.
        garbage_rate: the request IS processed (an order placed), then the answer is replaced
            by one of ``garbage_kinds`` (see ``GARBAGE_KINDS``).
        garbage_kinds: which garbage bodies to draw from, uniformly.
        error_in_200_rate: answer 200 with Binance's error JSON ``{"code": -1000, ...}``
            *without* processing.
        slow_response_rate: the request IS processed, then the answer waits
            ``slow_response_delay`` seconds (longer than a client's timeout, say).
        drip_rate: the request IS processed, then the body is sent one byte every
            ``drip_interval`` seconds (a server that keeps a read timeout from firing).
        rate_limit_rate: answer 429 ``-1003`` with ``Retry-After: rate_limit_retry_after``
            without processing or charging weight (a 429 storm; no ban follows).
        active: ``(start, end)`` seconds on the simulator's clock since it started: the rule
            applies only then (a storm "for a while"); None: always.
        paths: path prefixes the rule applies to (empty: every path).
        orders_only: apply only to order placement and cancellation requests.
    """

    latency: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    latency_jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    error_rate: float = attrs.field(
        default=0.0,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0)),
    )
    drop_rate: float = attrs.field(
        default=0.0,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0)),
    )
    lost_order_response_rate: float = attrs.field(
        default=0.0,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0)),
    )
    garbage_rate: float = _rate()
    garbage_kinds: tuple[str, ...] = attrs.field(default=GARBAGE_KINDS, converter=_kinds)
    error_in_200_rate: float = _rate()
    slow_response_rate: float = _rate()
    slow_response_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0.0))
    drip_rate: float = _rate()
    drip_interval: float = attrs.field(default=0.5, validator=attrs.validators.gt(0.0))
    rate_limit_rate: float = _rate()
    rate_limit_retry_after: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    active: tuple[float, float] | None = attrs.field(default=None, converter=_active)
    paths: tuple[str, ...] = attrs.field(default=(), converter=_paths)
    orders_only: bool = False

    def applies(self, path: str, is_order: bool, elapsed_s: float = 0.0) -> bool:
        if self.orders_only and not is_order:
            return False
        if self.active is not None and not self.active[0] <= elapsed_s < self.active[1]:
            return False
        return not self.paths or path.startswith(self.paths)


@attrs.frozen
class FaultDecision:
    """What happens to one request."""

    latency: float = 0.0
    error: bool = False
    drop: bool = False
    lose_response: bool = False
    garbage: str | None = None
    """One of ``GARBAGE_KINDS``: the body that replaces the processed request's answer."""
    error_in_200: bool = False
    slow_response: float = 0.0
    """Seconds to wait after processing, before answering."""
    drip_interval: float = 0.0
    """Seconds between the bytes of the body (0: sent at once)."""
    rate_limited: float | None = None
    """Answer 429 with this Retry-After (seconds) without processing."""


_NONE = FaultDecision()


class FaultInjector:
    """Draws decisions from one seeded RNG: the same request sequence gives the same faults.

    ``counts`` tallies the faults decided, by kind ("error", "drop", "lost", "garbage:<kind>",
    "error_in_200", "slow", "drip", "429"), for tests to report.
    """

    def __init__(self, rules: Sequence[FaultConfig], seed: int) -> None:
        self.rules = tuple(rules)
        self._rng = random.Random(f"faults:{seed}")
        self.counts: Counter[str] = Counter()

    def decide(
        self, path: str, is_order: bool, is_placement: bool, elapsed_s: float = 0.0
    ) -> FaultDecision:
        """The faults for one request; ``elapsed_s``: seconds since the simulator started."""
        if not self.rules:
            return _NONE
        latency = 0.0
        error = drop = lose = False
        garbage: str | None = None
        error_in_200 = False
        slow = drip = 0.0
        rate_limited: float | None = None
        rand = self._rng.random
        for rule in self.rules:
            if not rule.applies(path, is_order, elapsed_s):
                continue
            latency += rule.latency
            if rule.latency_jitter:
                latency += rand() * rule.latency_jitter
            if rule.error_rate and rand() < rule.error_rate:
                error = True
            if rule.drop_rate and rand() < rule.drop_rate:
                drop = True
            if (
                is_placement
                and rule.lost_order_response_rate
                and (rand() < rule.lost_order_response_rate)
            ):
                lose = True
            # Newer kinds draw only when set, so older configurations meet the same faults.
            if rule.garbage_rate and rand() < rule.garbage_rate:
                garbage = self._rng.choice(rule.garbage_kinds)
            if rule.error_in_200_rate and rand() < rule.error_in_200_rate:
                error_in_200 = True
            if rule.slow_response_rate and rand() < rule.slow_response_rate:
                slow = max(slow, rule.slow_response_delay)
            if rule.drip_rate and rand() < rule.drip_rate:
                drip = rule.drip_interval
            if rule.rate_limit_rate and rand() < rule.rate_limit_rate:
                rate_limited = rule.rate_limit_retry_after
        if not (
            latency
            or error
            or drop
            or lose
            or garbage
            or error_in_200
            or slow
            or drip
            or rate_limited is not None
        ):
            return _NONE
        decision = FaultDecision(
            latency, error, drop, lose, garbage, error_in_200, slow, drip, rate_limited
        )
        self._count(decision)
        return decision

    def _count(self, d: FaultDecision) -> None:
        """Tally what will actually happen (the app applies the first answer that wins)."""
        counts = self.counts
        if d.drop:
            counts["drop"] += 1
        elif d.error:
            counts["error"] += 1
        elif d.rate_limited is not None:
            counts["429"] += 1
        elif d.error_in_200:
            counts["error_in_200"] += 1
        elif d.lose_response:
            counts["lost"] += 1  # counted when drawn; an order rejected anyway is not lost
        elif d.garbage:
            counts[f"garbage:{d.garbage}"] += 1
        else:
            if d.slow_response:
                counts["slow"] += 1
            if d.drip_interval:
                counts["drip"] += 1
