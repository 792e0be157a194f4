"""Symbol names, checked before they reach a URL or a file path.

A symbol goes into query strings, into archive URLs (``/data/spot/daily/klines/<SYMBOL>/...``)
and into cache paths below ``cache_dir``: ``../../x`` or ``BTC/USDT`` would leave the cache
or make nested folders. Every entry point that takes a symbol checks it here first.

The alphabet is Binance's own (its API documents symbols as ``^[A-Z0-9-_.]{1,20}$``), with
two restrictions that make any symbol a safe single path component: the first character is
a letter or a digit (so never ``.``, ``..`` or an option-like ``-x``), and at most 32
characters. Lower case is refused, not upper-cased: Binance refuses ``btcusdt`` too, and a
silently changed name is a different file name (the CLI upper-cases what it is given).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SYMBOL_PATTERN", "check_symbol", "symbol_message", "symbol_problem"]

SYMBOL_PATTERN: Final = re.compile(r"[A-Z0-9][A-Z0-9_.-]{0,31}")
"""A whole symbol (use ``fullmatch``): ``BTCUSDT``, ``BTCUSD_PERP``, ``1000SHIBUSDT``."""

_RULE: Final = (
    "a Binance symbol is 1 to 32 of A-Z 0-9 _ - . starting with a letter or digit, "
    "e.g. BTCUSDT or BTCUSD_PERP"
)


def symbol_problem(value: str) -> str | None:
    """None for a valid symbol, else the message tail explaining what is allowed."""
    if SYMBOL_PATTERN.fullmatch(value):
        return None
    upper = value.strip().upper()
    if upper != value and SYMBOL_PATTERN.fullmatch(upper):
        return f"{_RULE}; did you mean {upper!r}?"
    return _RULE


def check_symbol(value: object, name: str = "symbol") -> str:
    """``value`` if it is a valid symbol.

    Raises:
        TypeError: not a str.
        ValueError: not a Binance symbol; the message names ``name``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str; got {value!r}")
    problem = symbol_problem(value)
    if problem is not None:
        raise ValueError(symbol_message(name, value, problem))
    return value


def symbol_message(name: str, value: str, problem: str) -> str:
    """The one wording for a bad symbol, in the catalog and in the history downloads."""
    return f"{name} must be a non-empty symbol name without spaces; got {value!r} ({problem})"
