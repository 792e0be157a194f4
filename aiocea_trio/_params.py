"""Turning Python values into Binance's percent-encoded query strings.

The signature covers these exact bytes, so there is one encoder and it is
deterministic: insertion order, ``None`` dropped, floats never in exponent form.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import quote

__all__ = ["encode_params", "param_str"]

#: What ``quote(text, safe="")`` leaves as it is: such text (most keys and values) skips it.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.\-~]*")


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
        f"{_quoted(key)}={_quoted(param_str(value))}"
        for key, value in params.items()
        if value is not None
    )


def _quoted(text: str) -> str:
    """``quote(text, safe="")``, without its cost when nothing needs encoding."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")
