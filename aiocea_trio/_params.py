"""Turning Python values into Binance's percent-encoded query strings.

The signature covers these exact bytes, so there is one encoder and it is
deterministic: insertion order, ``None`` dropped, floats never in exponent form.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import quote

__all__ = ["encode_params", "param_str"]


def param_str(value: object) -> str:
    """Binance's text for one parameter value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return param_str(value.value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr is the shortest exact text; Decimal then drops any exponent (1e-05 -> 0.00001).
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return json.dumps([param_str(v) for v in value], separators=(",", ":"))
    return str(value)


def encode_params(params: Mapping[str, object] | None) -> str:
    """``k=v&...`` with every key and value percent-encoded (UTF-8), ``None`` values left out."""
    if not params:
        return ""
    return "&".join(
        f"{quote(key, safe='')}={quote(param_str(value), safe='')}"
        for key, value in params.items()
        if value is not None
    )
