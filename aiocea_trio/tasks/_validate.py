"""Parameter checks for the catalog, run when a task is built, before any request.

A bad parameter found here costs nothing; the same mistake found by Binance costs request
weight, a round trip, and (inside a long pipeline) a failed task far from the line that
built it. Every message names the task, the parameter and what is allowed.

The attrs validators read their rules from the task's class (``intervals``,
``limit_rule``, ...), so one task kind serves all three markets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from .._params import param_str
from ..client import new_client_order_id
from ..endpoints import KLINE_INTERVALS, LimitRule
from ..markets import Market
from ..symbols import symbol_message, symbol_problem

__all__ = [
    "CLIENT_ORDER_ID",
    "FUTURES_INTERVALS",
    "SPOT_INTERVALS",
    "LimitRule",
    "check_client_order_id",
    "check_decimal",
    "check_enum",
    "check_interval",
    "check_limit",
    "check_one_of_ids",
    "check_order_requirements",
    "check_time",
    "check_time_range",
    "decimal_text",
    "new_client_order_id",
    "optional_int",
    "optional_symbol",
    "optional_symbols",
    "required_symbol",
]

SPOT_INTERVALS: Final = KLINE_INTERVALS[Market.SPOT]
"""Spot kline intervals (case-sensitive: ``1m`` is a minute, ``1M`` a month)."""
FUTURES_INTERVALS: Final = KLINE_INTERVALS[Market.USDM]
"""USDⓈ-M and COIN-M kline intervals: the spot ones without ``1s``."""

CLIENT_ORDER_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
"""What Binance accepts as a ``newClientOrderId`` / ``origClientOrderId``."""


def _who(instance: object) -> str:
    return type(instance).__name__


def _fail(instance: object, message: str) -> ValueError:
    return ValueError(f"{_who(instance)}: {message}")


def _check_int(instance: object, name: str, value: object) -> int:
    # bool is an int subclass, but limit=True is a bug, never a number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{_who(instance)}: {name} must be an int; got {value!r}")
    return value


def required_symbol(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A Binance symbol (``BTCUSDT``, ``BTCUSD_PERP``): see ``aiocea_trio.symbols``.

    Its alphabet keeps a symbol one safe URL and path component (no ``/``, ``..``, spaces).
    """
    if not isinstance(value, str):
        raise TypeError(f"{_who(instance)}: {attribute.name} must be a str; got {value!r}")
    problem = symbol_problem(value)
    if problem is not None:
        raise _fail(instance, symbol_message(attribute.name, value, problem))


def optional_symbol(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None (all symbols) or a valid symbol."""
    if value is not None:
        required_symbol(instance, attribute, value)


def optional_symbols(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None or a non-empty sequence of symbols (sent as a JSON array)."""
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"{_who(instance)}: {attribute.name} must be a list of symbols; got {value!r}"
        )
    if not value:
        raise _fail(instance, f"{attribute.name} must name at least one symbol; got []")
    for item in value:
        required_symbol(instance, attribute, item)


def optional_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None or a non-negative int (ids such as ``fromId`` and ``orderId``)."""
    if value is None:
        return
    if _check_int(instance, attribute.name, value) < 0:
        raise _fail(instance, f"{attribute.name} must be >= 0; got {value!r}")


def check_time(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None or a time in milliseconds since the epoch (an int >= 0)."""
    optional_int(instance, attribute, value)


def check_time_range(instance: object, start: int | None, end: int | None) -> None:
    """startTime must not come after endTime (Binance answers -1023 or an empty list)."""
    if start is not None and end is not None and start > end:
        raise _fail(instance, f"startTime must not be after endTime; got {start} > {end}")


def check_interval(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """The interval must be one of the class's ``intervals``."""
    allowed: Sequence[str] = getattr(type(instance), "intervals", SPOT_INTERVALS)
    if value not in allowed:
        raise _fail(
            instance,
            f"{attribute.name} must be one of {', '.join(allowed)}; got {value!r}",
        )


def check_limit(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None (Binance's default) or an int the class's ``limit_rule`` allows."""
    if value is None:
        return
    number = _check_int(instance, attribute.name, value)
    rule: LimitRule = type(instance).limit_rule  # type: ignore[attr-defined]
    if not rule.allows(number):
        raise _fail(instance, f"{attribute.name} must be {rule}; got {number!r}")


def check_enum(*allowed: str, optional: bool = False) -> Any:
    """A validator accepting exactly the given values (Binance's enums are case-sensitive)."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if value not in allowed:
            raise _fail(
                instance,
                f"{attribute.name} must be one of {', '.join(allowed)}; got {value!r}",
            )

    return validate


def check_client_order_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None or an id Binance accepts: 1-36 of ``A-Z a-z 0-9 . : / _ -``."""
    if value is None:
        return
    if not isinstance(value, str) or not CLIENT_ORDER_ID.match(value):
        raise _fail(
            instance,
            f"{attribute.name} must match {CLIENT_ORDER_ID.pattern} "
            f"(1-36 of A-Z a-z 0-9 . : / _ -); got {value!r}",
        )


def decimal_text(value: object) -> Any:
    """Converter: a quantity or price given as Decimal, int or float becomes Binance's text.

    Floats go by their shortest repr, never in exponent form (``1e-05`` -> ``0.00001``).
    Anything else passes through unchanged for `check_decimal` to judge, which can name
    the parameter (a converter cannot).
    """
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return param_str(value)
    return value


def check_decimal(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """None (not sent) or a positive, finite decimal number as text."""
    if value is None:
        return
    name = f"{_who(instance)}: {attribute.name}"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a number as str, Decimal, int or float; got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal number; got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")


Requirement = str | tuple[str, ...]
"""A parameter name, or alternatives of which at least one must be given."""


def _given(instance: object, name: str) -> bool:
    return getattr(instance, name, None) is not None


def check_order_requirements(
    instance: object,
    order_type: str,
    requirements: Mapping[str, Iterable[Requirement]],
    *,
    exempt: Mapping[str, bool] | None = None,
) -> None:
    """Raise unless every parameter ``order_type`` needs is set on ``instance``.

    Args:
        requirements: order type -> the parameters it needs; a tuple means "any of".
        exempt: parameter name -> True when it is not needed this time (a futures stop
            order with ``closePosition=true`` needs no quantity).
    """
    needed = list(requirements.get(order_type, ()))
    missing: list[str] = []
    for need in needed:
        names = (need,) if isinstance(need, str) else need
        if exempt and any(exempt.get(n, False) for n in names):
            continue
        if not any(_given(instance, n) for n in names):
            missing.append(" or ".join(names))
    if missing:
        wants = ", ".join(n if isinstance(n, str) else " or ".join(n) for n in needed)
        raise _fail(
            instance,
            f"a {order_type} order needs {wants}; missing: {', '.join(missing)}",
        )


def check_one_of_ids(instance: object, order_id: object, client_id: object) -> None:
    """Query and cancel name the order by orderId or origClientOrderId (Binance: -1102)."""
    if order_id is None and client_id is None:
        raise _fail(instance, "give orderId or origClientOrderId (at least one); got neither")
