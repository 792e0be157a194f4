"""Checks for the client's numeric settings: one message per kind of mistake.

Used by the client's keyword arguments and by the value objects (`RetryPolicy`,
`OrderSafety`, `TimeSync`) as attrs validators, so that a setting is refused the same way
however it was given.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["check_int", "check_seconds", "count_at_least_1", "seconds", "seconds_positive"]


def check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")


def check_seconds(name: str, value: object, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


# -- as attrs validators ------------------------------------------------------------------


def count_at_least_1(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_int(attribute.name, value)
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


def seconds(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_seconds(attribute.name, value)


def seconds_positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A positive number of seconds, or None."""
    if value is not None:
        check_seconds(attribute.name, value, positive=True)
