"""The few type rules every public constructor of the pipeline and the catalog follows.

A wrong type found when an object is built costs nothing; found inside trio (a
comparison between a str and a float in a worker, `range(2.0)`, a NaN deadline) it is a
confusing traceback far from the line at fault. So, at construction:

- a count (`max_concurrency`, `iter_num`, a limit) is an `int`, and never a `bool`
  (`True` is an int to Python, and always a bug here); a float, even `2.0`, is refused;
- seconds (`timeout`, `exec_interval`, `iter_interval`) are a real number (an int or a
  float; never a bool or a str), finite, and > 0, or >= 0 where 0 means "no pause";
- a flag is a `bool` (a str such as ``"no"`` would be true);

a value of the wrong type is a `TypeError`, a value out of range a `ValueError`, and
the message names the owner and the parameter. The attrs validators (`count`,
`seconds`, `flag`) read the parameter's name from the field; a field that stores the
float uses a named converter calling `check_seconds` (mypy's attrs plugin accepts no
other converter).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import attrs

__all__ = [
    "check_count",
    "check_flag",
    "check_seconds",
    "count",
    "flag",
    "seconds",
]


def _owner(owner: object) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


def _got(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_count(owner: object, name: str, value: object, *, minimum: int = 1) -> int:
    """`value` if it is an int (not a bool) >= `minimum`; TypeError/ValueError otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{_owner(owner)}: {name} must be an int; got {_got(value)}")
    if value < minimum:
        raise ValueError(f"{_owner(owner)}: {name} must be an int >= {minimum}; got {value!r}")
    return value


def check_seconds(owner: object, name: str, value: object, *, zero_ok: bool) -> float:
    """`value` as a float if it is a finite real number > 0 (>= 0 with `zero_ok`)."""
    bound = ">= 0" if zero_ok else "> 0"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(
            f"{_owner(owner)}: {name} must be a number of seconds (int or float); got {_got(value)}"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
        raise ValueError(
            f"{_owner(owner)}: {name} must be a finite number of seconds {bound}; got {value!r}"
        )
    return seconds


def check_flag(owner: object, name: str, value: object) -> bool:
    """`value` if it is a bool; TypeError otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{_owner(owner)}: {name} must be True or False; got {_got(value)}")
    return value


Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def count(*, minimum: int = 1, optional: bool = False) -> Validator:
    """attrs validator: `check_count` (None allowed with `optional`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        check_count(instance, attribute.name, value, minimum=minimum)

    return validate


def seconds(*, zero_ok: bool, optional: bool = False) -> Validator:
    """attrs validator: `check_seconds` (None allowed with `optional`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        check_seconds(instance, attribute.name, value, zero_ok=zero_ok)

    return validate


def flag(*, optional: bool = False) -> Validator:
    """attrs validator: `check_flag` (None allowed with `optional`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        check_flag(instance, attribute.name, value)

    return validate
