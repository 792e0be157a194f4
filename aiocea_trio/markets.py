"""The three Binance markets and how a request path picks one.

Binance serves spot, USDⓈ-M futures and COIN-M futures from different hosts
with different limits; the path prefix is the one reliable way to tell them
apart. The client routes a bare path with `market_for_path`, and the simulator
tells the market of a request the same way.
"""

from __future__ import annotations

import enum

__all__ = ["Market", "market_for_path"]


class Market(enum.StrEnum):
    """A Binance market; the value is the short name used in options and files."""

    SPOT = "spot"
    USDM = "usdm"
    COINM = "coinm"

    @property
    def label(self) -> str:
        """The name people read in logs and task trees."""
        return _LABELS[self]


_LABELS = {Market.SPOT: "spot", Market.USDM: "USDⓈ-M", Market.COINM: "COIN-M"}

_PREFIXES: tuple[tuple[str, Market], ...] = (
    ("/api/", Market.SPOT),
    ("/sapi/", Market.SPOT),
    ("/fapi/", Market.USDM),
    ("/futures/data/", Market.USDM),
    ("/dapi/", Market.COINM),
)


def market_for_path(path: str) -> Market:
    """Return the market a REST path belongs to.

    Raises:
        ValueError: the path has no known prefix; naming the allowed ones
            beats a request silently sent to the wrong host.
    """
    for prefix, market in _PREFIXES:
        if path.startswith(prefix):
            return market
    allowed = ", ".join(p for p, _ in _PREFIXES)
    raise ValueError(
        f"cannot tell the market of path {path!r}: it must start with one of {allowed}"
    )
