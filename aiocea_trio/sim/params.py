"""One request as the handlers see it, and the parameter checks they share."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

from ..endpoints import LimitRule
from .accounts import Account
from .errors import ApiError, mandatory
from .market import MarketData, Series
from .symbols import SymbolSpec

__all__ = [
    "Ctx",
    "Handler",
    "RawJSON",
    "SymbolLookup",
    "int_param",
    "limit_param",
    "one_or_list",
    "page_limit",
    "parse_params",
]

_SYMBOL = re.compile(r"^[A-Z0-9\-_.]{1,20}$")


@attrs.define(eq=False, slots=True)
class Ctx:
    """One request as handlers see it."""

    method: str
    path: str
    market: str
    params: dict[str, str]
    now_ms: int
    account: Account | None = None
    limit_rule: LimitRule | None = None
    """The registry's rule for the endpoint's ``limit`` (read by ``page_limit``)."""


Handler = Callable[[Ctx], Any]
"""A route's implementation: the request in, the JSON-able answer (or ``RawJSON``) out."""


@attrs.frozen
class RawJSON:
    """A handler result that is already JSON text (kline pages are printed directly)."""

    text: str


def parse_params(query: bytes, body: bytes) -> dict[str, str]:
    """Merge query and form body parameters; the query wins a clash, duplicates are -1101."""
    out: dict[str, str] = {}
    for raw, is_query in ((query, True), (body, False)):
        if not raw:
            continue
        seen: set[str] = set()
        for k, v in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if k in seen:
                raise ApiError(-1101, "Duplicate values for a parameter detected.")
            seen.add(k)
            if is_query or k not in out:
                out[k] = v
    return out


def int_param(params: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """An integer parameter (negative allowed), ``default`` when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(raw)


def limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit``, between 1 and ``maximum`` (-1130 outside)."""
    limit = int_param(params, "limit", default)
    assert limit is not None
    if limit < 1 or limit > maximum:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def page_limit(r: Ctx, default: int) -> int:
    """``limit`` as the registry's rule for the endpoint serves it: capped at the largest
    page (spot market data) or -1130 (futures) when too large, -1130 when below 1."""
    rule = r.limit_rule
    if rule is None:
        return limit_param(r.params, default, 1000)
    limit = int_param(r.params, "limit", default)
    assert limit is not None
    served = rule.served(limit)
    if served is None:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return served


def one_or_list(r: Ctx, rows: list[dict[str, Any]]) -> Any:
    """COIN-M tickers always answer a list; spot and USDⓈ-M an object for one symbol."""
    return rows[0] if "symbol" in r.params and r.market != "coinm" else rows


class SymbolLookup:
    """The series a request names (``symbol``, ``symbols`` or ``pair``), checked as Binance
    checks them."""

    def __init__(self, market_data: MarketData, specs: list[SymbolSpec]) -> None:
        self.md = market_data
        self.specs: dict[str, list[SymbolSpec]] = {"spot": [], "usdm": [], "coinm": []}
        for spec in specs:
            self.specs[spec.market].append(spec)

    def series(self, r: Ctx, name: str = "symbol") -> Series:
        """The one series named by parameter ``name`` (mandatory)."""
        symbol = r.params.get(name)
        if not symbol:
            raise mandatory(name)
        if not _SYMBOL.match(symbol):
            raise ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is "
                "'^[A-Z0-9-_.]{1,20}$'.",
            )
        series = self.md.get(r.market, symbol)
        if series is None:
            raise ApiError(-1121, "Invalid symbol.")
        return series

    def many(self, r: Ctx) -> list[Series] | None:
        """``symbol`` or ``symbols`` (JSON array) or (COIN-M) ``pair``; None means all."""
        if "symbol" in r.params and "symbols" in r.params:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        if "symbol" in r.params:
            return [self.series(r)]
        if "symbols" in r.params:
            return self._listed(r)
        if "pair" in r.params and r.market == "coinm":
            return [
                self.md.series[(r.market, s.symbol)]
                for s in self.specs["coinm"]
                if s.pair == r.params["pair"]
            ]
        return None

    def _listed(self, r: Ctx) -> list[Series]:
        try:
            names = json.loads(r.params["symbols"])
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.")
        if len(set(names)) != len(names):
            raise ApiError(-1151, "Symbol is present multiple times in the list.")
        out = []
        for name in names:
            s = self.md.get(r.market, name)
            if s is None:
                raise ApiError(-1121, "Invalid symbol.")
            out.append(s)
        return out

    def selected(self, r: Ctx) -> list[Series]:
        """``many``, or every series of the request's market when none is named."""
        chosen = self.many(r)
        return chosen if chosen is not None else self.all_series(r.market)

    def all_series(self, market: str) -> list[Series]:
        return [self.md.series[(market, s.symbol)] for s in self.specs[market]]
