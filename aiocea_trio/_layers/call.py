"""What the client's layers pass down: one logical request, and the counters they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from .._params import param_str
from ..endpoints import Endpoint
from ..errors import BinanceResponseError
from ..markets import Market

__all__ = ["Call", "Counters", "Send"]


@attrs.frozen
class Call:
    """One logical request, kept whole so that retries resend exactly the same thing.

    Attributes:
        endpoint: the registry's entry (an unsigned default-weight one for unknown paths).
        base: the scheme and host it goes to.
        params: the parameters, ``None`` values already dropped.
        extra: a query string that came with a full URL, sent before ``params``.
        signed: add ``timestamp``, ``recvWindow`` and ``signature``.
    """

    endpoint: Endpoint
    base: str
    params: Mapping[str, object] = attrs.field(factory=dict)
    extra: str = ""
    signed: bool = False

    @property
    def market(self) -> Market:
        return self.endpoint.market

    @property
    def method(self) -> str:
        return self.endpoint.method

    @property
    def path(self) -> str:
        return self.endpoint.path

    @property
    def str_params(self) -> dict[str, str]:
        return {k: param_str(v) for k, v in self.params.items()}

    @property
    def weight(self) -> int:
        """The weight to reserve before the outcome is known."""
        weight = self.endpoint.weight
        if isinstance(weight, int):  # most endpoints: no parameters to read
            return weight
        return self.endpoint.request_weight(self.str_params)

    @property
    def describe(self) -> str:
        return f"{self.market.value} {self.method} {self.path}"

    @property
    def where(self) -> dict[str, str]:
        """The keyword arguments every error about this call takes."""
        return {"market": self.market.value, "method": self.method, "path": self.path}

    def wrong_shape(self, expected: str, data: object) -> BinanceResponseError:
        """The error for an answer to this call that is JSON, but not ``expected``."""
        return BinanceResponseError.wrong_shape(
            expected, data, market=self.market.value, method=self.method, path=self.path
        )


Send = Callable[[Call], Awaitable[Any]]
"""A layer, seen from the one above it."""


@attrs.define
class Counters:
    """What ``BinanceClient.statistics()`` reports of the layers' work."""

    requests: int = 0
    retries: int = 0
    order_lookups: int = 0

    def count_retry(self) -> None:
        self.retries += 1
