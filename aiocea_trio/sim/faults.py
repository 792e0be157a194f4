"""Seeded fault injection: latency, 503s, dropped connections, lost order responses."""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

__all__ = ["FaultConfig", "FaultDecision", "FaultInjector"]


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
    paths: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    orders_only: bool = False

    def applies(self, path: str, is_order: bool) -> bool:
        if self.orders_only and not is_order:
            return False
        return not self.paths or path.startswith(self.paths)


@attrs.frozen
class FaultDecision:
    """What happens to one request."""

    latency: float = 0.0
    error: bool = False
    drop: bool = False
    lose_response: bool = False


_NONE = FaultDecision()


class FaultInjector:
    """Draws decisions from one seeded RNG: the same request sequence gives the same faults."""

    def __init__(self, rules: Sequence[FaultConfig], seed: int) -> None:
        self.rules = tuple(rules)
        self._rng = random.Random(f"faults:{seed}")

    def decide(self, path: str, is_order: bool, is_placement: bool) -> FaultDecision:
        if not self.rules:
            return _NONE
        latency = 0.0
        error = drop = lose = False
        rand = self._rng.random
        for rule in self.rules:
            if not rule.applies(path, is_order):
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
        if not (latency or error or drop or lose):
            return _NONE
        return FaultDecision(latency, error, drop, lose)
